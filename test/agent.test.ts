import { execFileSync } from 'child_process';
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import { endianness, tmpdir } from 'os';
import { join } from 'path';
import { AgentConfig, AgentTenant, canonicalCidr, nodeMac, parseConfig } from '../agent/config';
import { diffBindings, gatewayNets, PodBinding, renderElementOps, renderRuleset } from '../agent/node-table';
import { HostState, planTunnels, tableRoutes } from '../agent/tunnels';
import { observePodRoutes, PodRoutes, procRouteAddr } from '../agent/pod-routes';
import { cmdLine, HostExec, RecordingExec, Step } from '../agent/exec';
import { KubePodSource } from '../agent/kube';
import { Log, silentLog } from '../agent/log';
import { AgentArgs, AgentUsageError, checkArgPaths, netAdminMissing, parseArgs, USAGE } from '../agent/main';
import { FilePodSource, parseEventLine, podFromObject, PodEventType, PodInfo, PodSink } from '../agent/pods';
import { desiredBindings } from '../agent/bindings';
import { Reconciler } from '../agent/reconciler';
import { AgentMetrics } from '../agent/metrics';
import { AGENT_CONFIG_RAW as RAW, podRouteResponses, PodWiring } from './agent-fixtures';

const config: AgentConfig = parseConfig(JSON.stringify(RAW));
const [alpha, beta] = config.tenants;
const NODE = '10.0.1.10';
const EMPTY: HostState = { links: [], rules: [], routes: new Map(), neighbours: new Map() };

const pod = (name: string, ip: string | undefined, tenant?: string, extra: Partial<PodInfo> = {}): PodInfo => ({
  key: `uid-${name}`,
  name,
  namespace: 'fn',
  labels: tenant ? { 'crossvpc.io/tenant': tenant } : {},
  ip,
  hostNetwork: false,
  phase: 'Running',
  ...extra,
});
/** Host interfaces of pod IPs: ip -> [ifname, ifindex]. */
type Wiring = PodWiring;
const WIRING: Wiring = { '10.244.0.5': ['veth5', 15], '10.244.0.6': ['veth6', 16], '10.244.0.7': ['veth7', 17], '10.244.0.8': ['veth8', 18], '10.244.0.9': ['veth9', 19] };
const routesOf = (w: Wiring): PodRoutes => new Map(Object.entries(w).map(([ip, [ifname, ifindex]]) => [ip, { ifname, ifindex }]));
/** What the agent reads for that wiring: /proc/net/route (with the node's own routes) and sysfs. */
const hostResponses = podRouteResponses;
const bind = (ip: string, tenant?: AgentTenant, w: Wiring = WIRING): PodBinding => ({ ip, ifname: w[ip][0], ifindex: w[ip][1], ...(tenant ? { tenant } : {}) });
const bindings = (...list: PodBinding[]) => new Map(list.map((b) => [b.ip, b]));
const lines = (steps: Step[]) => steps.map((s) => (s.kind === 'run' ? s.argv.join(' ') : `write ${s.path}=${s.value}`));

