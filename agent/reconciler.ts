import { performance } from 'perf_hooks';
import { AgentConfig, NFT_TABLE, tunnelDev } from './config';
import { Bindings, diffBindings, InstalledMark, markOf, PodBinding, readInstalledMarks, renderElementOps, renderRuleset } from './node-table';
import { observeHost, planTunnels } from './tunnels';
import { observePodRoutes } from './pod-routes';
import { DesiredResult, desiredBindings } from './bindings';
import { cmdLine, Exec, Step } from './exec';
import type { Log } from './log';
import type { ReconcileObserver } from './metrics';
import { PodEventType, PodInfo, PodSink } from './pods';

export interface ReconcilerOptions {
  /**
   * Minimum time between the starts of two applies (kube-proxy's minSyncPeriod): the first
   * change after a quiet period is applied at once, a burst is batched into one nft transaction.
   */
  readonly batchMs?: number;
  readonly retryMs?: number;
  /** First wait before re-resolving pods whose host route is not there yet; doubles up to 5 s. */
  readonly routeRetryMs?: number;
  readonly onReady?: () => void;
  /** Reconcile latency and errors (the agent's metrics). */
  readonly observer?: ReconcileObserver;
  /** A ms clock (tests); default Date.now for /healthz ages, performance.now for the apply interval. */
  readonly now?: () => number;
}

/** What /healthz reports. */
export interface Health {
  readonly ok: boolean;
  readonly reason: string;
}

/** One apply's timestamps (performance.now() ms): when it started, reading routes took, and the pod events it covers. */
interface ApplyTimeline {
  readonly started: number;
  routesMs?: number;
  readonly events: ReadonlyMap<string, number>;
}

const ms = (x: number) => Math.round(x * 100) / 100;

/** How long table applies may keep failing before /healthz turns 503. */
export const DEFAULT_HEALTH_GRACE_MS = 60_000;

/**
 * Owns the node's data plane. Tunnels are set up from config alone; the nft table is
 * (re)built only once a complete pod snapshot is known, so a restarting agent never
 * drops the bindings of pods that keep running meanwhile.
 */
export class Reconciler implements PodSink {
  private readonly pods = new Map<string, PodInfo>();
  private synced = false;
  /** What the pod sets hold; undefined until the table has been replaced once. */
  private installed?: Map<string, PodBinding>;
  /** Marks read back from a previous run's table, to flush conntrack of pods gone meanwhile. */
  private inherited?: Map<string, InstalledMark>;
  private routeRetries = 0;
  /** Kept apart from `timer`: a pod the CNI never wires must not make the reconciler look busy forever. */
  private routeTimer?: NodeJS.Timeout;
  private needFull = true;
  /** The pending apply: a timer, or an immediate for the first change after a quiet period. */
  private timer?: { readonly cancel: () => void };
  /** When the last apply started (intervalClock): the next waits until batchMs after it. */
  private lastApplyAt = -Infinity;
  private readonly intervalClock = this.opts.now ?? (() => performance.now());
  /** Pod IP → performance.now() of its first event not yet in the table: the pod-bound log's timeline. */
  private readonly eventAt = new Map<string, number>();
  private running?: Promise<void>;
  private dirty = false;
  private ready = false;
  private stopped = false;
  private readonly warned = new Map<string, string>();
  /** Since when applies fail (undefined while the last one succeeded), and why. */
  private failingSince?: number;
  private lastError = '';

  constructor(
    private config: AgentConfig,
    private readonly nodeIp: string,
    private readonly exec: Exec,
    private readonly log: Log,
    private readonly opts: ReconcilerOptions = {},
  ) {}

  /** Creates/repairs tunnels, routes and rules. Returns false if any step failed (caller retries). */
  async ensureTunnels(): Promise<boolean> {
    const host = await observeHost(this.exec);
    const ok = await this.runSteps(planTunnels(this.config, this.nodeIp, host));
    this.opts.observer?.tunnelsChecked();
    return ok;
  }

