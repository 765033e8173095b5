// The node's nft table (inet crossvpc_node): pod bindings, the full ruleset, incremental element ops and the read-back.
import { AgentConfig, AgentPeeredTenant, AgentTenant, canonicalCidr, cidrContains, ipv4ToInt, NFT_TABLE, NODE_COUNTERS, TUNNEL_DEV_PREFIX, tunnelDev } from './config';
import { Exec } from './exec';

/** nft wildcard for every tunnel device. */
const ANY_TUNNEL = `"${TUNNEL_DEV_PREFIX}*"`;

/**
 * One pod IP of this node, bound to the host interface it lives behind. Every pod with a
 * resolved interface is a legitimate source (pod_src); only pods of a configured tenant
 * also get that tenant's mark and tunnel (pod_tenant, pod_tunnel).
 */
export interface PodBinding {
  readonly ip: string;
  readonly ifindex: number;
  readonly ifname: string;
  readonly tenant?: AgentTenant;
  /** A pod of a peered tenant: its mark, no tunnel (exclusive with tenant). */
  readonly peered?: AgentPeeredTenant;
}

/** Pod IP → binding: the state of the node table's pod sets. */
export type Bindings = ReadonlyMap<string, PodBinding>;

const srcElem = (b: PodBinding) => `${b.ifindex} . ${b.ip}`;
const tenantElem = (b: PodBinding, mark: number) => `${srcElem(b)} : 0x${mark.toString(16)}`;
/** The mark of a bound pod: its NAT tenant's table, or its peered tenant's mark. */
export const markOf = (b: PodBinding): number | undefined => b.tenant?.table ?? b.peered?.mark;
const marked = (list: PodBinding[]) => list.filter((b) => markOf(b) !== undefined);
const markElem = (b: PodBinding) => tenantElem(b, markOf(b)!);
const tunnelElem = (b: PodBinding, t: AgentTenant) => `${srcElem(b)} . "${tunnelDev(t.vni)}"`;
const elements = (items: (string | number)[]) => (items.length ? ` elements = { ${items.join(', ')} }` : '');
const byIp = (a: PodBinding, b: PodBinding) => ipv4ToInt(a.ip)! - ipv4ToInt(b.ip)!;
const tenanted = (list: PodBinding[]) => list.filter((b): b is PodBinding & { tenant: AgentTenant } => b.tenant !== undefined);
const ifindexes = (bindings: Iterable<PodBinding>) => [...new Set([...bindings].map((b) => b.ifindex))].sort((a, b) => a - b);

/** HaVips and gateway subnets as one interval set; addresses inside a listed subnet are dropped (nft refuses overlaps). */
export function gatewayNets(c: AgentConfig): string[] {
  const nets = [...new Set(c.gatewayCidrs.map(canonicalCidr))];
  const inside = (ip: string) => nets.some((n) => cidrContains(n, ip));
  const hosts = [...new Set(c.gatewayEndpoints)].filter((ip) => !inside(ip));
  return [...nets, ...hosts];
}

/** Every peered destination (one interval set: the model keeps peered tenants apart). */
const peeredDsts = (c: AgentConfig) => (c.peered ?? []).flatMap((t) => t.cidrs);
/** Destination . mark pairs a pod may send to through a peering. */
const peeredOk = (c: AgentConfig) => (c.peered ?? []).flatMap((t) => t.cidrs.map((cidr) => `${cidr} . 0x${t.mark.toString(16)}`));

/**
 * The whole `inet crossvpc_node` table. The create/delete/create sequence runs as one
 * nft transaction: the table is swapped atomically and stale elements of a previous
 * run disappear without a window where pods lose their mark.
 *
 * A pod's packet is classified by (ingress interface, source IP), never by source alone:
 * a pod that adds another pod's address to its interface neither gets that pod's mark
 * nor passes the anti-spoofing rule, whatever the node's rp_filter says.
 */