describe('config', () => {
  it('canonicalises CIDRs and lower-cases MACs', () => {
    expect(canonicalCidr('10.50.3.4/16')).toBe('10.50.0.0/16');
    expect(canonicalCidr('192.168.1.1')).toBe('192.168.1.1/32');
    expect(parseConfig(JSON.stringify({ ...RAW, tenants: [{ ...RAW.tenants[0], gatewayMac: '0A:00:00:00:64:01' }] })).tenants[0].gatewayMac).toBe('0a:00:00:00:64:01');
  });

  it('accepts the informational cluster ranges, and a config without them (same version)', () => {
    const cluster = { vpcCidr: '10.0.0.0/16', podCidrs: ['100.64.0.0/10'], nodeCidrs: ['10.0.0.0/16'], serviceCidr: '10.100.0.0/16' };
    expect(parseConfig(JSON.stringify({ ...RAW, cluster })).tenants).toHaveLength(2);
    expect(parseConfig(JSON.stringify(RAW)).cluster).toBeUndefined();
  });

  it('derives the node MAC from the node IP', () => {
    expect(nodeMac('10.0.1.10')).toBe('0e:cc:0a:00:01:0a');
  });

  it.each([
    ['an unresolved Terraform token as haVip', { tenants: [{ ...RAW.tenants[0], haVip: '${aws_eip.x.private_ip}' }] }, /haVip is not an IPv4/],
    ['a table outside the agent range', { tenants: [{ ...RAW.tenants[0], table: 254 }] }, /outside 0x1000000/],
    ['duplicate VNIs', { tenants: [RAW.tenants[0], { ...RAW.tenants[1], vni: 100 }] }, /vni 100 used by both alpha and beta/],
    ['a bad CIDR', { tenants: [{ ...RAW.tenants[0], cidrs: ['10.0.0.0/33'] }] }, /not an IPv4 CIDR/],
    ['another version', { version: 1 }, /unsupported version 1 \(this agent reads versions 2 and 3/],
    ['peered tenants in a version 2 config', { peered: [] }, /peered needs version 3/],
    ['a version 3 config without peered tenants', { version: 3 }, /peered missing \(version 3\)/],
    ['a peered tenant reusing a NAT tenant\'s VNI', { version: 3, peered: [{ name: 'gamma', vni: 100, mark: 0x100012c, cidrs: ['10.60.0.0/16'] }] }, /vni 100 used by both alpha and gamma/],
    ['a peered tenant reusing a NAT tenant\'s mark', { version: 3, peered: [{ name: 'gamma', vni: 300, mark: 0x1000064, cidrs: ['10.60.0.0/16'] }] }, /mark 16777316 used by both alpha and gamma/],
    ['a peered mark outside the agent range', { version: 3, peered: [{ name: 'gamma', vni: 300, mark: 7, cidrs: ['10.60.0.0/16'] }] }, /gamma: mark 7 outside 0x1000000/],
    ['two peered tenants overlapping', { version: 3, peered: [{ name: 'gamma', vni: 300, mark: 0x100012c, cidrs: ['10.60.0.0/16'] }, { name: 'delta', vni: 400, mark: 0x1000190, cidrs: ['10.60.5.0/24'] }] }, /peered tenants gamma and delta overlap at 10\.60\.5\.0\/24/],
    ['no gateway subnets', { gatewayCidrs: undefined }, /gatewayCidrs missing/],
    ['a bad gateway subnet', { gatewayCidrs: ['10.0.1.0/40'] }, /gatewayCidrs: not an IPv4 CIDR/],
  ])('rejects %s', (_what, patch, msg) => {
    expect(() => parseConfig(JSON.stringify({ ...RAW, ...patch }))).toThrow(msg);
  });
});

describe('peered tenants (version 3)', () => {
  const v3 = parseConfig(JSON.stringify({ ...RAW, version: 3, peered: [{ name: 'gamma', vni: 300, mark: 0x100012c, cidrs: ['10.60.3.0/16'] }] }));
  const gamma = v3.peered![0];

  it('parses them with canonical CIDRs, and builds no tunnel, route or rule for them', () => {
    expect(gamma).toEqual({ name: 'gamma', vni: 300, mark: 0x100012c, cidrs: ['10.60.0.0/16'] });
    const steps = lines(planTunnels(v3, NODE, EMPTY));
    expect(steps.join('\n')).not.toMatch(/300|0x100012c|16777516/);
  });

  it('binds a labelled pod to its mark only; the table lets only that mark reach the peered CIDRs and lets the peered VPC only answer', () => {
    const r = desiredBindings(v3, [pod('g', '10.244.0.5', 'gamma'), pod('a', '10.244.0.7', 'alpha')], routesOf(WIRING));
    expect(r.denied).toEqual([]);
    expect(r.bindings.get('10.244.0.5')).toEqual({ ip: '10.244.0.5', ifname: 'veth5', ifindex: 15, peered: gamma });
    const body = renderRuleset(v3, NODE, r.bindings).split('\n').map((l) => l.trim());
    expect(body).toContain('map pod_tenant { typeof iif . ip saddr : meta mark; elements = { 15 . 10.244.0.5 : 0x100012c, 17 . 10.244.0.7 : 0x1000064 } }');
    expect(body).toContain('set pod_tunnel { typeof iif . ip saddr . oifname; elements = { 17 . 10.244.0.7 . "cx100" } }');
    expect(body).toContain('set peered_dst { type ipv4_addr; flags interval; elements = { 10.60.0.0/16 } }');
    expect(body).toContain('set peered_ok { type ipv4_addr . mark; flags interval; elements = { 10.60.0.0/16 . 0x100012c } }');
    // After the tunnel rules (a NAT tenant overlapping a peered one is settled there), in this order.
    const at = (l: string) => body.indexOf(l);
    const order = ['oifname "cx*" counter name tunnel_denied drop', 'ip daddr @peered_dst ip daddr . meta mark @peered_ok accept', 'ip daddr @peered_dst counter name peering_denied drop',
      'ip saddr @peered_dst ct state established,related ct direction reply accept', 'ip saddr @peered_dst counter name peering_denied drop'];
    expect(order.map(at).every((i, k) => i > 0 && (k === 0 || i > at(order[k - 1])))).toBe(true);
    expect(renderRuleset(config, NODE, new Map())).toContain('set peered_dst { type ipv4_addr; flags interval; }');
  });

  it('a pod moving between a peered and a NAT tenant is re-marked, and its old element removed', () => {
    const before = bindings(bind('10.244.0.5', alpha));
    const after = new Map([['10.244.0.5', { ...bind('10.244.0.5'), peered: gamma }]]);
    expect(renderElementOps(diffBindings(before, after))).toBe([
      'delete element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 }',
      'delete element inet crossvpc_node pod_tunnel { 15 . 10.244.0.5 . "cx100" }',
      'delete element inet crossvpc_node pod_src { 15 . 10.244.0.5 }',
      'add element inet crossvpc_node pod_src { 15 . 10.244.0.5 }',
      'add element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 : 0x100012c }',
      '',
    ].join('\n'));
  });
});

describe('internet egress (version 3)', () => {
  const cluster = { vpcCidr: '10.0.0.0/16', podCidrs: ['100.64.0.0/16'], nodeCidrs: ['10.0.0.0/16'], serviceCidr: '10.100.0.0/16' };
  const egressConfig = parseConfig(JSON.stringify({ ...RAW, version: 3, peered: [], cluster, tenants: [{ ...RAW.tenants[0], internetEgress: true }, RAW.tenants[1]] }));
  const [a] = egressConfig.tenants;

  it('routes public destinations into the tunnel and throws every non-internet and cluster range back to the main table', () => {
    const want = tableRoutes(egressConfig, a);
    expect(want.slice(0, 2)).toEqual(['10.50.0.0/16', '0.0.0.0/0']);
    expect(want).toEqual(expect.arrayContaining(['throw 10.0.0.0/8', 'throw 172.16.0.0/12', 'throw 192.168.0.0/16', 'throw 100.64.0.0/10', 'throw 169.254.0.0/16', 'throw 10.100.0.0/16']));
    // The documentation ranges are the emulation's internet: not thrown.
    expect(want.filter((r) => /198\.51\.100|203\.0\.113|192\.0\.2\./.test(r))).toEqual([]);
    // beta has no egress: its table holds its destinations only.
    expect(tableRoutes(egressConfig, egressConfig.tenants[1])).toEqual(['10.50.0.0/16', '172.16.0.0/12']);
    const steps = lines(planTunnels(egressConfig, NODE, EMPTY));
    expect(steps).toContain('ip route replace 0.0.0.0/0 via 169.254.0.1 dev cx100 onlink table 16777316');
    expect(steps).toContain('ip route replace throw 10.0.0.0/8 table 16777316');
    expect(steps.filter((s) => /table 16777416/.test(s) && /0\.0\.0\.0\/0|throw/.test(s))).toEqual([]);
  });

  it('a destination that covers a non-internet range takes its place (no throw under it); an applied table is left alone', () => {
    const wide = parseConfig(JSON.stringify({ ...RAW, version: 3, peered: [], cluster, tenants: [{ ...RAW.tenants[0], cidrs: ['172.16.0.0/12'], internetEgress: true }] }));
    expect(tableRoutes(wide, wide.tenants[0])).not.toContain('throw 172.16.0.0/12');
    const link = { name: 'cx100', kind: 'vxlan', id: 100, remote: '10.0.1.1', local: NODE, port: 4789, mtu: 8951, address: nodeMac(NODE), up: true };
    const host = (routes: string[]): HostState => ({ ...EMPTY, links: [link], neighbours: new Map([['cx100 169.254.0.1', a.gatewayMac]]), routes: new Map([[a.table, routes]]) });
    const forA = (h: HostState) => lines(planTunnels(egressConfig, NODE, h)).filter((s) => s.includes(`table ${a.table}`));
    expect(forA(host(tableRoutes(egressConfig, a)))).toEqual([]);
    // A throw the agent no longer wants is deleted as a throw; a missing one is added back.
    expect(forA(host([...tableRoutes(egressConfig, a).filter((r) => r !== 'throw 10.0.0.0/8'), 'throw 198.51.100.0/24']))).toEqual([
      'ip route del throw 198.51.100.0/24 table 16777316', 'ip route replace throw 10.0.0.0/8 table 16777316',
    ]);
  });

  it.each([
    ['egress in a version 2 config', { tenants: [{ ...RAW.tenants[0], internetEgress: true }], cluster }, /internetEgress needs version 3/],
    ['egress without the cluster ranges', { version: 3, peered: [], tenants: [{ ...RAW.tenants[0], internetEgress: true }] }, /needs the cluster ranges/],
    ['egress as a string', { version: 3, peered: [], cluster, tenants: [{ ...RAW.tenants[0], internetEgress: 'yes' }] }, /internetEgress must be true or absent/],
    ['a bad cluster CIDR', { version: 3, peered: [], cluster: { ...cluster, vpcCidr: '10.0.0.0/33' }, tenants: [{ ...RAW.tenants[0], internetEgress: true }] }, /cluster: not an IPv4 CIDR/],
  ])('rejects %s', (_what, patch, msg) => {
    expect(() => parseConfig(JSON.stringify({ ...RAW, ...patch }))).toThrow(msg);
  });
});

describe('planTunnels', () => {
  it('builds every tenant tunnel, route and rule on an empty host', () => {
    expect(lines(planTunnels(config, NODE, EMPTY))).toEqual([
      'ip link add cx100 type vxlan id 100 remote 10.0.1.1 local 10.0.1.10 dstport 4789 nolearning',
      'write /proc/sys/net/ipv4/conf/cx100/rp_filter=0',
      'write /proc/sys/net/ipv6/conf/cx100/disable_ipv6=1',
      'ip link set dev cx100 address 0e:cc:0a:00:01:0a mtu 8951 up',
      'ip neigh replace 169.254.0.1 lladdr 0a:00:00:00:64:01 dev cx100 nud permanent',
      'ip route replace 10.50.0.0/16 via 169.254.0.1 dev cx100 onlink table 16777316',
      'ip link add cx200 type vxlan id 200 remote 10.0.1.2 local 10.0.1.10 dstport 4789 nolearning',
      'write /proc/sys/net/ipv4/conf/cx200/rp_filter=0',
      'write /proc/sys/net/ipv6/conf/cx200/disable_ipv6=1',
      'ip link set dev cx200 address 0e:cc:0a:00:01:0a mtu 8951 up',
      'ip neigh replace 169.254.0.1 lladdr 0a:01:00:00:c8:01 dev cx200 nud permanent',
      'ip route replace 10.50.0.0/16 via 169.254.0.1 dev cx200 onlink table 16777416',
      'ip route replace 172.16.0.0/12 via 169.254.0.1 dev cx200 onlink table 16777416',
      'ip rule add fwmark 16777316 lookup 16777316 priority 100',
      'ip rule add fwmark 16777416 lookup 16777416 priority 100',
      'ip rule add fwmark 0/0xff000000 lookup main priority 99',
    ]);
  });

  const link = (name: string, id: number, remote: string) => ({ name, kind: 'vxlan', id, remote, local: NODE, port: 4789, mtu: 8951, address: nodeMac(NODE), up: true });
  const converged: HostState = {
    links: [link('cx100', 100, '10.0.1.1'), link('cx200', 200, '10.0.1.2')],
    rules: [
      { priority: 0, table: 'local' },
      { priority: 99, fwmark: 0, fwmask: 0xff000000, table: 'main' },
      { priority: 100, fwmark: 0x1000064, table: '16777316' },
      { priority: 100, fwmark: 0x10000c8, table: '16777416' },
      { priority: 32766, table: 'main' },
    ],
    routes: new Map([
      [0x1000064, ['10.50.0.0/16']],
      [0x10000c8, ['10.50.0.0/16', '172.16.0.0/12']],
    ]),
    neighbours: new Map([
      ['cx100 169.254.0.1', '0a:00:00:00:64:01'],
      ['cx200 169.254.0.1', '0a:01:00:00:c8:01'],
    ]),
  };

  it('does nothing on a converged host (restart is a no-op)', () => {
    expect(planTunnels(config, NODE, converged)).toEqual([]);
  });

  it('removes stale tenants, routes and rules in its range and leaves foreign ones', () => {
    const host: HostState = {
      ...converged,
      links: [...converged.links, link('cx999', 999, '10.0.1.1')],
      rules: [
        ...converged.rules,
        { priority: 100, fwmark: 0x10003e7, table: '16778215' }, // tenant 999, gone from config
        { priority: 90, fwmark: 0x1000064, table: '16777316' }, // ours, wrong priority
        { priority: 50, fwmark: 0x7, table: '7' }, // someone else's
      ],
      routes: new Map([...converged.routes, [0x10003e7, ['10.9.0.0/16']], [0x1000064, ['10.50.0.0/16', '192.168.0.0/16']]]),
    };
    expect(lines(planTunnels(config, NODE, host))).toEqual([
      'ip link del cx999',
      'ip route del 192.168.0.0/16 table 16777316',
      'ip route flush table 16778215',
      'ip rule del priority 100 fwmark 0x10003e7 table 16778215',
      'ip rule del priority 90 fwmark 0x1000064 table 16777316',
    ]);
  });

  it('recreates a tunnel whose endpoint moved and repairs a changed neighbour', () => {
    const host: HostState = {
      ...converged,
      links: [link('cx100', 100, '10.0.1.99'), converged.links[1]],
      neighbours: new Map([['cx200 169.254.0.1', '0a:ff:00:00:c8:01']]),
    };
    expect(lines(planTunnels(config, NODE, host))).toEqual([
      'ip link del cx100',
      'ip link add cx100 type vxlan id 100 remote 10.0.1.1 local 10.0.1.10 dstport 4789 nolearning',
      'write /proc/sys/net/ipv4/conf/cx100/rp_filter=0',
      'write /proc/sys/net/ipv6/conf/cx100/disable_ipv6=1',
      'ip link set dev cx100 address 0e:cc:0a:00:01:0a mtu 8951 up',
      'ip neigh replace 169.254.0.1 lladdr 0a:00:00:00:64:01 dev cx100 nud permanent',
      'ip route flush table 16777316',
      'ip route replace 10.50.0.0/16 via 169.254.0.1 dev cx100 onlink table 16777316',
      'ip neigh replace 169.254.0.1 lladdr 0a:01:00:00:c8:01 dev cx200 nud permanent',
    ]);
  });

  it('renders keyed GRE without MAC or neighbour', () => {
    const gre = parseConfig(JSON.stringify({ ...RAW, tunnel: 'gre', tenants: [RAW.tenants[0]] }));
    expect(lines(planTunnels(gre, NODE, EMPTY)).filter((l) => !l.startsWith('write'))).toEqual([
      'ip link add cx100 type gre remote 10.0.1.1 local 10.0.1.10 key 100',
      'ip link set dev cx100 mtu 8951 up',
      'ip route replace 10.50.0.0/16 dev cx100 table 16777316',
      'ip rule add fwmark 16777316 lookup 16777316 priority 100',
      'ip rule add fwmark 0/0xff000000 lookup main priority 99',
    ]);
  });
});

describe('renderRuleset', () => {
  const text = renderRuleset(config, NODE, bindings(bind('10.244.0.5', alpha), bind('10.244.0.7', beta), bind('10.244.0.8')));
  const body = text.split('\n').map((l) => l.trim());

  it('swaps the table atomically', () => {
    expect(body.slice(0, 3)).toEqual(['table inet crossvpc_node {}', 'delete table inet crossvpc_node', 'table inet crossvpc_node {']);
  });

  it('binds every pod to its interface index; tenant marks and tunnels only for tenant pods', () => {
    expect(body).toContain('set pod_ifs { typeof iif; elements = { 15, 17, 18 } }');
    expect(body).toContain('set pod_src { typeof iif . ip saddr; elements = { 15 . 10.244.0.5, 17 . 10.244.0.7, 18 . 10.244.0.8 } }');
    expect(body).toContain('map pod_tenant { typeof iif . ip saddr : meta mark; elements = { 15 . 10.244.0.5 : 0x1000064, 17 . 10.244.0.7 : 0x10000c8 } }');
    expect(body).toContain('set pod_tunnel { typeof iif . ip saddr . oifname; elements = { 15 . 10.244.0.5 . "cx100", 17 . 10.244.0.7 . "cx200" } }');
  });

  it('keeps tunnel packets away from HaVips and the whole gateway subnet', () => {
    // 10.0.1.1 and 10.0.1.2 lie inside the gateway subnet (nft refuses overlapping intervals).
    expect(gatewayNets(config)).toEqual(['10.0.1.0/24', '10.0.9.9']);
    expect(body).toContain('set gateway_nets { type ipv4_addr; flags interval; auto-merge; elements = { 10.0.1.0/24, 10.0.9.9 } }');
  });

  it('drops spoofed sources, marks by (interface, source), guards, clamps and SNATs', () => {
    expect(body).toContain('iif @pod_ifs iif . ip saddr != @pod_src counter name pod_spoof drop');
    expect(body).toContain('iif @pod_ifs meta mark set iif . ip saddr map @pod_tenant');
    expect(body.indexOf('iif @pod_ifs iif . ip saddr != @pod_src counter name pod_spoof drop')).toBeLessThan(body.indexOf('iif @pod_ifs meta mark set iif . ip saddr map @pod_tenant'));
    expect(body).not.toContain('meta mark set ip saddr map @pod_tenant');
    expect(body).toContain('iif @pod_ifs udp dport 4789 counter name tunnel_spoof drop');
    expect(body).toContain('iif @pod_ifs ip protocol gre counter name tunnel_spoof drop');
    expect(body).toContain('udp dport 4789 ip daddr @gateway_nets counter name tunnel_spoof drop');
    expect(body).toContain('ip protocol gre ip daddr @gateway_nets counter name tunnel_spoof drop');
    expect(body).toContain('oifname "cx*" tcp flags syn / syn,rst tcp option maxseg size set rt mtu');
    expect(body).toContain('oifname "cx*" iif . ip saddr . oifname @pod_tunnel accept');
    expect(body).toContain('oifname "cx*" counter name tunnel_denied drop');
    expect(body).toContain('iifname "cx*" ct state established,related accept');
    expect(body).toContain('oifname "cx*" snat ip to 10.0.1.10');
    // Tunnel packets to the node: our VNIs only from the gateway subnet, by its own route; tenants never reach the node.
    expect(body).toContain('udp dport 4789 @th,96,24 { 100, 200 } ip saddr != @gateway_nets counter name tunnel_spoof drop');
    expect(body).toContain('udp dport 4789 @th,96,24 { 100, 200 } fib saddr . iif oif missing counter name tunnel_spoof drop');
    expect(body.filter((l) => l === 'iifname "cx*" counter name return_denied drop')).toHaveLength(2); // input and forward
    // Replies go only to the pod bound to the tunnel they come from.
    expect(body).toContain('iifname "cx*" ct state established,related oif . ip daddr . iifname @pod_tunnel accept');
    expect(body.filter((l) => l === 'iifname "cx*" ct state established,related accept')).toHaveLength(1); // input only: the node's own flows
    expect(body.indexOf('oifname "cx*" iif . ip saddr . oifname @pod_tunnel accept')).toBeLessThan(body.indexOf('oifname "cx*" counter name tunnel_denied drop'));
  });

  it('omits empty element lists (nft rejects them)', () => {
    expect(renderRuleset(config, NODE, new Map())).toContain('map pod_tenant { typeof iif . ip saddr : meta mark; }');
  });
});

describe('HostExec with a prestarted command', () => {
  // Prints when its process started (wall clock, ns), then echoes its stdin; fails on request.
  const ECHO = ['sh', '-c', 'date +%s%N; cat'];
  const FAIL = ['sh', '-c', 'cat >/dev/null; echo bad input >&2; exit 3'];
  const startedBefore = async (exec: HostExec) => {
    await new Promise((r) => setTimeout(r, 300)); // time for a spare to start
    const called = BigInt(Date.now()) * 1_000_000n;
    const { stdout } = await exec.run(ECHO, { input: 'hello\n' });
    const [started, echoed] = stdout.split('\n');
    expect(echoed).toBe('hello');
    return BigInt(started) < called;
  };

  it('feeds the input to a process started before the call, and starts the next one for the following call', async () => {
    const exec = new HostExec({ prestart: [ECHO] });
    try {
      expect(await startedBefore(exec)).toBe(true);
      expect(await startedBefore(exec)).toBe(true);
    } finally {
      exec.stop();
    }
  });

  it('control: without prestart the process starts after the call', async () => {
    expect(await startedBefore(new HostExec())).toBe(false);
  });

  it('reports a failure as a plain run does: command line, stderr; okCodes honoured', async () => {
    const exec = new HostExec({ prestart: [FAIL] });
    try {
      await expect(exec.run(FAIL, { input: 'x' })).rejects.toThrow(`${cmdLine(FAIL)} <<stdin: bad input`);
      await expect(exec.run(FAIL, { input: 'x', okCodes: [3] })).resolves.toEqual({ code: 3, stdout: '' });
      await expect(new HostExec().run(FAIL, { input: 'x' })).rejects.toThrow(`${cmdLine(FAIL)} <<stdin: bad input`);
    } finally {
      exec.stop();
    }
  });

  it('replaces a spare that died before use instead of feeding it', async () => {
    const exec = new HostExec({ prestart: [ECHO] });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const pids = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'date \\+%s%N'], { encoding: 'utf8' }).trim().split('\n');
      expect(pids).toHaveLength(1);
      process.kill(Number(pids[0]), 'SIGKILL'); // our own spare, by its PID
      await new Promise((r) => setTimeout(r, 100));
      expect((await exec.run(ECHO, { input: 'again\n' })).stdout.split('\n')[1]).toBe('again');
    } finally {
      exec.stop();
    }
  });
});