  /** New config: tunnels first, then a full table swap (tenant set or endpoints may have changed). */
  async reload(config: AgentConfig): Promise<boolean> {
    this.config = config;
    this.warned.clear();
    const ok = await this.ensureTunnels();
    this.needFull = true;
    this.schedule(0);
    return ok;
  }

  /**
   * Periodic drift check: a table flushed behind our back is rebuilt, and pod interfaces
   * are re-resolved (a pod sandbox recreated without a pod event gets a new interface).
   */
  async verify(): Promise<void> {
    if (!this.installed || this.running) return;
    const marks = await readInstalledMarks(this.exec);
    const tenanted = [...this.installed.values()].filter((b) => markOf(b) !== undefined);
    const same = marks && marks.size === tenanted.length && tenanted.every((b) => {
      const m = marks.get(b.ip);
      return m !== undefined && m.mark === markOf(b) && (m.iface === b.ifname || m.iface === String(b.ifindex));
    });
    if (!same) {
      this.log('warn', 'nft table drifted, rebuilding', {});
      this.needFull = true;
    }
    this.schedule(0);
  }

  sync(pods: PodInfo[]): void {
    this.pods.clear();
    for (const p of pods) this.pods.set(p.key, p);
    this.synced = true;
    this.log('info', 'pod snapshot', { count: pods.length });
    this.schedule();
  }

  event(type: PodEventType, pod: PodInfo): void {
    if (type === 'DELETED') this.pods.delete(pod.key);
    else this.pods.set(pod.key, pod);
    if (pod.ip && !this.eventAt.has(pod.ip)) this.eventAt.set(pod.ip, performance.now());
    this.schedule();
  }

  /** Stops scheduling; an apply in flight finishes so the table is never left half-written. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    clearTimeout(this.routeTimer);
    await this.running;
  }

  /** True once the first full table is applied. */
  isReady(): boolean {
    return this.ready;
  }

  /** Bound pods per tenant name, from what the pod sets hold. */
  boundPerTenant(): Map<string, number> {
    const out = new Map<string, number>();
    for (const b of this.installed?.values() ?? []) {
      const name = b.tenant?.name ?? b.peered?.name;
      if (name) out.set(name, (out.get(name) ?? 0) + 1);
    }
    return out;
  }

  /** Healthy once ready, unless table applies have been failing for longer than graceMs. */
  health(graceMs = DEFAULT_HEALTH_GRACE_MS): Health {
    const now = (this.opts.now ?? Date.now)();
    if (!this.ready) {
      const why = !this.synced ? 'no pod snapshot yet' : this.failingSince !== undefined ? `first table apply failing: ${this.lastError}` : 'first table apply pending';
      return { ok: false, reason: `not ready: ${why}` };
    }
    if (this.failingSince !== undefined && now - this.failingSince > graceMs) {
      return { ok: false, reason: `table applies failing for ${Math.round((now - this.failingSince) / 1000)} s: ${this.lastError}` };
    }
    return { ok: true, reason: this.failingSince !== undefined ? `ok (applies failing for ${Math.round((now - this.failingSince) / 1000)} s, retrying)` : 'ok' };
  }

  /** Resolves once nothing is pending (tests). */
  async idle(): Promise<void> {
    while (this.timer || this.running) await (this.running ?? new Promise((r) => setTimeout(r, 5)));
  }

