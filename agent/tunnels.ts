// Tunnels, routes and fwmark rules: what the host has (observeHost) and the steps to the wanted state (planTunnels).
import { AgentConfig, AgentTenant, cidrContains, MARK_MAX, MARK_MIN, NON_PUBLIC_RANGES, RULE_PRIORITY, nodeMac, TENANT_MARK_MASK, TUNNEL_DEV_PREFIX, tunnelDev } from './config';
import { Exec, Step } from './exec';

/** What the agent cares about on the host, as read back from `ip -j`. */
export interface HostState {
  readonly links: LinkState[];
  readonly rules: RuleState[];
  /** Routes per routing table, only tables in our mark range: the destination (`0.0.0.0/0` for default), `throw <cidr>` for a throw route. */
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
    byTable.set(t, [...(byTable.get(t) ?? []), r.type === 'throw' ? `throw ${dst}` : dst]);
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

/** A route key of HostState.routes: `throw <cidr>` or a destination through the tunnel. */
const isThrow = (key: string) => key.startsWith('throw ');
/**
 * The routes a tenant's table must hold: its destinations into the tunnel and, with internet
 * egress, a default into the tunnel plus a `throw` (back to the next rule, the main table) for
 * every non-internet range and the cluster's own ranges, except those a destination already
 * covers (a longer destination prefix wins inside a throw range anyway).
 */
export function tableRoutes(c: AgentConfig, t: AgentTenant): string[] {
  if (!t.internetEgress) return [...t.cidrs];
  const cl = c.cluster!;
  const local = [...new Set([...NON_PUBLIC_RANGES, cl.vpcCidr, ...cl.podCidrs, ...cl.nodeCidrs, ...(cl.serviceCidr ? [cl.serviceCidr] : [])])];
  const covered = (r: string) => t.cidrs.some((d) => d === r || (Number(d.split('/')[1]) <= Number(r.split('/')[1]) && cidrContains(d, r.split('/')[0])));
  return [...t.cidrs, '0.0.0.0/0', ...local.filter((r) => !covered(r)).map((r) => `throw ${r}`)];
}
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
    const wantRoutes = tableRoutes(c, t);
    if (have) for (const key of routes) if (!wantRoutes.includes(key)) steps.push(run('ip', 'route', 'del', ...key.split(' '), 'table', `${t.table}`));
    for (const key of wantRoutes) {
      if (present.has(key)) continue;
      steps.push(
        isThrow(key)
          ? run('ip', 'route', 'replace', ...key.split(' '), 'table', `${t.table}`)
          : c.tunnel === 'vxlan'
            ? run('ip', 'route', 'replace', key, 'via', c.nextHop, 'dev', dev, 'onlink', 'table', `${t.table}`)
            : run('ip', 'route', 'replace', key, 'dev', dev, 'table', `${t.table}`),
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
