import { ChildProcess } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { counter } from './attacks';
import type { Emulation, Pod } from './emulator';
import type { CraftedPacket } from './probe-tools';
import type { Check } from './report';
import { compiled, sleep, spawnLogged } from './sys';
import { PEERING_SG_REFUSED, PEERING_SG_TABLE } from './wiring';
import { cidrContains, cidrHost } from '../contract/ipv4';
import { GATEWAY_NFT_TABLE, NODE_NFT_TABLE } from '../contract/names';

/** TCP ports the security-group check tries, in order, for one the plan's rules leave closed. */
const CLOSED_PORT_CANDIDATES = [22, 80, 443, 5432, 8080];
/** Datagrams per probe, as in attacks.ts. */
const REPEAT = 3;
/**
 * Upper bound of a listener's life: the sends are sequential processes, which take seconds
 * on a loaded 2-core host, so the last pod's listener must outlive them (each attack ends its
 * listeners when it is done, so ports are free for the next).
 */
const LISTEN_SECONDS = 30;
/** Where a peered tenant's VPC counts the datagrams that arrive from the peering (attack a). */
const ARRIVALS_TABLE = 'crossvpc_emu_arrivals';

/**
 * The peering path's isolation claims, each attack beside a control that shows the probe
 * works when sent by someone entitled to send it (node 0's pods, node rp_filter as the
 * attacks leave it):
 * (a) every other pod (other tenants', other peered tenants', unlabelled) sending to an address
 *     of each of the peered tenant's ranges delivers nothing there; the node's `peering_denied`
 *     counts those whose own path does not cover the address (a NAT tenant overlapping the range
 *     sends into its own tunnel instead). Control: the peered tenant's pod is delivered.
 * (b) a host of the peered tenant's VPC opening flows to pods (its own tenant's, another's, an
 *     unlabelled one), with pod /32s routed in the function fabric (EKS VPC CNI) so the packets do
 *     reach the node: nothing is delivered and `peering_denied` counts them. Control: the same
 *     datagram from another node of the function VPC is delivered to each pod.
 * (c) the same host crafting VXLAN with every NAT tenant's VNI to the HaVips and members'
 *     addresses: nothing reaches a NAT tenant; the gateways count them (spoofed_tunnel,
 *     tunnel_not_havip). Control: the node sending the same packet to the HaVip is delivered.
 * (d) the tenant's own pod refused by its security group on a port the plan's rules leave closed.
 */
export async function peeringAttackChecks(emu: Emulation): Promise<Check[]> {
  const checks: Check[] = [];
  let port = 7300;
  for (const t of emu.peeredTenants()) {
    checks.push(...(await new PeeringAttack(emu, t.name, port).run()));
    port += 20;
  }
  return checks;
}

/** What the three attacks share: the tenant's service, its pod on node 0 and node 0's other pods. */
interface Scene {
  readonly svc: { ns: string; address: string };
  readonly own: Pod;
  readonly others: Pod[];
  readonly at: string;
  readonly denied: () => number;
}

class PeeringAttack {
  private readonly tools = compiled('dist/lib/emulate/probe-tools.js');

  private readonly listeners: ChildProcess[] = [];

  constructor(private readonly emu: Emulation, private readonly tenant: string, private readonly basePort: number) {}

  async run(): Promise<Check[]> {
    try {
      return await this.attacks();
    } finally {
      for (const l of this.listeners.splice(0)) l.kill('SIGKILL');
    }
  }

  private async attacks(): Promise<Check[]> {
    const emu = this.emu;
    const svc = emu.tenantService(this.tenant);
    const own = emu.podsOn(0).find((p) => p.tenant === this.tenant);
    if (!svc || !own) return [];
    const nodeNs = emu.nodeNs(0);
    const scene: Scene = {
      svc, own, others: emu.podsOn(0).filter((p) => p !== own), at: `[peering ${this.tenant}]`,
      denied: () => counter(emu, nodeNs, NODE_NFT_TABLE, 'peering_denied'),
    };
    const checks = await this.otherPods(scene);
    if (emu.nodeCount() < 2) emu.progress(`${scene.at} the attack from the tenant's VPC needs a second node for its control: not run with one node`);
    else checks.push(...(await this.fromTenantVpc(scene)));
    checks.push(...(await this.craftedFromTenantVpc(scene)));
    checks.push(...(await this.securityGroup(scene)));
    return checks;
  }

