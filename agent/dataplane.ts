import { AgentConfig, AgentTenant, canonicalCidr, cidrContains, ipv4ToInt, MARK_MAX, MARK_MIN, NFT_TABLE, RULE_PRIORITY, nodeMac, NODE_COUNTERS, TENANT_MARK_MASK, TUNNEL_DEV_PREFIX, tunnelDev } from './config';
import { Exec, Step } from './exec';

/** What the agent cares about on the host, as read back from `ip -j`. */
export interface HostState {
  readonly links: LinkState[];
  readonly rules: RuleState[];
  /** Destinations per routing table, only tables in our mark range. */
  readonly routes: Map<number, string[]>;
  /** Permanent neighbour entries: `${dev} ${ip}` → lladdr. */
  readonly neighbours: Map<string, string>;
}

export interface LinkState {
  readonly name: string;
  readonly kind?: string;
  readonly id?: number;
  readonly remote?: string;
  readonly local?: string;
  readonly port?: number;
  readonly mtu: number;
  readonly address?: string;
  readonly up: boolean;
}

export interface RuleState {
  readonly priority: number;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly table?: string;
}

const OUR_DEV = new RegExp(`^${TUNNEL_DEV_PREFIX}(\\d+)$`);
/** nft wildcard for every tunnel device. */
const ANY_TUNNEL = `"${TUNNEL_DEV_PREFIX}*"`;
const inRange = (n: number | undefined): n is number => n !== undefined && n >= MARK_MIN && n <= MARK_MAX;
const num = (v: unknown): number | undefined => (v === undefined || v === null || v === '' ? undefined : Number(v));

/** Reads links, fwmark rules, our tables' routes and neighbours in four commands. */
export async function observeHost(exec: Exec): Promise<HostState> {
  const json = async (argv: string[]): Promise<any[]> => {
    const out = (await exec.run(argv)).stdout.trim();
    return out ? JSON.parse(out) : [];
  };
  const [links, rules, routes, neighs] = await Promise.all([
    json(['ip', '-d', '-j', 'link', 'show']),
    json(['ip', '-4', '-j', 'rule', 'show']),
    json(['ip', '-4', '-j', 'route', 'show', 'table', 'all']),
    json(['ip', '-4', '-j', 'neigh', 'show', 'nud', 'permanent']),
  ]);
  const byTable = new Map<number, string[]>();
  for (const r of routes) {
    const t = num(r.table);
    if (!inRange(t)) continue;
    const dst = r.dst === 'default' ? '0.0.0.0/0' : r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    byTable.set(t, [...(byTable.get(t) ?? []), dst]);
  }
  return {
    links: links
      .filter((l) => OUR_DEV.test(l.ifname))
      .map((l) => {
        const d = l.linkinfo?.info_data ?? {};
        return {
          name: l.ifname,
          kind: l.linkinfo?.info_kind,
          id: num(d.id ?? d.ikey),
          remote: d.remote,
          local: d.local,
          port: num(d.port),
          mtu: l.mtu,
          address: l.address,
          up: (l.flags ?? []).includes('UP'),
        };
      }),
    rules: rules.map((r) => ({ priority: r.priority, fwmark: num(r.fwmark), fwmask: num(r.fwmask), table: r.table })),
    routes: byTable,
    neighbours: new Map(neighs.filter((n) => n.lladdr).map((n) => [`${n.dev} ${n.dst}`, String(n.lladdr).toLowerCase()])),
  };
}

const run = (...argv: string[]): Step => ({ kind: 'run', argv });
/** Exit 2: the table vanished with the links already deleted, which is the goal. */
const flush = (table: number): Step => ({ kind: 'run', argv: ['ip', 'route', 'flush', 'table', `${table}`], okCodes: [0, 2] });

function linkAddArgv(c: AgentConfig, t: AgentTenant, nodeIp: string): string[] {
  const dev = tunnelDev(t.vni);
  return c.tunnel === 'vxlan'
    ? ['ip', 'link', 'add', dev, 'type', 'vxlan', 'id', `${t.vni}`, 'remote', t.haVip, 'local', nodeIp, 'dstport', `${c.vxlanPort}`, 'nolearning']
    : // Keyed GRE: the key carries the VNI, as the gateway's 28-byte overhead budget assumes.
      ['ip', 'link', 'add', dev, 'type', 'gre', 'remote', t.haVip, 'local', nodeIp, 'key', `${t.vni}`];
}

