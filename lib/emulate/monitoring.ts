import { execFileSync } from 'child_process';
import { join } from 'path';
import type { Emulation, GatewayMember } from './emulator';
import { cidrhost, primaryEniIngress } from './plan';
import { PrometheusServer, renderPrometheusConfig, SCRAPE_INTERVAL_SEC, ScrapeTarget, TargetHealth } from './prometheus';
import type { Check } from './report';
import { sleep } from './sys';
import { slash24, Wiring } from './wiring';
import { AGENT_METRIC, cidrContains, GATEWAY_METRIC_PREFIX, GATEWAY_METRICS_INTERVAL_SEC, GatewayCounter, NodeCounter } from '../contract';

/**
 * The emulation's monitoring host: a machine of the function VPC running a real Prometheus
 * server that scrapes every gateway member's node_exporter and every node agent, and the
 * checks that read the run back through Prometheus's HTTP API. Everything it knows comes
 * from the synthesized plan: targets, ports and who the members' security group admits.
 */

export const GATEWAY_JOB = 'crossvpc-gateway';
export const AGENT_JOB = 'crossvpc-agent';
const GW = (name: string) => `${GATEWAY_METRIC_PREFIX}${name}`;
/** The drop reasons the attack checks (attacks.ts, checks.ts) make move. */
const ATTACKED_GATEWAY_REASONS: readonly GatewayCounter[] = ['tunnel_not_havip', 'not_from_peer'];
const ATTACKED_NODE_REASONS: readonly NodeCounter[] = ['pod_spoof', 'tunnel_spoof'];
/** Longest wait for a change to show in Prometheus: a textfile write, a scrape, and slack for a busy host. */
const VISIBLE_WITHIN_MS = (GATEWAY_METRICS_INTERVAL_SEC * 2 + 4) * 1000;
/** Bytes a tenant's pod writes to make its counters move (well above any background). */
const TRAFFIC_BYTES = 20_000;

export interface MonitoringOptions {
  readonly emu: Emulation;
  readonly wiring: Wiring;
  readonly json: any;
  readonly functionCidr: string;
  /** /24s of the function VPC already wired (members' and nodes' subnets). */
  readonly takenSubnets: readonly string[];
  readonly agentMetricsPort: number;
  /** The node agents' addresses (nodes may be wired after the server starts). */
  readonly nodeIps: readonly string[];
  /** Whether a member runs node_exporter (the plan has the gateway metrics on). */
  readonly servesMetrics: (m: GatewayMember) => boolean;
  readonly runDir: string;
  readonly progress: (msg: string) => void;
}

/** Where the monitoring host sits, and whether each member's security group admits it on the metrics port. */
export interface MonitoringPlacement {
  readonly ip: string;
  readonly subnet: string;
  /** Per member id: undefined when admitted, else why not. */
  readonly refused: ReadonlyMap<string, string>;
  /** What each member admits on its metrics port: the fabric enforces it. */
  readonly sources: ReadonlyMap<string, string[]>;
}

/**
 * The monitoring host's address: inside the function VPC, in a /24 nothing else uses, and
 * inside a CIDR the members' security group admits on the metrics port when there is one
 * (preferring 10.x.8.10, the README's example Prometheus subnet). A group source (say
 * `metricsSecurityGroupId`) admits it too: the host stands in for that group's Prometheus
 * servers. If nothing admits an address of the function VPC, the host still comes up and
 * `refused` says why, so the gateway targets show as down with the reason.
 */