  /**
   * (d) The tenant's security group as the plan writes it: the tenant's own pod connecting to a
   * TCP port no rule opens is refused there (sg_refused counts it). Control: a listener on that
   * port, which the tenant's VPC router (inside the VPC, not through the peering) connects to.
   */
  private async securityGroup({ svc, own, at }: Scene): Promise<Check[]> {
    const emu = this.emu;
    const rules = emu.peering(this.tenant).ingress;
    const opens = (port: number) => rules.some((r) => r.protocol === '-1' || (r.protocol === 'tcp' && r.fromPort! <= port && port <= r.toPort!));
    const closed = CLOSED_PORT_CANDIDATES.find((p) => !opens(p));
    if (!rules.length || closed === undefined) {
      emu.progress(`${at} the plan's security-group rules ${rules.length ? `open every port of ${CLOSED_PORT_CANDIDATES.join(', ')}` : 'are left to the user'}: no refused port to check`);
      return [];
    }
    const fab = emu.tenantFabric(this.tenant);
    const refused = () => Number(/packets (\d+)/.exec(emu.exec(fab, 'nft', ['list', 'counter', 'inet', PEERING_SG_TABLE, PEERING_SG_REFUSED], { allowFail: true }))?.[1] ?? -1);
    const listener = spawnLogged('ip', ['netns', 'exec', svc.ns, process.execPath, '-e',
      `const s = require('net').createServer((c) => c.end()).listen(${closed}, '${svc.address}', () => console.log('listening')); setTimeout(() => s.close(), ${LISTEN_SECONDS * 1000}).unref();`], join(emu.runDir, `peering-${this.tenant}-sg.log`));
    try {
      const log = join(emu.runDir, `peering-${this.tenant}-sg.log`);
      await this.listening([log]);
      const connects = (ns: string) => emu.okAsync(ns, 'timeout', ['1', 'bash', '-c', `exec 3<>/dev/tcp/${svc.address}/${closed}`], 3000);
      const before = refused();
      const fromPod = await connects(own.ns);
      const moved = refused() - before;
      const fromInside = await connects(fab);
      return [
        {
          name: `${at} ${own.name} connecting to ${svc.address}:${closed}, a TCP port no security-group rule of the plan opens, is refused by the tenant's security group`,
          pass: !fromPod && before >= 0 && moved >= 1,
          detail: `${fromPod ? 'CONNECTED' : 'no connection'}, ${PEERING_SG_REFUSED} +${moved} (>= 1)`,
        },
        { name: `${at} control: the tenant's VPC router connects to the same listener`, pass: fromInside, detail: fromInside ? 'connected' : 'no connection' },
      ];
    } finally {
      listener.kill('SIGKILL');
    }
  }