describe('pod routes', () => {
  it('takes /32 host routes without a gateway, with their interface index', async () => {
    const exec = new RecordingExec(hostResponses({ '10.244.0.5': ['veth5', 15], '10.244.0.6': ['cali6', 16] }));
    const routes = await observePodRoutes(exec);
    expect([...routes]).toEqual([['10.244.0.5', { ifname: 'veth5', ifindex: 15 }], ['10.244.0.6', { ifname: 'cali6', ifindex: 16 }]]);
  });

  it('reads the kernel files in process: no command runs, only /proc/net/route and the pod interfaces\' ifindex', async () => {
    const exec = new RecordingExec(hostResponses({ '10.244.0.5': ['veth5', 15] }));
    await observePodRoutes(exec);
    expect(exec.lines()).toEqual(['cat /proc/net/route', 'cat /sys/class/net/veth5/ifindex']);
  });

  it('leaves a pod unresolved when its interface vanished between the two reads; control: the same table with the interface present', async () => {
    const gone = new RecordingExec([{ prefix: 'cat /sys/class/net/veth6/ifindex', code: 1 }, ...hostResponses({ '10.244.0.5': ['veth5', 15], '10.244.0.6': ['veth6', 16] })]);
    expect([...(await observePodRoutes(gone)).keys()]).toEqual(['10.244.0.5']);
    const present = new RecordingExec(hostResponses({ '10.244.0.5': ['veth5', 15], '10.244.0.6': ['veth6', 16] }));
    expect([...(await observePodRoutes(present)).keys()]).toEqual(['10.244.0.5', '10.244.0.6']);
  });

  it('refuses a /proc/net/route it cannot read by column name', async () => {
    const exec = new RecordingExec([{ prefix: 'cat /proc/net/route', stdout: 'If Dst\nveth5 0500F40A\n' }]);
    await expect(observePodRoutes(exec)).rejects.toThrow('/proc/net/route: unexpected header If Dst');
  });

  it('decodes /proc/net/route addresses (%08X of the network-order word)', () => {
    const le = endianness() === 'LE';
    expect(procRouteAddr(le ? '0500F40A' : '0AF40005')).toBe('10.244.0.5');
    expect(procRouteAddr('0500F40')).toBeUndefined();
  });
});