export function placeMonitoringHost(functionCidr: string, taken: readonly string[], ingress: ReadonlyMap<string, { cidrs: string[]; groups: string[] }>, ownGroups: ReadonlySet<string>): MonitoringPlacement {
  const o = functionCidr.split('/')[0].split('.').map(Number);
  const fallback = cidrhost(`${o[0]}.${o[1]}.${o[2] + 8}.0/24`, 10);
  const usable = (ip: string) => cidrContains(functionCidr, ip) && !taken.includes(slash24(ip));
  const hostOf = (cidr: string) => {
    const size = 2 ** (32 - Number(cidr.split('/')[1]));
    return cidrhost(cidr, size >= 16 ? 10 : size > 2 ? 1 : 0);
  };
  const cidrs = [...new Set([...ingress.values()].flatMap((r) => r.cidrs))];
  const candidates = [fallback, ...cidrs.map(hostOf)].filter(usable);
  const ip = candidates.find((c) => cidrs.some((s) => cidrContains(s, c))) ?? fallback;
  const refused = new Map<string, string>();
  const sources = new Map<string, string[]>();
  for (const [member, rule] of ingress) {
    const inGroup = rule.groups.filter((g) => !ownGroups.has(g));
    sources.set(member, [...rule.cidrs, ...(inGroup.length ? [ip] : [])]);
    if (!rule.cidrs.some((c) => cidrContains(c, ip)) && !inGroup.length) {
      refused.set(member, `its security group admits the metrics port only from ${[...rule.cidrs, ...rule.groups].join(', ') || 'nobody'}, which does not cover the monitoring host ${ip} (metricsSources must include an address of the function VPC ${functionCidr} outside the members' and nodes' subnets, or use metricsSecurityGroupId)`);
    }
  }
  return { ip, subnet: slash24(ip), refused, sources };
}

/** Drop counters by reason, summed over members (gateway) and nodes (agent). */
export interface DropCounts {
  readonly gateway: ReadonlyMap<string, number>;
  readonly node: ReadonlyMap<string, number>;
}

export class Monitoring {
  private constructor(
    /** The monitoring host's namespace. */
    readonly ns: string,
    private readonly opts: MonitoringOptions,
    private readonly server: PrometheusServer,
    readonly placement: MonitoringPlacement,
    private readonly gateways: readonly GatewayMember[],
    readonly targets: readonly ScrapeTarget[],
    private readonly startedAt: number,
  ) {}

  /** A monitoring host and its Prometheus, when some member serves metrics; undefined otherwise. */
  static async start(opts: MonitoringOptions): Promise<Monitoring | undefined> {
    const { emu, wiring, json } = opts;
    const gateways = emu.members().filter(opts.servesMetrics);
    if (!gateways.length) return undefined;
    const ingress = new Map(gateways.map((m) => [m.id, primaryEniIngress(json, m.pair, m.member, Number(m.env.METRICS_PORT))]));
    const ownGroups = new Set(Object.keys(json.resource?.aws_security_group ?? {}).map((id) => `\${aws_security_group.${id}.id}`));
    const placement = placeMonitoringHost(opts.functionCidr, opts.takenSubnets, ingress, ownGroups);
    const ns = wiring.addHost('mon', placement.ip, placement.subnet);
    wiring.admitOnly('metrics', gateways.map((m) => ({ dev: m.id, port: Number(m.env.METRICS_PORT), sources: placement.sources.get(m.id)! })));
    const targets: ScrapeTarget[] = [
      ...gateways.map((m) => ({ job: GATEWAY_JOB, address: `${m.env.SELF_IP}:${m.env.METRICS_PORT}`, labels: { pair: String(m.pair), member: m.member } })),
      ...opts.nodeIps.map((ip, i) => ({ job: AGENT_JOB, address: `${ip}:${opts.agentMetricsPort}`, labels: { node: `n${i + 1}` } })),
    ];
    const dir = join(opts.runDir, 'prometheus');
    const server = new PrometheusServer(ns, dir, (cmd, args, o) => emu.exec(ns, cmd, args, o));
    // The members' series carry their own pair and member labels: honour them.
    const startMs = await server.start(renderPrometheusConfig(targets, [GATEWAY_JOB]));
    opts.progress(`monitoring host ${placement.ip} (${ns}): Prometheus ready after ${startMs} ms, scraping ${targets.length} targets every ${SCRAPE_INTERVAL_SEC} s`);
    for (const [member, why] of placement.refused) opts.progress(`monitoring host: ${member}'s metrics will show as down: ${why}`);
    return new Monitoring(ns, opts, server, placement, gateways, targets, Date.now());
  }

