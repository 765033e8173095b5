/**
 * Internet egress in the emulation (the 'tenantVpc' mode): an "internet" namespace on
 * documentation addresses, and in each egress tenant's VPC fabric a stand-in for the tenant's
 * own NAT gateway (default route toward the internet, SNAT to a per-tenant "EIP"). The egress
 * tenants come from the plan only: the pairs' documents' `egress` column, cross-checked with
 * the agents' ConfigMap.
 */
import { join } from 'path';
import { counter } from './attacks';
import { readStatus } from './failover';
import type { Emulation, Pod } from './emulator';
import type { EmulatedPlan } from './member-image';
import { Check } from './report';
import { inParallel, spawnLogged, sleepSync } from './sys';
import { Topology } from './topology';
import { VPC_MTU } from './wiring';
import { GATEWAY_NFT_TABLE, tunnelDev } from '../contract';

/** The internet server: a Redis (CLIENT INFO answers with the source address it saw). Documentation range. */
export const INTERNET_SERVER = '198.51.100.10';
/** A private host in the internet namespace: whatever reaches it leaked a non-internet destination through egress. */
export const PRIVATE_HOST = '192.168.77.10';
/** The stand-in for egress tenant k's NAT gateway EIP (documentation range, distinct per tenant). */
export const eipStandIn = (k: number) => `203.0.113.${10 + k}`;
/** Link-local next hops of the link from egress tenant k's fabric: host 1 in the fabric, 2 in the internet. */
const hop = (k: number, host: 1 | 2) => `169.254.251.${4 * k + host}`;
const NAT_TABLE = 'crossvpc_emu_natgw';
/** Where a tenant fabric counts packets for a destination its gateway must not send it. */
const LEAK_TABLE = 'crossvpc_emu_leak';

/** A tenant whose rows say `egress tenant_vpc`: its subnets (the NAT gateway stand-in SNATs them) and NAT IPs. */
export interface EgressTenantPlan {
  readonly name: string;
  readonly subnets: string[];
  readonly natIps: string[];
}

/** The plan's egress tenants (document rows), refusing a ConfigMap that disagrees with the documents. */
export function egressTenantsOf(p: EmulatedPlan): EgressTenantPlan[] {
  const byName = new Map<string, { subnets: Set<string>; natIps: Set<string> }>();
  for (const doc of p.documents.values()) {
    for (const rows of Object.values(doc.rows)) {
      for (const r of rows.filter((x) => x.egress === 'tenant_vpc')) {
        const t = byName.get(r.name) ?? { subnets: new Set<string>(), natIps: new Set<string>() };
        t.subnets.add(r.subnetCidr);
        t.natIps.add(r.natIp);
        byName.set(r.name, t);
      }
    }
  }
  const fromDocs = [...byName.keys()].sort();
  // Every egress mode sends the pods' public traffic into the tunnel on the nodes.
  const withEgress = new Set<string>([...p.documents.values()].flatMap((doc) => Object.values(doc.rows).flatMap((rows) => rows.filter((r) => r.egress !== 'none').map((r) => r.name))));
  const fromConfigMap = p.agentConfig.tenants.filter((t) => t.internetEgress).map((t) => t.name).sort();
  if ([...withEgress].sort().join(',') !== fromConfigMap.join(',')) {
    throw new Error(`cdk.tf.json: the pair documents give internet egress to ${[...withEgress].sort().join(', ') || 'no tenant'}, the agents' ConfigMap to ${fromConfigMap.join(', ') || 'no tenant'}; nodes and gateways would disagree`);
  }
  return fromDocs.map((name) => ({ name, subnets: [...byName.get(name)!.subnets], natIps: [...byName.get(name)!.natIps] }));
}

export interface EgressTenant extends EgressTenantPlan {
  /** `tenant_vpc`: fab is the tenant's VPC fabric; `eip`: the function fabric, whose IGW stand-in maps the EIP (eip-egress.ts). */
  readonly mode: 'tenant_vpc' | 'eip';
  readonly fab: string;
  readonly eip: string;
}