function linkMatches(c: AgentConfig, t: AgentTenant, nodeIp: string, l: LinkState): boolean {
  if (l.kind !== c.tunnel || l.id !== t.vni || l.remote !== t.haVip || l.local !== nodeIp) return false;
  return c.tunnel !== 'vxlan' || l.port === c.vxlanPort;
}

/**
 * The minimal steps that turn `host` into the tunnels, routes and rules `config` asks for.
 * Empty when the host already matches, so a periodic re-check is quiet; stale cx* links,
 * routes and fwmark rules in our range are removed, nothing outside them is touched.
 */
export function planTunnels(c: AgentConfig, nodeIp: string, host: HostState): Step[] {
  const steps: Step[] = [];
  const mac = nodeMac(nodeIp);
  const wanted = new Map(c.tenants.map((t) => [tunnelDev(t.vni), t]));
  const links = new Map(host.links.map((l) => [l.name, l]));

  for (const l of host.links) {
    const t = wanted.get(l.name);
    // A link whose identity changed (haVip moved, node IP changed) cannot be edited in place: recreate.
    if (!t || !linkMatches(c, t, nodeIp, l)) {
      steps.push(run('ip', 'link', 'del', l.name));
      links.delete(l.name);
    }
  }

  for (const t of c.tenants) {
    const dev = tunnelDev(t.vni);
    const have = links.get(dev);
    if (!have) {
      steps.push({ kind: 'run', argv: linkAddArgv(c, t, nodeIp) });
      // Replies arrive from tenant sources the main table routes elsewhere; strict rp_filter would drop them.
      steps.push({ kind: 'write', path: `/proc/sys/net/ipv4/conf/${dev}/rp_filter`, value: '0' });
      // No IPv6 on tunnels: keeps router solicitations off the gateway.
      steps.push({ kind: 'write', path: `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, value: '1', optional: true });
    }
    const wantMac = c.tunnel === 'vxlan' ? mac : undefined;
    if (!have || have.mtu !== c.mtu || !have.up || (wantMac && have.address !== wantMac)) {
      steps.push(run('ip', 'link', 'set', 'dev', dev, ...(wantMac ? ['address', wantMac] : []), 'mtu', `${c.mtu}`, 'up'));
    }
    if (c.tunnel === 'vxlan' && (!have || host.neighbours.get(`${dev} ${c.nextHop}`) !== t.gatewayMac)) {
      steps.push(run('ip', 'neigh', 'replace', c.nextHop, 'lladdr', t.gatewayMac, 'dev', dev, 'nud', 'permanent'));
    }
    const routes = host.routes.get(t.table) ?? [];
    // Deleting a link takes its routes along; flush whatever else is left so the table is only ours.
    if (!have && routes.length) steps.push(flush(t.table));
    const present = new Set(have ? routes : []);
    if (have) for (const dst of routes) if (!t.cidrs.includes(dst)) steps.push(run('ip', 'route', 'del', dst, 'table', `${t.table}`));
    for (const cidr of t.cidrs) {
      if (present.has(cidr)) continue;
      steps.push(
        c.tunnel === 'vxlan'
          ? run('ip', 'route', 'replace', cidr, 'via', c.nextHop, 'dev', dev, 'onlink', 'table', `${t.table}`)
          : run('ip', 'route', 'replace', cidr, 'dev', dev, 'table', `${t.table}`),
      );
    }
  }

  const tables = new Set(c.tenants.map((t) => t.table));
  for (const table of host.routes.keys()) {
    if (!tables.has(table)) steps.push(flush(table));
  }

  const ours = new Set<number>();
  for (const r of host.rules) {
    const tableNo = num(r.table);
    if (!inRange(r.fwmark) && !inRange(tableNo)) continue;
    const exact = r.fwmark !== undefined && r.fwmask === undefined && tables.has(r.fwmark) && tableNo === r.fwmark && r.priority === RULE_PRIORITY;
    if (exact && !ours.has(r.fwmark!)) ours.add(r.fwmark!);
    else {
      const sel = r.fwmark !== undefined ? ['fwmark', `0x${r.fwmark.toString(16)}${r.fwmask !== undefined ? `/0x${r.fwmask.toString(16)}` : ''}`] : [];
      steps.push(run('ip', 'rule', 'del', 'priority', `${r.priority}`, ...sel, 'table', `${r.table}`));
    }
  }
  for (const t of c.tenants) {
    if (!ours.has(t.table)) steps.push(run('ip', 'rule', 'add', 'fwmark', `${t.table}`, 'lookup', `${t.table}`, 'priority', `${RULE_PRIORITY}`));
  }
  // Everything the node sends without a tenant mark skips the per-tenant rules in one step.
  const skip = host.rules.some((r) => r.priority === RULE_PRIORITY - 1 && r.fwmark === 0 && r.fwmask === TENANT_MARK_MASK && (r.table === 'main' || num(r.table) === 254));
  if (!skip && c.tenants.length) {
    steps.push(run('ip', 'rule', 'add', 'fwmark', `0/0x${TENANT_MARK_MASK.toString(16)}`, 'lookup', 'main', 'priority', `${RULE_PRIORITY - 1}`));
  }
  return steps;
}

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
}

/** Pod IP → binding: the state of the node table's pod sets. */
export type Bindings = ReadonlyMap<string, PodBinding>;

const srcElem = (b: PodBinding) => `${b.ifindex} . ${b.ip}`;
const tenantElem = (b: PodBinding, t: AgentTenant) => `${srcElem(b)} : 0x${t.table.toString(16)}`;
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
  return [
    `table inet ${NFT_TABLE} {}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    `  set pod_ifs { typeof iif;${elements(ifindexes(b))} }`,
    `  set pod_src { typeof iif . ip saddr;${elements(b.map(srcElem))} }`,
    `  map pod_tenant { typeof iif . ip saddr : meta mark;${elements(withTenant.map((x) => tenantElem(x, x.tenant)))} }`,
    `  set pod_tunnel { typeof iif . ip saddr . oifname;${elements(withTenant.map((x) => tunnelElem(x, x.tenant)))} }`,
    `  set gateway_nets { type ipv4_addr; flags interval;${elements(gatewayNets(c))} }`,
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
    // The node's own tunnel devices decapsulate whatever reaches their port: never from a pod.
    `    iif @pod_ifs udp dport ${P} counter name tunnel_spoof drop`,
    '    iif @pod_ifs ip protocol gre counter name tunnel_spoof drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // A pod that crafts its own tunnel packets could pick any VNI: never let them reach a gateway
    // address (HaVips, members, anything in the gateway subnet), known pod or not.
    `    ip daddr @gateway_nets udp dport ${P} counter name tunnel_spoof drop`,
    '    ip daddr @gateway_nets ip protocol gre counter name tunnel_spoof drop',
    `    oifname ${ANY_TUNNEL} tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
    // Only the tunnel of the pod's own tenant, whatever the routing tables say.
    `    oifname ${ANY_TUNNEL} iif . ip saddr . oifname @pod_tunnel accept`,
    `    oifname ${ANY_TUNNEL} counter name tunnel_denied drop`,
    `    iifname ${ANY_TUNNEL} ct state established,related accept`,
    `    iifname ${ANY_TUNNEL} counter name return_denied drop`,
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

const sameBinding = (a: PodBinding, b: PodBinding) => a.ifindex === b.ifindex && a.tenant?.vni === b.tenant?.vni && a.tenant?.table === b.tenant?.table;

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
  op('delete', 'pod_tenant', gone.map(srcElem));
  op('delete', 'pod_tunnel', gone.map((b) => tunnelElem(b, b.tenant)));
  op('delete', 'pod_src', diff.remove.map(srcElem));
  op('delete', 'pod_ifs', diff.removeIfs);
  const fresh = tenanted(diff.add);
  op('add', 'pod_ifs', diff.addIfs);
  op('add', 'pod_src', diff.add.map(srcElem));
  op('add', 'pod_tenant', fresh.map((b) => tenantElem(b, b.tenant)));
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