describe('desired bindings and diffs', () => {
  const routes = routesOf(WIRING);
  const show = (r: ReturnType<typeof desiredBindings>) => [...r.bindings.values()].map((b) => `${b.ip}@${b.ifname}=${b.tenant?.name ?? '-'}`);

  it('binds every routed pod to its interface, tenants only for labelled pods of known tenants', () => {
    const r = desiredBindings(config, [
      pod('a', '10.244.0.5', 'alpha'),
      pod('b', '10.244.0.6', 'gamma'),
      pod('c', '10.244.0.7'),
      pod('d', undefined, 'alpha'),
      pod('e', '10.0.1.10', 'alpha', { hostNetwork: true }),
      pod('f', '10.244.0.8', 'beta', { phase: 'Succeeded' }),
    ], routes);
    expect(show(r)).toEqual(['10.244.0.5@veth5=alpha', '10.244.0.6@veth6=-', '10.244.0.7@veth7=-']);
    expect(r.denied.map((d) => `${d.pod.name}: ${d.reason}`)).toEqual(['b: unknown tenant "gamma"']);
  });

  it('denies an IP claimed by two tenants, or by a tenant pod and an unlabelled one', () => {
    const two = desiredBindings(config, [pod('a', '10.244.0.5', 'alpha'), pod('b', '10.244.0.5', 'beta')], routes);
    expect(show(two)).toEqual(['10.244.0.5@veth5=-']);
    expect(two.denied).toHaveLength(2);
    const borrowed = desiredBindings(config, [pod('a', '10.244.0.5', 'alpha'), pod('u', '10.244.0.5')], routes);
    expect(show(borrowed)).toEqual(['10.244.0.5@veth5=-']);
    expect(borrowed.denied.map((d) => d.reason)).toEqual(['IP 10.244.0.5 claimed by pods of alpha, (unlabelled)']);
  });

  it('denies pods behind a shared interface (a bridge cannot tell them apart)', () => {
    const shared = routesOf({ '10.244.0.5': ['cni0', 4], '10.244.0.6': ['cni0', 4] });
    const r = desiredBindings(config, [pod('a', '10.244.0.5', 'alpha'), pod('b', '10.244.0.6', 'beta')], shared);
    expect(show(r)).toEqual(['10.244.0.5@cni0=-', '10.244.0.6@cni0=-']);
    expect(r.denied.map((d) => d.reason)).toEqual([expect.stringContaining('interface cni0 carries 2 pods'), expect.stringContaining('interface cni0 carries 2 pods')]);
  });

  it('leaves pods without a host route unresolved (retried), labelled or not', () => {
    const r = desiredBindings(config, [pod('a', '10.244.0.55', 'alpha'), pod('u', '10.244.0.56')], routes);
    expect(r.bindings.size).toBe(0);
    expect(r.unresolved.map((p) => p.name)).toEqual(['a', 'u']);
  });

  it('reads a pod\'s deletionTimestamp as terminating', () => {
    expect(podFromObject({ metadata: { name: 'x', deletionTimestamp: '2026-11-23T12:00:00Z' } })?.terminating).toBe(true);
    expect(podFromObject({ metadata: { name: 'x' } })?.terminating).toBe(false);
  });

  it('keeps a terminating pod\'s tenant only on the interface it had: a reused IP on a new interface inherits nothing', () => {
    const dying = pod('a', '10.244.0.5', 'alpha', { terminating: true });
    const installed = bindings(bind('10.244.0.5', alpha));
    expect(show(desiredBindings(config, [dying], routes, installed))).toEqual(['10.244.0.5@veth5=alpha']); // still draining
    const reused = desiredBindings(config, [dying], routesOf({ '10.244.0.5': ['veth77', 77] }), installed);
    expect(show(reused)).toEqual(['10.244.0.5@veth77=-']);
    expect(reused.denied.map((d) => d.reason)).toEqual([expect.stringContaining('reused by a new pod')]);
    // A live pod whose sandbox was recreated keeps its tenant on the new interface.
    expect(show(desiredBindings(config, [pod('a', '10.244.0.5', 'alpha')], routesOf({ '10.244.0.5': ['veth77', 77] }), installed))).toEqual(['10.244.0.5@veth77=alpha']);
  });

  it('turns a tenant or interface change into delete then add in one transaction', () => {
    const moved: Wiring = { ...WIRING, '10.244.0.6': ['veth6', 26] }; // pod recreated: same IP, new interface
    const diff = diffBindings(
      bindings(bind('10.244.0.5', alpha), bind('10.244.0.6', alpha), bind('10.244.0.8')),
      bindings(bind('10.244.0.5', beta), bind('10.244.0.6', alpha, moved), bind('10.244.0.7', alpha), bind('10.244.0.8')),
    );
    expect(renderElementOps(diff).trim().split('\n')).toEqual([
      'delete element inet crossvpc_node pod_tenant { 15 . 10.244.0.5, 16 . 10.244.0.6 }',
      'delete element inet crossvpc_node pod_tunnel { 15 . 10.244.0.5 . "cx100", 16 . 10.244.0.6 . "cx100" }',
      'delete element inet crossvpc_node pod_src { 15 . 10.244.0.5, 16 . 10.244.0.6 }',
      'delete element inet crossvpc_node pod_ifs { 16 }',
      'add element inet crossvpc_node pod_ifs { 17, 26 }',
      'add element inet crossvpc_node pod_src { 15 . 10.244.0.5, 26 . 10.244.0.6, 17 . 10.244.0.7 }',
      'add element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 : 0x10000c8, 26 . 10.244.0.6 : 0x1000064, 17 . 10.244.0.7 : 0x1000064 }',
      'add element inet crossvpc_node pod_tunnel { 15 . 10.244.0.5 . "cx200", 26 . 10.244.0.6 . "cx100", 17 . 10.244.0.7 . "cx100" }',
    ]);
    expect(renderElementOps(diffBindings(bindings(bind('10.244.0.5', alpha)), bindings(bind('10.244.0.5', alpha))))).toBe('');
  });
});