export function renderRuleset(c: AgentConfig, nodeIp: string, bindings: Bindings): string {
  const b = [...bindings.values()].sort(byIp);
  const withTenant = tenanted(b);
  const P = c.vxlanPort;
  // Tunnel packets addressed to this node: outer source in the gateway subnet, arriving where
  // the node routes that source (strict reverse path, whatever rp_filter says). VXLAN is
  // matched by our VNIs only, so other overlays sharing the port (Calico uses 4789) are untouched.
  const vnis = [...new Set(c.tenants.map((t) => t.vni))].sort((x, y) => x - y);
  const ours = c.tunnel === 'vxlan' ? (vnis.length ? `udp dport ${P} @th,96,24 { ${vnis.join(', ')} }` : undefined) : 'ip protocol gre';
  return [
    `table inet ${NFT_TABLE} {}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    `  set pod_ifs { typeof iif;${elements(ifindexes(b))} }`,
    `  set pod_src { typeof iif . ip saddr;${elements(b.map(srcElem))} }`,
    `  map pod_tenant { typeof iif . ip saddr : meta mark;${elements(marked(b).map(markElem))} }`,
    `  set pod_tunnel { typeof iif . ip saddr . oifname;${elements(withTenant.map((x) => tunnelElem(x, x.tenant)))} }`,
    `  set gateway_nets { type ipv4_addr; flags interval; auto-merge;${elements(gatewayNets(c))} }`,
    `  set peered_dst { type ipv4_addr; flags interval;${elements(peeredDsts(c))} }`,
    `  set peered_ok { type ipv4_addr . mark; flags interval;${elements(peeredOk(c))} }`,
    ...NODE_COUNTERS.map((name) => `  counter ${name} {}`),
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    // rp_filter-independent anti-spoofing: a pod interface speaks only from its own pod's addresses.
    '    iif @pod_ifs iif . ip saddr != @pod_src counter name pod_spoof drop',
    // The mark selects the tenant's routing table (ip rule fwmark T lookup T) before the routing decision.
    '    iif @pod_ifs meta mark set iif . ip saddr map @pod_tenant',
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    // The node's own tunnel devices decapsulate whatever reaches their port: never from a pod,
    // and only from a gateway address by its own route (a pod on this or another node, or any
    // other instance, cannot inject into a tunnel, not even into an established flow).
    `    iif @pod_ifs udp dport ${P} counter name tunnel_spoof drop`,
    '    iif @pod_ifs ip protocol gre counter name tunnel_spoof drop',
    ...(ours ? [`    ${ours} ip saddr != @gateway_nets counter name tunnel_spoof drop`, `    ${ours} fib saddr . iif oif missing counter name tunnel_spoof drop`] : []),
    // Tenants never open connections to the node itself.
    `    iifname ${ANY_TUNNEL} ct state established,related accept`,
    `    iifname ${ANY_TUNNEL} counter name return_denied drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // A pod that crafts its own tunnel packets could pick any VNI: never let them reach a gateway
    // address (HaVips, members, anything in the gateway subnet), known pod or not.
    // (The port or protocol first: every forwarded packet passes here, and few are tunnel packets.)
    `    udp dport ${P} ip daddr @gateway_nets counter name tunnel_spoof drop`,
    '    ip protocol gre ip daddr @gateway_nets counter name tunnel_spoof drop',
    `    oifname ${ANY_TUNNEL} tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
    // Only the tunnel of the pod's own tenant, whatever the routing tables say.
    `    oifname ${ANY_TUNNEL} iif . ip saddr . oifname @pod_tunnel accept`,
    `    oifname ${ANY_TUNNEL} counter name tunnel_denied drop`,
    // Replies only to a pod bound to the tunnel they come from: a reused pod IP (new interface)
    // or another tenant's tunnel never receives a flow's replies.
    `    iifname ${ANY_TUNNEL} ct state established,related oif . ip daddr . iifname @pod_tunnel accept`,
    `    iifname ${ANY_TUNNEL} counter name return_denied drop`,
    // Peered CIDRs (tunnels are settled above, so a NAT tenant overlapping them is untouched):
    // only pods carrying the peered tenant's mark send there, and the peered VPC only answers.
    '    ip daddr @peered_dst ip daddr . meta mark @peered_ok accept',
    '    ip daddr @peered_dst counter name peering_denied drop',
    '    ip saddr @peered_dst ct state established,related ct direction reply accept',
    '    ip saddr @peered_dst counter name peering_denied drop',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    // Gateways only ever see node IPs; pod IPs stay private to the function VPC.
    `    oifname ${ANY_TUNNEL} snat ip to ${nodeIp}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface BindingDiff {
  readonly add: PodBinding[];
  readonly remove: PodBinding[];
  /** Interfaces that gain their first or lose their last pod address. */
  readonly addIfs: number[];
  readonly removeIfs: number[];
}

const sameBinding = (a: PodBinding, b: PodBinding) => a.ifindex === b.ifindex && a.tenant?.vni === b.tenant?.vni && markOf(a) === markOf(b);

/** A changed binding (new interface or tenant) is a remove plus an add: map values cannot be updated in place. */
export function diffBindings(installed: Bindings, desired: Bindings): BindingDiff {
  const remove = [...installed.values()].filter((i) => { const d = desired.get(i.ip); return !d || !sameBinding(i, d); });
  const add = [...desired.values()].filter((d) => { const i = installed.get(d.ip); return !i || !sameBinding(i, d); });
  const before = new Set(ifindexes(installed.values()));
  const after = new Set(ifindexes(desired.values()));
  return {
    add: add.sort(byIp), // stable order: readable logs, testable scripts
    remove: remove.sort(byIp),
    addIfs: [...after].filter((i) => !before.has(i)),
    removeIfs: [...before].filter((i) => !after.has(i)),
  };
}

/** One nft transaction: deletes first so a changed IP is re-added with its new interface and tenant. */
export function renderElementOps(diff: BindingDiff): string {
  const lines: string[] = [];
  const op = (verb: 'add' | 'delete', set: string, items: (string | number)[]) => {
    if (items.length) lines.push(`${verb} element inet ${NFT_TABLE} ${set} { ${items.join(', ')} }`);
  };
  const gone = tenanted(diff.remove);
  op('delete', 'pod_tenant', marked(diff.remove).map(srcElem));
  op('delete', 'pod_tunnel', gone.map((b) => tunnelElem(b, b.tenant)));
  op('delete', 'pod_src', diff.remove.map(srcElem));
  op('delete', 'pod_ifs', diff.removeIfs);
  const fresh = tenanted(diff.add);
  op('add', 'pod_ifs', diff.addIfs);
  op('add', 'pod_src', diff.add.map(srcElem));
  op('add', 'pod_tenant', marked(diff.add).map(markElem));
  op('add', 'pod_tunnel', fresh.map((b) => tunnelElem(b, b.tenant)));
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** A pod_tenant element read back: the interface (name, or index when it no longer exists) and the mark. */
export interface InstalledMark {
  readonly iface: string;
  readonly mark: number;
}

/** Reads the pod_tenant map back (ip → interface and mark); undefined when our table does not exist. */
export async function readInstalledMarks(exec: Exec): Promise<Map<string, InstalledMark> | undefined> {
  const r = await exec.run(['nft', '-j', 'list', 'map', 'inet', NFT_TABLE, 'pod_tenant'], { okCodes: [0, 1] });
  if (r.code !== 0) return undefined;
  const out = new Map<string, InstalledMark>();
  for (const item of JSON.parse(r.stdout || '{"nftables":[]}').nftables ?? []) {
    for (const [key, mark] of item.map?.elem ?? []) {
      // A table of an older agent keyed by source alone has no interface: it is rebuilt.
      const [iface, ip] = Array.isArray(key?.concat) ? key.concat : ['', key];
      out.set(String(ip), { iface: String(iface), mark: Number(mark) });
    }
  }
  return out;
}

export interface NodeCounterValue {
  readonly packets: number;
  readonly bytes: number;
}

/** `nft -j list counters table inet crossvpc_node` → the contract's named counters; others are ignored. */
export async function readNodeCounters(exec: Exec): Promise<Map<string, NodeCounterValue>> {
  const { stdout } = await exec.run(['nft', '-j', 'list', 'counters', 'table', 'inet', NFT_TABLE]);
  const known = new Set<string>(NODE_COUNTERS);
  const out = new Map<string, NodeCounterValue>();
  for (const item of JSON.parse(stdout).nftables ?? []) {
    const c = item?.counter;
    if (c && c.table === NFT_TABLE && known.has(c.name)) out.set(c.name, { packets: Number(c.packets) || 0, bytes: Number(c.bytes) || 0 });
  }
  return out;
}