  /**
   * Wait (bounded) until Prometheus has scraped every target and each is as expected: up, or
   * down where the plan's security group refuses the monitoring host. Its first scrapes wait
   * for service discovery's first update (about 5 s), so start() comes early and this late.
   */
  async scraped(timeoutMs = 20_000): Promise<void> {
    const t0 = Date.now();
    const settled = (h: TargetHealth[]) => h.length === this.targets.length && h.every((t) => t.health === (this.expectDown().has(t.instance) ? 'down' : 'up'));
    let health = this.server.targets();
    while (!settled(health)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`prometheus: targets not as expected within ${timeoutMs} ms: ${describe(health)} (see ${this.server.logFile})`);
      await sleep(200);
      health = this.server.targets();
    }
    this.opts.progress(`prometheus: every target scraped as expected ${Date.now() - this.startedAt} ms after it started (waited ${Date.now() - t0} ms here): ${describe(health)}`);
  }

  private expectDown(): Set<string> {
    return new Set(this.gateways.filter((m) => this.placement.refused.has(m.id)).map((m) => `${m.env.SELF_IP}:${m.env.METRICS_PORT}`));
  }

  /** Drop counters now, as Prometheus has them. */
  drops(): DropCounts {
    const byReason = (expr: string) => new Map(this.server.query(`sum by (reason) (${expr})`).map((s) => [s.metric.reason, s.value]));
    return { gateway: byReason(GW('dropped_packets_total')), node: byReason(AGENT_METRIC.droppedPackets) };
  }

  private admitted(): GatewayMember[] {
    return this.gateways.filter((m) => !this.placement.refused.has(m.id));
  }

  /**
   * Read the run back through Prometheus: every target as expected (up, or down where the
   * plan's security group refuses the monitoring host, with why), promtool on every endpoint,
   * the attacked drop reasons moved since `before` (when the attacks ran), and each tenant's
   * byte counters moving with its own traffic only.
   */
  async checks(before?: DropCounts): Promise<Check[]> {
    const t0 = Date.now();
    const checks = [this.targetsCheck(), ...this.promtoolChecks()];
    if (before) checks.push(...(await this.dropChecks(before)));
    checks.push(...(await this.tenantByteChecks(t0)));
    this.opts.progress(`prometheus: ${checks.length} checks through the HTTP API in ${Date.now() - t0} ms`);
    return checks;
  }

  private targetsCheck(): Check {
    const up = new Map(this.server.query('up').map((s) => [s.metric.instance, s.value]));
    const health = this.server.targets();
    const expectDown = this.expectDown();
    const wrong = this.targets.filter((t) => up.get(t.address) !== (expectDown.has(t.address) ? 0 : 1));
    const why = [...this.placement.refused].map(([m, w]) => `${m} down as the plan says: ${w}`);
    return {
      name: `prometheus: ${this.targets.length - expectDown.size} targets up (${this.gateways.length - expectDown.size} gateway members, ${this.targets.length - this.gateways.length} node agents)${expectDown.size ? `, ${expectDown.size} gateway members down because the plan's security group refuses the monitoring host` : ''}`,
      pass: wrong.length === 0 && up.size === this.targets.length,
      detail: `${describe(health)}${wrong.length ? `; WRONG: ${wrong.map((t) => `${t.address} up=${up.get(t.address) ?? 'absent'}`).join(', ')}` : ''}${why.length ? `; ${why.join('; ')}` : ''}`,
    };
  }

  /** What each reachable endpoint serves, read from the monitoring host: it parses, and crossvpc's own families pass promtool's lint. */
  private promtoolChecks(): Check[] {
    const reachable = this.targets.filter((t) => t.job === AGENT_JOB || this.admitted().some((m) => t.address === `${m.env.SELF_IP}:${m.env.METRICS_PORT}`));
    const problems: string[] = [];
    for (const t of reachable) {
      const text = this.server.scrape(t.address);
      // node_exporter's own host metrics are upstream's names (some fail the lint): they must parse; crossvpc's must lint clean.
      const own = t.job === GATEWAY_JOB ? ownFamilies(text, GATEWAY_METRIC_PREFIX) : text;
      if (!own.trim()) problems.push(`${t.address}: no ${GATEWAY_METRIC_PREFIX}* series`);
      const whole = promtool(text);
      if (whole.code === 1 || (t.job === AGENT_JOB && whole.code !== 0)) problems.push(`${t.address}: ${whole.out}`);
      const lint = promtool(own);
      if (lint.code !== 0) problems.push(`${t.address} (crossvpc families): ${lint.out}`);
    }
    return [{
      name: `prometheus: promtool check metrics accepts each endpoint's output (${reachable.length}: node agents whole, gateway members' crossvpc families; node_exporter's own must parse)`,
      pass: problems.length === 0 && reachable.length > 0,
      detail: problems.length ? problems.join('; ').slice(0, 600) : `${reachable.map((t) => t.address).join(', ')} clean`,
    }];
  }

  private async dropChecks(before: DropCounts): Promise<Check[]> {
    const t0 = Date.now();
    const grew = (now: DropCounts) => [
      ...(this.admitted().length ? ATTACKED_GATEWAY_REASONS.map((r) => ({ where: 'gateway', reason: r, from: before.gateway.get(r) ?? 0, to: now.gateway.get(r) ?? 0 })) : []),
      ...ATTACKED_NODE_REASONS.map((r) => ({ where: 'node', reason: r, from: before.node.get(r) ?? 0, to: now.node.get(r) ?? 0 })),
    ];
    let rows = grew(this.drops());
    while (rows.some((r) => r.to <= r.from) && Date.now() - t0 < VISIBLE_WITHIN_MS) {
      await sleep(250);
      rows = grew(this.drops());
    }
    return rows.map((r) => ({
      name: `prometheus: ${r.where} drops by reason ${r.reason} moved while the attacks ran`,
      pass: r.to > r.from,
      detail: `${r.from} -> ${r.to}${r.to > r.from ? ` (visible ${Date.now() - t0} ms after the matrix)` : ` after ${VISIBLE_WITHIN_MS} ms`}`,
    }));
  }

  /** Bytes per tenant, summed over members and directions, and the oldest member write time. */
  private tenantBytes(): { bytes: Map<string, number>; writtenAt: number } {
    const bytes = new Map(this.server.query(`sum by (tenant) (${GW('tenant_bytes_total')})`).map((s) => [s.metric.tenant, s.value]));
    const stamps = this.server.query(GW('metrics_timestamp_seconds')).filter((s) => this.admitted().some((m) => s.metric.member === m.member && s.metric.pair === String(m.pair)));
    return { bytes, writtenAt: stamps.length === this.admitted().length ? Math.min(...stamps.map((s) => s.value)) : 0 };
  }

  /** Wait until every admitted member has written its textfile at or after `sec` (unix seconds) and Prometheus has it. */
  private async freshSince(sec: number): Promise<ReturnType<Monitoring['tenantBytes']> | undefined> {
    const t0 = Date.now();
    let s = this.tenantBytes();
    while (s.writtenAt < sec) {
      if (Date.now() - t0 > VISIBLE_WITHIN_MS) return undefined;
      await sleep(250);
      s = this.tenantBytes();
    }
    return s;
  }

  /**
   * No traffic since `quietSince` (the matrix ended). Tenant by tenant, one pod writes
   * TRAFFIC_BYTES to its tenant's Redis; at the first sample
   * that shows its bytes grown (and was written by every member after the write ended),
   * every other tenant's bytes are as they were.
   */
  private async tenantByteChecks(quietSince: number): Promise<Check[]> {
    const { emu } = this.opts;
    if (!this.admitted().length) return [];
    const tenants = emu.activeTenants().map((t) => t.name).filter((t) => emu.pods().some((p) => p.tenant === t));
    if (!tenants.length) return [];
    const checks: Check[] = [];
    // Whatever traffic came before `quietSince` is written by every member: a stable baseline
    // (the +1 s: a pass reads the counters just before it stamps the file).
    const since = Math.ceil(quietSince / 1000) + 1;
    const fresh = await this.freshSince(since);
    if (!fresh) return [{ name: 'prometheus: every gateway member\'s metrics are written and scraped again after the matrix', pass: false, detail: `none newer than ${since} within ${VISIBLE_WITHIN_MS} ms` }];
    let base = fresh;
    for (const tenant of tenants) {
      const pod = emu.pods().find((p) => p.tenant === tenant)!;
      const reply = emu.redis(pod, emu.probeAddress(tenant), ['set', `crossvpc:prometheus:${tenant}`, 'x'.repeat(TRAFFIC_BYTES)]);
      const sentAt = Date.now();
      const t0 = Date.now();
      let now = this.tenantBytes();
      const grown = () => (now.bytes.get(tenant) ?? 0) >= (base.bytes.get(tenant) ?? 0) + TRAFFIC_BYTES && now.writtenAt >= Math.ceil(sentAt / 1000) + 1;
      while (!grown() && Date.now() - t0 < VISIBLE_WITHIN_MS) {
        await sleep(200);
        now = this.tenantBytes();
      }
      const visibleMs = Date.now() - sentAt;
      const others = tenants.filter((o) => o !== tenant).map((o) => ({ o, from: base.bytes.get(o) ?? 0, to: now.bytes.get(o) ?? 0 }));
      const moved = others.filter((x) => x.to !== x.from);
      checks.push({
        name: `prometheus: ${pod.name} writing ${TRAFFIC_BYTES} bytes moves tenant ${tenant}'s byte counters${others.length ? ` and no other tenant's (${others.map((x) => x.o).join(', ')})` : ''}`,
        pass: reply === 'OK' && grown() && moved.length === 0,
        detail: `redis ${reply || 'no reply'}; ${tenant} ${base.bytes.get(tenant) ?? 0} -> ${now.bytes.get(tenant) ?? 0}${grown() ? ` (visible ${visibleMs} ms after the write)` : ` NOT within ${VISIBLE_WITHIN_MS} ms`}${others.map((x) => `; ${x.o} ${x.from} -> ${x.to}`).join('')}`,
      });
      base = now;
    }
    return checks;
  }

  /**
   * Which member Prometheus saw as MASTER of the pair, second by second since `sinceMs`: the
   * sequence of holders (a member whose exporter is down meanwhile counts as not MASTER).
   */
  masterHistory(pair: number, sinceMs: number): string[] {
    const series = this.server.queryRange(`${GW('vrrp_state')}{pair="${pair}",state="MASTER"} == 1`, Math.floor(sinceMs / 1000), Math.ceil(Date.now() / 1000));
    const at = new Map<number, string[]>();
    for (const s of series) for (const [t] of s.values) at.set(t, [...(at.get(t) ?? []), s.metric.member].sort());
    const seq: string[] = [];
    for (const t of [...at.keys()].sort((a, b) => a - b)) {
      const holder = at.get(t)!.join('+');
      if (seq[seq.length - 1] !== holder) seq.push(holder);
    }
    return seq;
  }

  /** The VRRP state metric flipped: Prometheus saw the MASTER role move between members of the pair since `sinceMs`. */
  vrrpFlipCheck(pair: number, sinceMs: number): Check | undefined {
    const members = this.admitted().filter((m) => m.pair === pair);
    if (members.length < 2) return undefined;
    const seq = this.masterHistory(pair, sinceMs);
    const holders = new Set(seq.flatMap((h) => h.split('+')));
    return {
      name: `prometheus: ${GW('vrrp_state')}{state="MASTER"} flipped between the members of pair ${pair} during the failovers`,
      pass: members.every((m) => holders.has(m.member)) && seq.length >= 2,
      detail: `MASTER holders in order: ${seq.join(' -> ') || 'none'}`,
    };
  }
}

/** The HELP, TYPE and sample lines of the families whose names start with `prefix`. */
function ownFamilies(text: string, prefix: string): string {
  return text.split('\n').filter((l) => l.startsWith(prefix) || l.startsWith(`# HELP ${prefix}`) || l.startsWith(`# TYPE ${prefix}`)).join('\n') + '\n';
}

/** promtool check metrics: exit 0 clean, 1 unparsable, 3 lint problems. */
function promtool(text: string): { code: number; out: string } {
  try {
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    return { code: 0, out: '' };
  } catch (e: any) {
    return { code: typeof e.status === 'number' ? e.status : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(0, 5).join(' | ') };
  }
}

function describe(health: readonly TargetHealth[]): string {
  return health.map((t) => `${t.labels.member ? `g${t.labels.pair}${t.labels.member}` : t.labels.node} ${t.instance} ${t.health}${t.health === 'up' ? ` ${(t.lastScrapeDuration * 1000).toFixed(1)} ms` : ''}${t.lastError ? ` (${t.lastError})` : ''}`).join(', ');
}