describe('Reconciler', () => {
  const until = async (cond: () => boolean, ms = 2000) => {
    for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 5))) if (Date.now() > end) throw new Error('timed out');
  };
  const nftInputs = (exec: RecordingExec) => exec.calls.filter((c) => c.argv.join(' ') === 'nft -f -').map((c) => c.input!);
  const make = (exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, ...hostResponses(WIRING)])) => {
    const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
    const log: Log = (level, msg, fields) => logs.push({ level, msg, fields });
    const rec = new Reconciler(config, NODE, exec, log, { batchMs: 1, retryMs: 5, routeRetryMs: 5 });
    return { rec, exec, logs };
  };

  it('waits for a complete snapshot before touching the nft table', async () => {
    const { rec, exec } = make();
    rec.event('ADDED', pod('a', '10.244.0.5', 'alpha'));
    await new Promise((r) => setTimeout(r, 20));
    expect(exec.calls).toHaveLength(0);
  });

  it('replaces the table on sync, then adds, relabels and deletes elements', async () => {
    const { rec, exec, logs } = make();
    rec.sync([pod('a', '10.244.0.5', 'alpha')]);
    await rec.idle();
    expect(nftInputs(exec)).toHaveLength(1);
    expect(nftInputs(exec)[0]).toContain('15 . 10.244.0.5 : 0x1000064');
    expect(logs.map((l) => l.msg)).toContain('agent ready');

    rec.event('ADDED', pod('b', '10.244.0.6', 'beta'));
    rec.event('ADDED', pod('x', '10.244.0.9', 'nobody'));
    await rec.idle();
    expect(nftInputs(exec)[1].split('\n')).toEqual([
      'add element inet crossvpc_node pod_ifs { 16, 19 }',
      'add element inet crossvpc_node pod_src { 16 . 10.244.0.6, 19 . 10.244.0.9 }',
      'add element inet crossvpc_node pod_tenant { 16 . 10.244.0.6 : 0x10000c8 }',
      'add element inet crossvpc_node pod_tunnel { 16 . 10.244.0.6 . "cx200" }',
      '',
    ]);
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.fields?.reason)).toEqual(['unknown tenant "nobody"']);

    rec.event('MODIFIED', pod('a', '10.244.0.5', 'beta'));
    await rec.idle();
    expect(nftInputs(exec)[2]).toContain('delete element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 }');
    expect(nftInputs(exec)[2]).toContain('add element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 : 0x10000c8 }');

    rec.event('MODIFIED', pod('b', '10.244.0.6')); // label removed: still a legitimate source, no tenant
    rec.event('DELETED', pod('a', '10.244.0.5'));
    await rec.idle();
    expect(nftInputs(exec)[3].split('\n')).toEqual([
      'delete element inet crossvpc_node pod_tenant { 15 . 10.244.0.5, 16 . 10.244.0.6 }',
      'delete element inet crossvpc_node pod_tunnel { 15 . 10.244.0.5 . "cx200", 16 . 10.244.0.6 . "cx200" }',
      'delete element inet crossvpc_node pod_src { 15 . 10.244.0.5, 16 . 10.244.0.6 }',
      'delete element inet crossvpc_node pod_ifs { 15 }',
      'add element inet crossvpc_node pod_src { 16 . 10.244.0.6 }',
      '',
    ]);
    expect(exec.lines().filter((l) => l.startsWith('conntrack'))).toEqual(['conntrack -D -s 10.244.0.5', 'conntrack -D -s 10.244.0.5', 'conntrack -D -s 10.244.0.6']);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(1); // the unknown tenant was reported once
  });

  it('binds a pod once its host route appears, and rebinds it when its interface changes', async () => {
    const exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, ...hostResponses({})]);
    const { rec } = make(exec);
    rec.sync([pod('a', '10.244.0.5', 'alpha')]);
    await rec.idle();
    expect(nftInputs(exec)[0]).toContain('map pod_tenant { typeof iif . ip saddr : meta mark; }');
    exec.responses.unshift(...hostResponses({ '10.244.0.5': ['veth5', 15] })); // the CNI finished wiring
    await until(() => nftInputs(exec).length > 1, 1000);
    await rec.idle();
    expect(nftInputs(exec)[1]).toContain('add element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 : 0x1000064 }');
    exec.responses.unshift(...hostResponses({ '10.244.0.5': ['veth5', 35] })); // sandbox recreated
    await rec.verify(); // the fake has no table to read back, so this is a full rebuild
    await rec.idle();
    const last = nftInputs(exec)[nftInputs(exec).length - 1];
    expect(last).toContain('map pod_tenant { typeof iif . ip saddr : meta mark; elements = { 35 . 10.244.0.5 : 0x1000064 } }');
    expect(last).not.toContain('15 . 10.244.0.5');
    expect(exec.lines().filter((l) => l.startsWith('conntrack'))).toEqual(['conntrack -D -s 10.244.0.5']); // the old interface's flows die
    await rec.stop();
  });

  it('flushes conntrack of pods that vanished or moved while the agent was down', async () => {
    const table = { nftables: [{ map: { elem: [[{ concat: ['veth5', '10.244.0.5'] }, 0x1000064], [{ concat: ['veth6', '10.244.0.6'] }, 0x1000064], [{ concat: ['77', '10.244.0.7'] }, 0x1000064]] } }] };
    const exec = new RecordingExec([{ prefix: 'nft -j list map', stdout: JSON.stringify(table) }, ...hostResponses(WIRING)]);
    const { rec } = make(exec);
    rec.sync([pod('b', '10.244.0.6', 'alpha'), pod('c', '10.244.0.7', 'alpha')]);
    await rec.idle();
    expect(exec.lines().filter((l) => l.startsWith('conntrack'))).toEqual(['conntrack -D -s 10.244.0.5', 'conntrack -D -s 10.244.0.7']);
  });

  describe('apply interval (kube-proxy minSyncPeriod)', () => {
    const nextTurn = () => new Promise((r) => setImmediate(r));
    const routeReads = (exec: RecordingExec) => exec.lines().filter((l) => l === 'cat /proc/net/route').length;
    /** A reconciler past its first apply at clock 0, with a 300 ms interval. */
    const synced = async (clock: { t: number }) => {
      const exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, ...hostResponses(WIRING)]);
      const rec = new Reconciler(config, NODE, exec, silentLog, { batchMs: 300, now: () => clock.t });
      rec.sync([]);
      await rec.idle();
      return { rec, exec };
    };

    it('applies the first change after a quiet period at once, without waiting for the interval', async () => {
      const clock = { t: 0 };
      const { rec, exec } = await synced(clock);
      clock.t = 300; // quiet since the last apply started
      const before = routeReads(exec);
      rec.event('ADDED', pod('a', '10.244.0.5', 'alpha'));
      await nextTurn();
      expect(routeReads(exec)).toBe(before + 1); // the apply has started: no timer in between
      await rec.idle();
      expect(nftInputs(exec)[1]).toContain('add element inet crossvpc_node pod_tenant { 15 . 10.244.0.5 : 0x1000064 }');
    });

    it('control: a change inside the interval waits for it, and a burst is one transaction', async () => {
      const clock = { t: 0 };
      const { rec, exec } = await synced(clock);
      clock.t = 299;
      const before = routeReads(exec);
      rec.event('ADDED', pod('a', '10.244.0.5', 'alpha'));
      await nextTurn();
      rec.event('ADDED', pod('b', '10.244.0.6', 'beta'));
      await nextTurn();
      expect(routeReads(exec)).toBe(before); // held back (for 1 ms of this clock, at most the interval in real time)
      await rec.idle();
      expect(nftInputs(exec)).toHaveLength(2);
      expect(nftInputs(exec)[1]).toContain('add element inet crossvpc_node pod_src { 15 . 10.244.0.5, 16 . 10.244.0.6 }');
    });

    it('a change that arrives during an apply is applied after it', async () => {
      const clock = { t: 0 };
      const { rec, exec } = await synced(clock);
      clock.t = 1000;
      rec.event('ADDED', pod('a', '10.244.0.5', 'alpha')); // applies at once (quiet), at clock 1000
      await nextTurn();
      rec.event('ADDED', pod('b', '10.244.0.6', 'beta')); // arrives while that apply runs
      await rec.idle();
      expect(nftInputs(exec)).toHaveLength(3);
      expect(nftInputs(exec)[2]).toContain('16 . 10.244.0.6');
    });
  });

  it('logs where a pod binding\'s time went and reports it to the observer, once per bound pod', async () => {
    const programmed: number[] = [];
    const observer = { reconciled: () => undefined, error: () => undefined, tunnelsChecked: () => undefined, podProgrammed: (s: number) => programmed.push(s) };
    const exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, ...hostResponses(WIRING)]);
    const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
    const rec = new Reconciler(config, NODE, exec, (_l, msg, fields) => logs.push({ msg, fields }), { batchMs: 1, observer });
    rec.sync([pod('a', '10.244.0.5', 'alpha')]);
    await rec.idle();
    expect(programmed).toEqual([]); // a snapshot is not a pod event
    rec.event('ADDED', pod('b', '10.244.0.6', 'beta'));
    rec.event('ADDED', pod('z', '10.244.0.99', 'beta')); // no host route yet: not bound, not counted
    await rec.idle();
    rec.event('DELETED', pod('a', '10.244.0.5', 'alpha'));
    await rec.idle();
    await rec.stop();
    expect(programmed).toHaveLength(1);
    expect(programmed[0]).toBeGreaterThanOrEqual(0);
    const bound = logs.find((l) => l.msg === 'pod bound')!;
    expect(bound.fields).toMatchObject({ ip: '10.244.0.6', tenant: 'beta' });
    for (const k of ['sinceEventMs', 'waitedMs', 'routesMs', 'nftMs']) expect(typeof bound.fields![k]).toBe('number');
    expect(bound.fields!.sinceEventMs as number).toBeGreaterThanOrEqual(bound.fields!.nftMs as number);
  });

  it('rebuilds the whole table after a failed element update', async () => {
    const { rec, exec, logs } = make();
    rec.sync([]);
    await rec.idle();
    exec.responses.unshift({ prefix: 'nft -f -', code: 1 });
    rec.event('ADDED', pod('a', '10.244.0.5', 'alpha'));
    await new Promise((r) => setTimeout(r, 3));
    exec.responses.shift();
    await rec.idle();
    const inputs = nftInputs(exec);
    expect(inputs[1]).toMatch(/^add element/);
    expect(inputs[inputs.length - 1]).toMatch(/^table inet crossvpc_node \{\}/);
    expect(inputs[inputs.length - 1]).toContain('15 . 10.244.0.5 : 0x1000064');
    expect(logs.map((l) => l.msg)).toContain('nft apply failed, will rebuild the table');
  });
});