  /** Without `delay`: at once after a quiet period, else batchMs after the last apply started. */
  private schedule(delay?: number): void {
    if (this.stopped || !this.synced) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    const interval = this.opts.batchMs ?? 10;
    const wait = delay ?? Math.min(interval, this.lastApplyAt + interval - this.intervalClock());
    const run = () => {
      this.timer = undefined;
      this.running = this.apply().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      });
    };
    // setImmediate, not setTimeout(0) (1 ms in node): events read in one chunk still share the apply.
    if (wait <= 0) {
      const h = setImmediate(run);
      this.timer = { cancel: () => clearImmediate(h) };
    } else {
      const h = setTimeout(run, wait);
      this.timer = { cancel: () => clearTimeout(h) };
    }
  }

  private async apply(): Promise<void> {
    let unresolved: PodInfo[] = [];
    const now = this.opts.now ?? Date.now;
    const started = process.hrtime.bigint();
    this.lastApplyAt = this.intervalClock();
    const timeline: ApplyTimeline = { started: performance.now(), events: new Map(this.eventAt) };
    let kind: 'full' | 'incremental' = 'incremental';
    try {
      const routes = await observePodRoutes(this.exec);
      timeline.routesMs = performance.now() - timeline.started;
      const desired = desiredBindings(this.config, this.pods.values(), routes, this.installed);
      unresolved = desired.unresolved;
      this.warnDenied(desired.denied);
      const bindings = desired.bindings;
      if (this.needFull || !this.installed) {
        kind = 'full';
        await this.replaceTable(bindings);
      } else await this.applyDiff(bindings, timeline);
    } catch (e) {
      this.log('error', 'nft apply failed, will rebuild the table', { error: (e as Error).message });
      this.opts.observer?.error('apply');
      this.failingSince ??= now();
      this.lastError = (e as Error).message.split('\n')[0].slice(0, 200);
      this.needFull = true;
      this.dirty = false;
      this.timer?.cancel();
      const h = setTimeout(() => {
        this.timer = undefined;
        this.schedule(0);
      }, this.opts.retryMs ?? 1000);
      this.timer = { cancel: () => clearTimeout(h) };
      return;
    }
    // Pods still without a host route keep their event time until they are bound.
    const applied = performance.now();
    const waiting = new Set(unresolved.map((p) => p.ip));
    for (const [ip, at] of timeline.events) {
      if (waiting.has(ip)) continue;
      this.eventAt.delete(ip);
      if (this.installed?.has(ip)) this.opts.observer?.podProgrammed((applied - at) / 1000);
    }
    this.opts.observer?.reconciled(kind, Number(process.hrtime.bigint() - started) / 1e9);
    if (this.failingSince !== undefined) this.log('info', 'nft apply recovered', { failedForMs: now() - this.failingSince });
    this.failingSince = undefined;
    if (!this.ready) {
      this.ready = true;
      this.log('info', 'agent ready', { bindings: this.installed!.size });
      this.opts.onReady?.();
    }
    this.retryUnresolved(unresolved);
  }

  /** The CNI may report a pod before its host route exists: look again, backing off, until it does. */
  private retryUnresolved(unresolved: PodInfo[]): void {
    if (!unresolved.length) {
      this.routeRetries = 0;
      return;
    }
    if (this.routeRetries === 0) this.log('info', 'pods without a host route yet, retrying', { pods: unresolved.map((p) => `${p.namespace}/${p.name} ${p.ip}`) });
    const delay = Math.min(5000, (this.opts.routeRetryMs ?? 20) * 2 ** Math.min(this.routeRetries++, 16));
    clearTimeout(this.routeTimer);
    this.routeTimer = setTimeout(() => this.schedule(0), delay);
  }

  private async replaceTable(bindings: Bindings): Promise<void> {
    if (!this.installed && !this.inherited) this.inherited = (await readInstalledMarks(this.exec)) ?? new Map();
    const script = renderRuleset(this.config, this.nodeIp, bindings);
    await this.exec.run(['nft', '-f', '-'], { input: script });
    this.log('info', 'nft table replaced', { cmd: 'nft -f -', table: `inet ${NFT_TABLE}`, bindings: bindings.size });
    // Whatever was bound before (this run or the previous one) and is not now: its flows must die.
    // Our own bindings compare by interface index; a previous run's read back by name (or index once the interface is gone).
    const before = this.installed
      ? [...this.installed.values()].filter((b) => markOf(b) !== undefined).map((b) => ({ ip: b.ip, mark: markOf(b)!, same: (n: PodBinding) => n.ifindex === b.ifindex }))
      : [...(this.inherited ?? new Map<string, InstalledMark>())].map(([ip, m]) => ({ ip, mark: m.mark, same: (n: PodBinding) => m.iface === n.ifname || m.iface === String(n.ifindex) }));
    const gone = before.filter((o) => {
      const now = bindings.get(o.ip);
      return !now || markOf(now) !== o.mark || !o.same(now);
    }).map((o) => o.ip);
    this.installed = new Map(bindings);
    this.inherited = undefined;
    this.needFull = false;
    await this.flushConntrack(gone);
  }

  private async applyDiff(bindings: Bindings, timeline: ApplyTimeline): Promise<void> {
    const diff = diffBindings(this.installed!, bindings);
    const script = renderElementOps(diff);
    if (!script) return;
    const nftStarted = performance.now();
    await this.exec.run(['nft', '-f', '-'], { input: script });
    const done = performance.now();
    for (const b of diff.remove) {
      this.installed!.delete(b.ip);
      this.log('info', 'pod unbound', { ip: b.ip, iface: b.ifname, tenant: b.tenant?.name ?? b.peered?.name });
    }
    for (const b of diff.add) {
      this.installed!.set(b.ip, b);
      const event = timeline.events.get(b.ip);
      // Where the time since the pod's event went: waiting for the apply, reading routes, nft.
      const took = event === undefined ? {} : { sinceEventMs: ms(done - event), waitedMs: ms(Math.max(0, timeline.started - event)), routesMs: ms(timeline.routesMs ?? 0), nftMs: ms(done - nftStarted) };
      this.log('info', 'pod bound', { ip: b.ip, iface: b.ifname, ifindex: b.ifindex, tenant: b.tenant?.name ?? b.peered?.name, dev: b.tenant ? tunnelDev(b.tenant.vni) : undefined, ...took });
    }
    // Tenant flows (tunnels and peerings) of a pod that lost or changed its binding must die.
    await this.flushConntrack(diff.remove.filter((b) => markOf(b) !== undefined).map((b) => b.ip));
  }

  /** Best effort: exit 1 means "no entries", a missing binary is logged, neither blocks reconciling. */
  private async flushConntrack(ips: string[]): Promise<void> {
    for (const ip of ips) {
      const argv = ['conntrack', '-D', '-s', ip];
      try {
        const r = await this.exec.run(argv, { okCodes: [0, 1] });
        this.log('info', 'conntrack flushed', { ip, cmd: cmdLine(argv), found: r.code === 0 });
      } catch (e) {
        this.log('warn', 'conntrack flush failed', { ip, error: (e as Error).message });
      }
    }
  }

  private warnDenied(denied: DesiredResult['denied']): void {
    const now = new Map(denied.map((d) => [d.pod.key, d.reason]));
    for (const { pod, reason } of denied) {
      if (this.warned.get(pod.key) === reason) continue; // once per pod and reason, not per reconcile
      this.log('warn', 'pod denied tunnel access', { pod: `${pod.namespace}/${pod.name}`, ip: pod.ip, reason });
    }
    this.warned.clear();
    for (const [k, r] of now) this.warned.set(k, r);
  }

  private async runSteps(steps: readonly Step[]): Promise<boolean> {
    let ok = true;
    for (const s of steps) {
      const what = s.kind === 'run' ? cmdLine(s.argv) : `write ${s.path}=${s.value}`;
      try {
        if (s.kind === 'run') await this.exec.run(s.argv, { input: s.input, okCodes: s.okCodes });
        else await this.exec.write(s.path, s.value);
        this.log('info', 'exec', { cmd: what });
      } catch (e) {
        if (s.kind === 'write' && s.optional) continue;
        ok = false; // keep going: one broken tenant must not block the others
        this.opts.observer?.error('tunnel_step');
        this.log('error', 'exec failed', { cmd: what, error: (e as Error).message });
      }
    }
    return ok;
  }
}