/**
 * The emulated internet: one namespace with the server on INTERNET_SERVER and PRIVATE_HOST
 * (never the root namespace, never an uplink), linked to each egress tenant's fabric.
 */
export class Internet {
  private readonly linked = new Map<string, EgressTenant>();
  private nsName?: string;

  constructor(private readonly topo: Topology, private readonly runDir: string) {}

  get ns(): string {
    if (!this.nsName) throw new Error('the emulated internet has not started');
    return this.nsName;
  }

  tenants(): EgressTenant[] {
    return [...this.linked.values()];
  }

  /** An EIP tenant, wired by eip-egress.ts through the function fabric's IGW stand-in. */
  add(t: EgressTenant): void {
    this.linked.set(t.name, t);
  }

  /** The namespace with its servers (once). */
  start(): void {
    if (this.nsName) return;
    const ns = this.topo.addNs('inet');
    this.nsName = ns;
    for (const a of [INTERNET_SERVER, PRIVATE_HOST]) this.topo.exec(ns, 'ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    this.topo.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    const log = join(this.runDir, 'internet-redis.log');
    spawnLogged('ip', ['netns', 'exec', ns, 'redis-server', '--bind', INTERNET_SERVER, PRIVATE_HOST, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no', '--logfile', ''], log);
    for (const a of [INTERNET_SERVER, PRIVATE_HOST]) {
      for (let i = 0; i < 50 && !this.topo.ok(ns, 'redis-cli', ['-h', a, 'ping'], 2000); i++) sleepSync(100);
      if (!this.topo.ok(ns, 'redis-cli', ['-h', a, 'ping'], 2000)) throw new Error(`the internet server on ${a} in ${ns} did not start (see ${log})`);
    }
  }

  /** The tenant's NAT gateway stand-in in its fabric: default toward the internet, its subnets SNATed to its EIP. */
  connect(t: EgressTenantPlan, fab: string): EgressTenant {
    const have = this.linked.get(t.name);
    if (have) return have;
    this.start();
    const k = this.tenants().filter((x) => x.mode === 'tenant_vpc').length;
    const eip = eipStandIn(k);
    const dev = `e${k}`;
    this.topo.link(fab, 'inet', this.ns, dev, { mtu: VPC_MTU });
    this.topo.exec(fab, 'ip', ['addr', 'add', `${hop(k, 1)}/30`, 'dev', 'inet']);
    this.topo.exec(this.ns, 'ip', ['addr', 'add', `${hop(k, 2)}/30`, 'dev', dev]);
    this.topo.exec(fab, 'ip', ['route', 'replace', 'default', 'via', hop(k, 2), 'dev', 'inet']);
    this.topo.exec(this.ns, 'ip', ['route', 'replace', `${eip}/32`, 'via', hop(k, 1), 'dev', dev]);
    this.topo.exec(fab, 'nft', ['-f', '-'], {
      input: `table ip ${NAT_TABLE} {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "inet" ip saddr { ${t.subnets.join(', ')} } snat to ${eip}\n  }\n}\n`,
    });
    const out: EgressTenant = { ...t, mode: 'tenant_vpc', fab, eip };
    this.linked.set(t.name, out);
    return out;
  }
}

/** The source address the internet server saw for a pod's connection (`addr=` of CLIENT INFO), or '' when none reached it. */
async function seenSource(emu: Emulation, pod: Pod, host: string): Promise<string> {
  const info = await emu.redisAsync(pod, host, ['client', 'info'], 2);
  return /addr=([\d.]+):\d+/.exec(info)?.[1] ?? '';
}

/**
 * The egress checks: each egress tenant's pods reach the internet server, which sees that
 * tenant's EIP stand-in, and the tenant's NAT gateway stand-in saw the NAT IP; the same pods
 * reach no private host through egress; pods of other tenants and unlabelled pods reach nothing.
 */
export async function egressChecks(emu: Emulation): Promise<Check[]> {
  const egress = emu.internetTenants();
  if (!egress.length) return [];
  const t0 = Date.now();
  const internet = emu.internetNs()!;
  const pods = emu.pods();
  const checks: Check[] = [];
  const byTenant = new Map(egress.map((t) => [t.name, t]));
  const probes = pods.map((pod) => ({ pod, t: pod.tenant ? byTenant.get(pod.tenant) : undefined }));
  const egressPods = probes.filter((p): p is { pod: Pod; t: EgressTenant } => !!p.t);
  const seen = await inParallel(egressPods, 8, ({ pod }) => seenSource(emu, pod, INTERNET_SERVER));
  // The control first: every egress pod reaches the server, as exactly its own EIP.
  egressPods.forEach(({ pod, t }, i) => {
    const other = egress.find((o) => o.eip === seen[i] && o.name !== t.name);
    checks.push({ name: `egress: pod ${pod.name} reaches the internet server ${INTERNET_SERVER}, which sees tenant ${t.name}'s EIP stand-in ${t.eip}`, pass: seen[i] === t.eip, detail: `server saw ${seen[i] || 'no connection'}${other ? ` (tenant ${other.name}'s EIP)` : ''}` });
  });
  // What the tenant VPC sees: the translated flow's inner source in its NAT gateway stand-in is the NAT IP.
  for (const t of egress.filter((x) => x.mode === 'tenant_vpc')) {
    const flows = emu.exec(t.fab, 'conntrack', ['-L', '-p', 'tcp', '--orig-dst', INTERNET_SERVER], { allowFail: true }).split('\n').filter((l) => l.includes('dport=6379'));
    const sources = [...new Set(flows.map((l) => /src=([\d.]+)/.exec(l)?.[1] ?? '?'))];
    const translated = [...new Set(flows.map((l) => [...l.matchAll(/dst=([\d.]+)/g)][1]?.[1] ?? '?'))];
    checks.push({ name: `egress: tenant ${t.name}'s NAT gateway stand-in saw its flows from the NAT IP ${t.natIps.join(', ')} and translated them to ${t.eip}`, pass: flows.length > 0 && sources.every((s) => t.natIps.includes(s)) && translated.every((d) => d === t.eip), detail: `${flows.length} flow(s): inner sources ${sources.join(', ') || 'none'}, translated to ${translated.join(', ') || 'none'}` });
  }
  // Pods without egress (other tenants, unlabelled): nothing reaches the internet through any tenant.
  const master = emu.liveMaster(0);
  const unmatchedBefore = master ? counter(emu, master.ns, GATEWAY_NFT_TABLE, 'unmatched') : -1;
  const others = probes.filter(({ t }) => !t);
  const otherSeen = await inParallel(others, 8, ({ pod }) => seenSource(emu, pod, INTERNET_SERVER));
  const unmatchedAfter = master ? counter(emu, master.ns, GATEWAY_NFT_TABLE, 'unmatched') : -1;
  others.forEach(({ pod }, i) => {
    checks.push({ name: `egress: pod ${pod.name} (${pod.tenant ? `tenant ${pod.tenant} has no egress` : 'unlabelled'}) does not reach the internet server through any tenant`, pass: otherSeen[i] === '', detail: otherSeen[i] ? `REACHED as ${otherSeen[i]}` : 'no connection' });
  });
  if (others.length) checks.push({ name: `egress: the gateway's unmatched drops while pods without egress tried the internet (their nodes route it nowhere, so none are expected)`, pass: unmatchedAfter === unmatchedBefore, detail: `${master?.id ?? 'no master'} unmatched ${unmatchedBefore} -> ${unmatchedAfter}` });
  // A private address is no internet destination: the internet namespace holds one, and the tenant fabric routes to it.
  const privSeen = await inParallel(egressPods, 8, ({ pod }) => seenSource(emu, pod, PRIVATE_HOST));
  egressPods.forEach(({ pod, t }, i) => {
    const control = seen[i];
    checks.push({ name: `egress: pod ${pod.name} -> private host ${PRIVATE_HOST} behind tenant ${t.name}'s NAT gateway stand-in gets nothing (control: the public ${INTERNET_SERVER} answers)`, pass: privSeen[i] === '' && control === t.eip, detail: `private ${privSeen[i] ? `REACHED as ${privSeen[i]}` : 'no connection'}; public ${control || 'no connection'}` });
  });
  checks.push(...(await forcedThroughTunnel(emu, egress)));
  const reachable = emu.ok(egress[0].fab, 'redis-cli', ['-h', PRIVATE_HOST, 'ping'], 3000);
  checks.push({ name: `egress: control: tenant ${egress[0].name}'s VPC itself reaches the private host ${PRIVATE_HOST} in ${internet}`, pass: reachable, detail: reachable ? 'PONG' : 'no answer' });
  emu.progress(`internet egress checks: ${checks.length} in ${Date.now() - t0} ms`);
  return checks;
}

/** A device's packet counter (`rx` or `tx`) in a namespace, -1 when the device is missing. */
function packets(emu: Emulation, ns: string, dev: string, dir: 'rx' | 'tx'): number {
  const out = emu.exec(ns, 'cat', [`/sys/class/net/${dev}/statistics/${dir}_packets`], { allowFail: true }).trim();
  return out ? Number(out) : -1;
}

/**
 * The gateway alone: node n1 (as a compromised or misconfigured node would) routes into a
 * tenant's tunnel what the agent keeps out of it: the internet for a tenant without egress, a
 * private host for an egress tenant. The packets reach the master (its tunnel device counts
 * them) and none arrive in the tenant's VPC: the ruleset drops them as unmatched, or the
 * tenant's gateway table routes them nowhere (a tenant without egress has no default there).
 * Controls: the egress pods reaching the server (above).
 */
async function forcedThroughTunnel(emu: Emulation, egress: readonly EgressTenant[]): Promise<Check[]> {
  const master = emu.liveMaster(0);
  if (!master) return [{ name: 'egress: forced through a tunnel', pass: false, detail: 'pair 0 has no live master' }];
  const node = emu.nodeNs(0);
  const egressNames = new Set(egress.map((t) => t.name));
  const pods = emu.podsOn(0);
  const cases: Array<{ tenant: string; dst: string; what: string; fab: string; where: string; fromMembers?: boolean }> = [];
  const without = emu.activeTenants().find((t) => !egressNames.has(t.name) && pods.some((p) => p.tenant === t.name));
  if (without) cases.push({ tenant: without.name, dst: INTERNET_SERVER, what: `the internet server ${INTERNET_SERVER} (tenant ${without.name} has no egress)`, fab: emu.tenantFabric(without.name), where: 'the tenant VPC' });
  // The first tenant of each egress mode with a pod here: its way out is its own fabric.
  const firsts = (['tenant_vpc', 'eip'] as const).map((m) => egress.find((t) => t.mode === m && pods.some((p) => p.tenant === t.name))).filter((t): t is EgressTenant => !!t);
  for (const e of firsts) cases.push({ tenant: e.name, dst: PRIVATE_HOST, what: `the private host ${PRIVATE_HOST} (not a destination of tenant ${e.name})`, fab: e.fab, where: e.mode === 'eip' ? 'the function VPC from a member' : 'the tenant VPC', fromMembers: e.mode === 'eip' });
  const checks: Check[] = [];
  for (const c of cases) {
    const t = emu.tenants().find((x) => x.name === c.tenant)!;
    const pod = pods.find((p) => p.tenant === c.tenant)!;
    const name = `egress: node n1 forcing pod ${pod.name}'s traffic to ${c.what} into its tunnel: it reaches ${master.id}, which sends none of it to ${c.where}`;
    // The agent's own route to the tenant's first destination, with the destination swapped.
    const own = emu.exec(node, 'ip', ['-o', 'route', 'show', 'table', String(t.table), 'exact', t.cidrs[0]]).trim().split('\n')[0];
    const via = own.split(/\s+/).slice(1).filter((w) => w !== '\\');
    if (!via.includes(tunnelDev(t.vni))) {
      checks.push({ name, pass: false, detail: `the agent's route to ${t.cidrs[0]} in table ${t.table} is not into ${tunnelDev(t.vni)}: ${own || 'none'}` });
      continue;
    }
    // The VPC it would leave by counts what arrives for that destination (before its router routes it).
    const fab = c.fab;
    // In the function VPC the node's own path (once the agent has reconciled the forced route
    // away) arrives too: there, only frames from the members' ports count.
    const family = c.fromMembers ? 'bridge' : 'ip';
    const from = c.fromMembers ? `iifname { ${emu.members(0).map((m) => `"${m.id}"`).join(', ')} } ` : '';
    emu.exec(fab, 'nft', ['-f', '-'], { input: `table ${family} ${LEAK_TABLE} {\n  counter arrived {}\n  chain prerouting {\n    type filter hook prerouting priority ${c.fromMembers ? -300 : 'raw'}; policy accept;\n    ${from}ip daddr ${c.dst} counter name arrived\n  }\n}\n` });
    emu.exec(node, 'ip', ['route', 'replace', `${c.dst}/32`, ...via, 'table', String(t.table)]);
    try {
      const arrived = () => Number(/packets (\d+)/.exec(emu.exec(fab, 'nft', ['list', 'counter', family, LEAK_TABLE, 'arrived'], { allowFail: true }))?.[1] ?? -1);
      const read = () => ({ unmatched: counter(emu, master.ns, GATEWAY_NFT_TABLE, 'unmatched'), tunnelRx: packets(emu, master.ns, tunnelDev(t.vni), 'rx') });
      const before = read();
      const seen = await seenSource(emu, pod, c.dst);
      const after = read();
      const leaked = arrived();
      const pass = seen === '' && before.tunnelRx >= 0 && after.tunnelRx > before.tunnelRx && leaked === 0;
      const how = !pass ? '' : after.unmatched > before.unmatched ? ': dropped by the ruleset as unmatched' : ': routed nowhere by its gateway table';
      checks.push({ name, pass, detail: `${seen ? `REACHED as ${seen}` : 'no connection'}; ${tunnelDev(t.vni)} rx ${before.tunnelRx} -> ${after.tunnelRx}, ${leaked} packet(s) for ${c.dst} arrived in ${c.where}, unmatched ${before.unmatched} -> ${after.unmatched}${how}` });
    } finally {
      emu.exec(node, 'ip', ['route', 'del', `${c.dst}/32`, 'table', String(t.table)], { allowFail: true });
      emu.exec(fab, 'nft', ['delete', 'table', family, LEAK_TABLE], { allowFail: true });
    }
  }
  return checks;
}

/**
 * One long-lived INCR connection through each egress tenant's egress (from its first pod to the
 * internet server), for the failover scenarios: `finish()` stops them and checks each never
 * reconnected, got every reply in sequence, and is still open from the tenant's EIP stand-in.
 */
export function holdEgressConnections(emu: Emulation): { finish(): Check[] } {
  const clients = emu.internetTenants().flatMap((t) => {
    const pod = emu.pods().find((p) => p.tenant === t.name);
    return pod ? [{ t, pod, ...emu.startIncrClient(pod, `egress:${t.name}`, INTERNET_SERVER) }] : [];
  });
  return {
    finish(): Check[] {
      if (!clients.length) return [];
      try {
        const open = emu.exec(emu.internetNs()!, 'redis-cli', ['-h', INTERNET_SERVER, 'client', 'list'], { allowFail: true }).split('\n').filter((l) => l.includes('cmd=incr'));
        return clients.map(({ t, pod, statusFile }) => {
          const st = readStatus(statusFile);
          const still = open.some((l) => l.includes(`addr=${t.eip}:`));
          return {
            name: `egress: pod ${pod.name}'s connection through tenant ${t.name}'s egress lived through the faults (one TCP connection, no reconnect, every reply in sequence, still open from ${t.eip})`,
            // As FailoverRunner judges the tenant connections: an INCR timing out while TCP retransmits is reported, not fatal.
            pass: st.acked > 0 && st.reconnects === 0 && st.sequenceBreaks === 0 && still,
            detail: `${st.acked} INCRs acknowledged, longest pause ${st.maxGapMs} ms, ${st.reconnects} reconnects, ${st.failedOps} failed, ${still ? 'open' : 'NOT open'} at the server`,
          };
        });
      } finally {
        for (const c of clients) c.child.kill('SIGTERM');
      }
    },
  };
}