/** Collects what a pod source emits. */
class Sink implements PodSink {
  readonly log: string[] = [];
  sync(pods: PodInfo[]) {
    this.log.push(`sync ${pods.map((p) => p.name).sort().join(',')}`);
  }
  event(type: PodEventType, p: PodInfo) {
    this.log.push(`${type} ${p.name} ${p.ip ?? '-'} ${p.labels['crossvpc.io/tenant'] ?? '-'}`);
  }
}
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};
const ev = (type: string, name: string, ip?: string, tenant?: string) =>
  `${JSON.stringify({ type, object: { metadata: { name, namespace: 'fn', uid: `uid-${name}`, labels: tenant ? { 'crossvpc.io/tenant': tenant } : {} }, status: { podIP: ip, phase: 'Running' } } })}\n`;

describe('file pod source', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'agt-file-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('parses watch-event lines', () => {
    const e = parseEventLine(ev('ADDED', 'a', '10.244.0.5', 'alpha'));
    expect(e).toEqual({ type: 'ADDED', pod: expect.objectContaining({ key: 'uid-a', namespace: 'fn', ip: '10.244.0.5', hostNetwork: false }) });
    expect(parseEventLine('{"type":"BOOKMARK","object":{}}')).toEqual({ skip: 'event type BOOKMARK' });
    expect(parseEventLine('not json')).toEqual({ skip: 'not JSON' });
  });

  it('folds existing lines into a snapshot, then tails appended events in order', async () => {
    const file = join(dir, 'pods.jsonl');
    writeFileSync(file, ev('ADDED', 'a', '10.244.0.5', 'alpha') + ev('ADDED', 'b', '10.244.0.6', 'beta') + ev('DELETED', 'a'));
    const sink = new Sink();
    const src = new FilePodSource(file, silentLog, 20);
    src.start(sink);
    try {
      await until(() => sink.log.length === 1);
      expect(sink.log).toEqual(['sync b']);
      const line = ev('MODIFIED', 'b', '10.244.0.6', 'alpha');
      appendFileSync(file, line.slice(0, 25)); // a half-written line is not an event yet
      await new Promise((r) => setTimeout(r, 60));
      expect(sink.log).toHaveLength(1);
      appendFileSync(file, line.slice(25) + 'garbage\n' + ev('ADDED', 'c', '10.244.0.7', 'beta'));
      await until(() => sink.log.length === 3);
      expect(sink.log.slice(1)).toEqual(['MODIFIED b 10.244.0.6 alpha', 'ADDED c 10.244.0.7 beta']);
      truncateSync(file, 0); // truncation means a new history: resync from scratch
      appendFileSync(file, ev('ADDED', 'd', '10.244.0.8', 'alpha'));
      await until(() => sink.log.length === 4);
      expect(sink.log[3]).toBe('sync d');
    } finally {
      src.stop();
    }
  });

  it('reports an empty snapshot until the file appears', async () => {
    const file = join(dir, 'later.jsonl');
    const sink = new Sink();
    const src = new FilePodSource(file, silentLog, 20);
    src.start(sink);
    try {
      await until(() => sink.log.length === 1);
      writeFileSync(file, ev('ADDED', 'a', '10.244.0.5', 'alpha'));
      await until(() => sink.log.length === 2);
      expect(sink.log).toEqual(['sync ', 'sync a']);
    } finally {
      src.stop();
    }
  });
});