  /**
   * (a) One address in each of the tenant's ranges: its Redis host, plus a /32 on it in the other
   * ranges. What arrives from the peering is counted where the tenant's VPC receives it, before
   * its security group, so the probe's port need not be one the plan's rules open: first the
   * other pods send (nothing may arrive), then the tenant's own pod (everything must).
   */
  private async otherPods({ svc, own, others, at, denied }: Scene): Promise<Check[]> {
    const emu = this.emu;
    const ranges = emu.peeredTenants().find((t) => t.name === this.tenant)!.cidrs;
    const extra = ranges.filter((c) => !cidrContains(c, svc.address)).map((c) => cidrHost(c, 3));
    const vpc = emu.tenantFabric(this.tenant);
    const targets = [svc.address, ...extra];
    const port = this.basePort;
    emu.exec(vpc, 'nft', ['-f', '-'], {
      input: `table ip ${ARRIVALS_TABLE} {\n  counter arrived {}\n  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n    iifname "pcx" ip daddr { ${targets.join(', ')} } udp dport ${port} counter name arrived\n  }\n}\n`,
    });
    const arrived = () => Number(/packets (\d+)/.exec(emu.exec(vpc, 'nft', ['list', 'counter', 'ip', ARRIVALS_TABLE, 'arrived'], { allowFail: true }))?.[1] ?? -1);
    try {
      const before = denied();
      const start = arrived();
      for (const ip of targets) for (const p of others) this.udpSend(p.ns, p.ip, ip, port, `foreign:${p.name}`);
      await sleep(500);
      const foreign = arrived() - start;
      const moved = denied() - before;
      const mid = arrived();
      for (const ip of targets) this.udpSend(own.ns, own.ip, ip, port, `own:${own.name}`);
      await sleep(500);
      const mine = arrived() - mid;
      const covered = (p: Pod, ip: string) => !!p.tenant && emu.activeTenants().some((n) => n.name === p.tenant && n.cidrs.some((c) => cidrContains(c, ip)));
      const counted = targets.reduce((n, ip) => n + others.filter((p) => !covered(p, ip)).length, 0);
      return [
        {
          name: `${at} ${others.length} other pods (${others.map((p) => p.name).join(', ')}) sending to ${this.tenant}'s ${targets.join(', ')} deliver nothing there; node counter peering_denied counts those whose own path does not cover the address`,
          pass: start >= 0 && foreign === 0 && before >= 0 && moved >= counted * REPEAT,
          detail: `${foreign ? `${foreign} DATAGRAM(S) ARRIVED` : 'none arrived'} in ${this.tenant}'s VPC from the peering, peering_denied +${moved} (>= ${counted * REPEAT})`,
        },
        { name: `${at} control: ${own.name} sending the same datagrams is delivered`, pass: mine >= targets.length * REPEAT, detail: `${mine}/${targets.length * REPEAT} arrived` },
      ];
    } finally {
      emu.exec(vpc, 'nft', ['delete', 'table', 'ip', ARRIVALS_TABLE], { allowFail: true });
    }
  }

  /** (b) The tenant's VPC opening flows to pods, with pod IPs routed in the function VPC. */
  private async fromTenantVpc({ svc, own, others, at, denied }: Scene): Promise<Check[]> {
    const emu = this.emu;
    const checks: Check[] = [];
    const victims = [own, ...others.filter((p) => p.tenant !== this.tenant)];
    const port = (i: number) => this.basePort + 10 + i;
    emu.routePodIpsInFabric(true);
    try {
      const logs = victims.map((p, i) => this.listen(p.ns, p.ip, port(i), `b-${p.name}`));
      await this.listening(logs);
      const before = denied();
      victims.forEach((p, i) => this.udpSend(svc.ns, svc.address, p.ip, port(i), `from-tenant:${p.name}`));
      await sleep(800);
      const moved = denied() - before;
      const leaked = logs.flatMap((l) => this.read(l).filter((x) => x.startsWith('from-tenant:')));
      checks.push({
        name: `${at} a host of ${this.tenant}'s VPC (${svc.address}) sending to ${victims.length} pods (${victims.map((p) => p.name).join(', ')}), pod IPs routed in the function VPC, delivers nothing; node counter peering_denied counts them`,
        pass: leaked.length === 0 && before >= 0 && moved >= victims.length * REPEAT,
        detail: `${leaked.length ? `DELIVERED ${leaked.join('; ')}` : '0 deliveries'}, peering_denied +${moved} (>= ${victims.length * REPEAT})`,
      });
      victims.forEach((p, i) => this.udpSend(emu.nodeNs(1), emu.nodeIp(1), p.ip, port(i), `from-node:${p.name}`));
      await sleep(500);
      const delivered = logs.filter((l, i) => this.read(l).includes(`from-node:${victims[i].name}`)).length;
      checks.push({ name: `${at} control: node n2 sending the same datagrams to those pods is delivered`, pass: delivered === victims.length, detail: `${delivered}/${victims.length} delivered` });
    } finally {
      emu.routePodIpsInFabric(false);
    }
    return checks;
  }

