import { join } from 'path';
import { sleepSync } from '../lib/emulate/sys';
import { Topology } from '../lib/emulate/topology';
import { startRedis, VPC_MTU, vpcWireToward, wirePod } from '../lib/emulate/wiring';

/**
 * The reference path for the data-plane benchmark: the same namespaces, bridges and
 * veths (MTU 9001) as an emulation, with the same hop count, but plain IPv4 routing:
 * no tunnel, no NAT, no nftables, no policy routing, no conntrack.
 *
 *   pod --veth-- node --veth-- fab(br0, router) --veth-- gw --veth-- tfab(br0, router) --veth-- svc
 *   10.0.100.10/32    10.0.1.10   10.0.1.1/10.0.255.1    10.0.255.10   172.16.255.1/172.16.0.1   172.16.0.3
 *                                                        172.16.255.10
 * The addresses are the ones the emulation uses (pod, node, gateway underlay and ENI, service).
 */
export class Baseline {
  readonly topo: Topology;
  readonly probe = '172.16.0.3';
  pod = '';
  svc = '';

  constructor(private readonly runDir: string) {
    this.topo = new Topology(`bl${Math.random().toString(16).slice(2, 6)}`);
  }

  build(): void {
    const t = this.topo;
    const MTU = VPC_MTU;
    const fab = t.addNs('fab');
    t.bridge(fab, 'br0', MTU);
    const tfab = t.addNs('tfab');
    t.bridge(tfab, 'br0', MTU);
    const node = t.addNs('n1');
    const gw = t.addNs('gw');
    const svc = t.addNs('svc');
    const pod = t.addNs('p1');
    this.pod = pod;
    this.svc = svc;
    const ip = (ns: string, ...args: string[]) => t.exec(ns, 'ip', args);
    const forward = (ns: string) => t.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);

    // node <-> fabric
    t.link(node, 'eth0', fab, 'n1', { mtu: MTU });
    t.enslave(fab, 'n1', 'br0');
    ip(fab, 'addr', 'add', '10.0.1.1/24', 'dev', 'br0');
    ip(node, 'addr', 'add', '10.0.1.10/24', 'dev', 'eth0');
    ip(node, 'route', 'add', 'default', 'via', '10.0.1.1');
    forward(node);

    // pod <-> node, wired exactly as an emulation's pods: /32, gateway 169.254.1.1 by proxy ARP
    wirePod(t, pod, node, 'vp0', '10.0.100.10');

    // gateway: underlay in the fabric, one "ENI" in the tenant fabric
    t.link(gw, 'ens5', fab, 'gw', { mtu: MTU });
    // The same wire and NIC as an emulated member: MTU-size frames in, GRO on.
    vpcWireToward(t, fab, 'gw');
    t.exec(gw, 'ethtool', ['-K', 'ens5', 'gro', 'on']);
    t.enslave(fab, 'gw', 'br0');
    ip(fab, 'addr', 'add', '10.0.255.1/24', 'dev', 'br0');
    ip(gw, 'addr', 'add', '10.0.255.10/24', 'dev', 'ens5');
    ip(gw, 'route', 'add', 'default', 'via', '10.0.255.1');
    t.link(gw, 'eth1', tfab, 'gw', { mtu: MTU });
    t.enslave(tfab, 'gw', 'br0');
    ip(tfab, 'addr', 'add', '172.16.255.1/24', 'dev', 'br0');
    ip(gw, 'addr', 'add', '172.16.255.10/24', 'dev', 'eth1');
    ip(gw, 'route', 'add', '172.16.0.0/16', 'via', '172.16.255.1');
    forward(gw);

    // service host in the tenant fabric
    t.link(svc, 'eth0', tfab, 'svc', { mtu: MTU });
    t.enslave(tfab, 'svc', 'br0');
    ip(tfab, 'addr', 'add', '172.16.0.1/24', 'dev', 'br0');
    ip(svc, 'addr', 'add', `${this.probe}/24`, 'dev', 'eth0');
    ip(svc, 'route', 'add', 'default', 'via', '172.16.0.1');

    // static routes back and forth (no NAT: the server sees the pod address)
    ip(fab, 'route', 'add', '10.0.100.0/24', 'via', '10.0.1.10');
    ip(fab, 'route', 'add', '172.16.0.0/16', 'via', '10.0.255.10');
    ip(tfab, 'route', 'add', '10.0.0.0/16', 'via', '172.16.255.10');

    startRedis(t, svc, this.probe, join(this.runDir, 'baseline-redis.log'));
    for (let i = 0; i < 50 && !this.reachable(); i++) sleepSync(100);
    if (!this.reachable()) throw new Error(`baseline: pod ${pod} cannot reach redis at ${this.probe} (see ${this.runDir}/baseline-redis.log)`);
  }

  private reachable(): boolean {
    return this.topo.exec(this.pod, 'timeout', ['1', 'redis-cli', '-h', this.probe, 'ping'], { allowFail: true, timeoutMs: 3000 }).trim() === 'PONG';
  }

  destroy(): void {
    this.topo.destroy();
  }
}