describe('kube pod source', () => {
  it('lists, watches from the resourceVersion and re-lists after 410 Gone', async () => {
    const requests: string[] = [];
    let lists = 0;
    const item = (name: string, ip: string) => ({ metadata: { name, namespace: 'fn', uid: `uid-${name}`, labels: {} }, status: { podIP: ip } });
    const server = http.createServer((req, res) => {
      requests.push(`${req.headers.authorization} ${req.url}`);
      const url = new URL(req.url!, 'http://x');
      if (!url.searchParams.get('watch')) {
        lists++;
        res.end(JSON.stringify({ metadata: { resourceVersion: `${lists * 10}` }, items: lists === 1 ? [item('a', '10.244.0.5')] : [item('b', '10.244.0.6')] }));
      } else if (url.searchParams.get('resourceVersion') === '10') {
        res.write(`${JSON.stringify({ type: 'ADDED', object: { ...item('c', '10.244.0.7'), metadata: { ...item('c', '').metadata, resourceVersion: '11' } } })}\n`);
        res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410 } })}\n`);
      } else {
        const t = setTimeout(() => res.end(), 5000); // idle watch; ended by stop()
        res.on('close', () => clearTimeout(t));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sink = new Sink();
    const src = new KubePodSource({ nodeName: 'node-1', host: '127.0.0.1', port: (server.address() as AddressInfo).port, token: () => 'tkn', protocol: 'http', minBackoffMs: 10 }, silentLog);
    src.start(sink);
    try {
      await until(() => sink.log.length === 3);
      expect(sink.log).toEqual(['sync a', 'ADDED c 10.244.0.7 -', 'sync b']);
      expect(requests[0]).toBe('Bearer tkn /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=500');
      expect(requests[1]).toMatch(/watch=true&allowWatchBookmarks=true&timeoutSeconds=\d+&resourceVersion=10$/);
      await until(() => requests.length === 4);
      expect(requests[3]).toMatch(/resourceVersion=20$/);
    } finally {
      src.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('kube pod source failures', () => {
  it('reports each failed list or watch to the sink, which the metrics count as errors_total{op="pod_source"}', async () => {
    let calls = 0;
    const server = http.createServer((req, res) => {
      calls += 1;
      if (calls <= 2) { // two failed lists (API server trouble), then a good list and an idle watch
        res.statusCode = 500;
        return void res.end('{"kind":"Status","message":"etcd unavailable"}');
      }
      if (!new URL(req.url!, 'http://x').searchParams.get('watch')) return void res.end(JSON.stringify({ metadata: { resourceVersion: '5' }, items: [] }));
      const t = setTimeout(() => res.end(), 5000);
      res.on('close', () => clearTimeout(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const inner = new Sink();
    const src = new KubePodSource({ nodeName: 'node-1', host: '127.0.0.1', port: (server.address() as AddressInfo).port, token: () => 'tkn', protocol: 'http', minBackoffMs: 10 }, silentLog);
    src.start(metrics.timedSink(inner));
    try {
      await until(() => inner.log.length === 1);
      expect(inner.log).toEqual(['sync ']);
      const text = await metrics.text();
      expect(text).toContain('crossvpc_agent_errors_total{op="pod_source"} 2\n');
    } finally {
      src.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('CLI', () => {
  const parsed = (argv: string[], env: NodeJS.ProcessEnv = {}): AgentArgs => {
    const args = parseArgs(argv, env);
    if (args === 'help') throw new Error('expected arguments, got help');
    return args;
  };

  it('takes flags, falls back to the downward-API env', () => {
    expect(parsed(['--config', '/etc/crossvpc/tenants.json'], { NODE_IP: '10.0.1.10', NODE_NAME: 'n1' })).toEqual({
      config: '/etc/crossvpc/tenants.json',
      nodeIp: '10.0.1.10',
      nodeName: 'n1',
      pods: 'kube',
      readyFile: undefined,
      dryRun: false,
      metrics: { host: '10.0.1.10', port: 9740 },
    });
    expect(parsed(['--config', 'c.json', '--node-ip', '10.0.1.11', '--pods', 'file:/tmp/p.jsonl'], {}).pods).toBe('file:/tmp/p.jsonl');
    expect(parsed(['--config=c.json', '--node-ip=10.0.1.11', '--node-name=n2', '--ready-file', '/tmp/r', '--dry-run'], { NODE_IP: '10.9.9.9', NODE_NAME: 'env' }))
      .toEqual({ config: 'c.json', nodeIp: '10.0.1.11', nodeName: 'n2', pods: 'kube', readyFile: '/tmp/r', dryRun: true, metrics: undefined });
  });

  it('refuses bad values with one line naming the option and the value', () => {
    expect(() => parsed(['--config', 'c.json', '--node-ip', 'fe80::1'])).toThrow("--node-ip: got 'fe80::1', expected an IPv4 address (--node-ip or $NODE_IP)");
    expect(() => parsed(['--config', 'c.json'], { NODE_IP: '10.0.1' })).toThrow(/--node-ip: got '10\.0\.1'.*IPv4/);
    expect(() => parsed(['--config', 'c.json'])).toThrow(/--node-ip: missing/);
    expect(() => parsed(['--config', 'c.json', '--node-ip', '10.0.1.1'])).toThrow(/NODE_NAME/);
    expect(() => parsed(['--config', 'c.json', '--node-ip', '10.0.1.1', '--pods', 'files:/x'])).toThrow("--pods: got 'files:/x', expected kube or file:<path>");
    expect(() => parsed(['--config', 'c.json', '--node-ip', '10.0.1.1', '--pods', 'file:'])).toThrow(/--pods: got 'file:'/);
  });

  it('refuses unknown flags, stray arguments, a missing --config or a missing value', () => {
    const env = { NODE_IP: '10.0.1.10', NODE_NAME: 'n1' };
    expect(() => parsed(['--config', 'c.json', '--nodeip', '10.0.1.1'], env)).toThrow(new AgentUsageError("unknown option '--nodeip'"));
    expect(() => parsed(['--config', 'c.json', 'extra'], env)).toThrow("unexpected argument 'extra'");
    expect(() => parsed([], env)).toThrow(/^--config: missing/);
    expect(() => parsed(['--config'], env)).toThrow('--config: missing value');
    expect(() => parsed(['--config', 'c.json', '--dry-run=yes'], env)).toThrow('--dry-run: takes no value');
  });

  it('answers --help and -h without checking anything else', () => {
    expect(parseArgs(['--help'], {})).toBe('help');
    expect(parseArgs(['-h', '--node-ip', 'nonsense'], {})).toBe('help');
    expect(USAGE).toMatch(/--config <tenants\.json>/);
  });

  it('checks the paths it needs before starting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-agent-cli-'));
    try {
      const config = join(dir, 'tenants.json');
      writeFileSync(config, '{}');
      const base = { nodeIp: '10.0.1.10', pods: 'kube', nodeName: 'n1', dryRun: false };
      expect(() => checkArgPaths({ ...base, config, readyFile: join(dir, 'ready') })).not.toThrow();
      expect(() => checkArgPaths({ ...base, config: join(dir, 'missing.json') })).toThrow(/--config: got '.*missing\.json', expected an existing file/);
      expect(() => checkArgPaths({ ...base, config: dir })).toThrow(/--config/);
      expect(() => checkArgPaths({ ...base, config, readyFile: join(dir, 'no/such/dir/ready') })).toThrow(/--ready-file: got/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the NET_ADMIN check at start', () => {
  const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t${capEff}\n`;
  test('NET_ADMIN alone (the DaemonSet) or every capability passes; without it the reason names the capability and the fix', () => {
    expect(netAdminMissing(status('0000000000001000'))).toBeUndefined();
    expect(netAdminMissing(status('000001ffffffffff'))).toBeUndefined();
    expect(netAdminMissing(status('00000000a80425fb'))).toBe('capability NET_ADMIN missing (CapEff 00000000a80425fb): the agent creates tunnels, routes, rules and the nft table; grant it in the container\'s securityContext.capabilities.add');
    expect(netAdminMissing(status('0000000000000000'))).toMatch(/^capability NET_ADMIN missing \(CapEff 0000000000000000\)/);
    // Not Linux, or no status file: nothing to say.
    expect(netAdminMissing(undefined)).toBeUndefined();
    expect(netAdminMissing('Name:\tnode\n')).toBeUndefined();
  });
});