  /** (c) Crafted VXLAN from the tenant's VPC into the NAT tenants' tunnels. */
  private async craftedFromTenantVpc({ svc, at }: Scene): Promise<Check[]> {
    const emu = this.emu;
    const nat = emu.activeTenants();
    if (!nat.length) return [];
    const port = (i: number) => this.basePort + 15 + i;
    const logs = nat.map((t, i) => this.listen(emu.tenantService(t.name)!.ns, emu.probeAddress(t.name), port(i), `c-${t.name}`));
    await this.listening(logs);
    const members = emu.members();
    const gw = () => members.reduce((n, m) => n + counter(emu, m.ns, GATEWAY_NFT_TABLE, 'spoofed_tunnel') + counter(emu, m.ns, GATEWAY_NFT_TABLE, 'tunnel_not_havip'), 0);
    const dsts = [...new Set([...members.map((m) => m.env.HAVIP), ...members.map((m) => m.env.SELF_IP)])];
    const packet = (dst: string, i: number, src: string, payload: string): CraftedPacket => ({
      dst, vni: nat[i].vni, mac: nat[i].gatewayMac, src, inner: emu.probeAddress(nat[i].name), port: port(i), payload,
    });
    const before = gw();
    this.craft(svc.ns, dsts.flatMap((dst) => nat.map((_, i) => packet(dst, i, svc.address, `tenant-vxlan:${dst}`))));
    this.craft(emu.nodeNs(0), nat.map((t, i) => packet(t.haVip, i, emu.nodeIp(0), 'control-vxlan')));
    await sleep(800);
    const moved = gw() - before;
    const received = logs.map((l) => this.read(l));
    const leaked = received.flatMap((r, i) => r.filter((x) => x.startsWith('tenant-vxlan:')).map((x) => `${x} -> ${nat[i].name}`));
    // Each packet reaches one member: the HaVip's holder, or the member whose address it is.
    const sent = dsts.length * nat.length;
    const controls = received.filter((r) => r.includes('control-vxlan')).length;
    return [
      {
        name: `${at} a host of ${this.tenant}'s VPC crafting VXLAN with ${nat.length} NAT tenants' VNIs to ${dsts.join(', ')} delivers nothing; the gateways count them (spoofed_tunnel, tunnel_not_havip)`,
        pass: leaked.length === 0 && moved >= sent * REPEAT,
        detail: `${leaked.length ? `DELIVERED ${leaked.join('; ')}` : '0 deliveries'}, gateway counters +${moved} (>= ${sent * REPEAT})`,
      },
      { name: `${at} control: the node sending the same packet to the HaVip is delivered`, pass: controls === nat.length, detail: `${controls}/${nat.length} delivered` },
    ];
  }

  private listen(ns: string, ip: string, port: number, tag: string): string {
    const log = join(this.emu.runDir, `peering-${this.tenant}-${tag}.log`);
    this.listeners.push(spawnLogged('ip', ['netns', 'exec', ns, process.execPath, this.tools, 'udp-listen', ip, String(port), String(LISTEN_SECONDS)], log));
    return log;
  }

  private async listening(logs: string[]): Promise<void> {
    for (let i = 0; i < 60 && !logs.every((l) => this.read(l).includes('listening')); i++) await sleep(50);
  }

  private read(log: string): string[] {
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [];
  }

  private udpSend(ns: string, src: string, dst: string, port: number, payload: string): void {
    this.emu.exec(ns, process.execPath, [this.tools, 'udp-send', src, dst, String(port), payload, String(REPEAT)], { allowFail: true });
  }

  private craft(ns: string, packets: CraftedPacket[]): void {
    this.emu.exec(ns, process.execPath, [this.tools, 'craft-vxlan-batch', JSON.stringify({ packets, repeat: REPEAT })], { allowFail: true });
  }
}
