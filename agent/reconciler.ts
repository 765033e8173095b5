import { AgentConfig, AgentTenant, ipv4ToInt, tunnelDev } from './config';
import { Bindings, diffBindings, observeHost, planTunnels, readInstalledMarks, renderElementOps, renderRuleset } from './dataplane';
import { cmdLine, Exec, Step } from './exec';
import type { Log } from './log';
import { PodEventType, PodInfo, PodSink } from './pods';

export interface DesiredResult {
  readonly bindings: Map<string, AgentTenant>;
  /** Pods denied access, with why (unknown tenant, IP claimed by two tenants). */
  readonly denied: { pod: PodInfo; reason: string }[];
}

/** Labelled, running, pod-network pods with a configured tenant → pod IP bindings. */
export function desiredBindings(config: AgentConfig, pods: Iterable<PodInfo>): DesiredResult {
  const byName = new Map(config.tenants.map((t) => [t.name, t]));
  const claims = new Map<string, { pod: PodInfo; tenant: AgentTenant }[]>();
  const denied: DesiredResult['denied'] = [];
  for (const pod of pods) {
    const label = pod.labels[config.podLabelKey];
    // Finished pods keep status.podIP while the IP is already reused by a new pod.
    if (label === undefined || pod.hostNetwork || !pod.ip || pod.phase === 'Succeeded' || pod.phase === 'Failed') continue;
    if (ipv4ToInt(pod.ip) === undefined) continue; // tunnels are IPv4 only
    const tenant = byName.get(label);
    if (!tenant) {
      denied.push({ pod, reason: `unknown tenant "${label}"` });
      continue;
    }
    claims.set(pod.ip, [...(claims.get(pod.ip) ?? []), { pod, tenant }]);
  }
  const bindings = new Map<string, AgentTenant>();
  for (const [ip, list] of claims) {
    const tenants = new Set(list.map((c) => c.tenant.name));
    if (tenants.size === 1) bindings.set(ip, list[0].tenant);
    // Two live pods claiming one IP for different tenants: deny both rather than guess.
    else for (const c of list) denied.push({ pod: c.pod, reason: `IP ${ip} claimed by tenants ${[...tenants].join(', ')}` });
  }
  return { bindings, denied };
}

export interface ReconcilerOptions {
  /** Events arriving within this window are applied in one nft transaction. */
  readonly batchMs?: number;
  readonly retryMs?: number;
  readonly onReady?: () => void;
}

/**
 * Owns the node's data plane. Tunnels are set up from config alone; the nft table is
 * (re)built only once a complete pod snapshot is known, so a restarting agent never
 * drops the bindings of pods that keep running meanwhile.
 */
export class Reconciler implements PodSink {
  private readonly pods = new Map<string, PodInfo>();
  private synced = false;
  /** What the pod_tenant map holds; undefined until the table has been replaced once. */
  private installed?: Map<string, AgentTenant>;
  /** Marks read back from a previous run's table, to flush conntrack of pods gone meanwhile. */
  private inherited?: Map<string, number>;
  private needFull = true;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private dirty = false;
  private ready = false;
  private stopped = false;
  private readonly warned = new Map<string, string>();

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
    return this.runSteps(planTunnels(this.config, this.nodeIp, host));
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

  /** Periodic drift check: a table flushed behind our back is rebuilt. */
  async verify(): Promise<void> {
    if (!this.installed || this.running) return;
    const marks = await readInstalledMarks(this.exec);
    const same = marks && marks.size === this.installed.size && [...this.installed].every(([ip, t]) => marks.get(ip) === t.table);
    if (!same) {
      this.log('warn', 'nft table drifted, rebuilding', {});
      this.needFull = true;
      this.schedule(0);
    }
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
    this.schedule();
  }

  /** Stops scheduling; an apply in flight finishes so the table is never left half-written. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Resolves once nothing is pending (tests). */
  async idle(): Promise<void> {
    while (this.timer || this.running) await (this.running ?? new Promise((r) => setTimeout(r, 5)));
  }

  private schedule(delay = this.opts.batchMs ?? 10): void {
    if (this.stopped || !this.synced) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.apply().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule(0);
        }
      });
    }, delay);
  }

  private async apply(): Promise<void> {
    const { bindings, denied } = desiredBindings(this.config, this.pods.values());
    this.warnDenied(denied);
    try {
      if (this.needFull || !this.installed) await this.replaceTable(bindings);
      else await this.applyDiff(bindings);
    } catch (e) {
      this.log('error', 'nft apply failed, will rebuild the table', { error: (e as Error).message });
      this.needFull = true;
      this.dirty = false;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule(0);
      }, this.opts.retryMs ?? 1000);
      return;
    }
    if (!this.ready) {
      this.ready = true;
      this.log('info', 'agent ready', { bindings: bindings.size });
      this.opts.onReady?.();
    }
  }

  private async replaceTable(bindings: Bindings): Promise<void> {
    if (!this.installed && !this.inherited) this.inherited = (await readInstalledMarks(this.exec)) ?? new Map();
    const script = renderRuleset(this.config, this.nodeIp, bindings);
    await this.exec.run(['nft', '-f', '-'], { input: script });
    this.log('info', 'nft table replaced', { cmd: 'nft -f -', table: 'inet crossvpc_node', bindings: bindings.size });
    // Whatever was bound before (this run or the previous one) and is not now: its flows must die.
    const before = this.installed ? new Map([...this.installed].map(([ip, t]) => [ip, t.table])) : this.inherited ?? new Map<string, number>();
    const gone = [...before].filter(([ip, mark]) => bindings.get(ip)?.table !== mark).map(([ip]) => ip);
    this.installed = new Map(bindings);
    this.inherited = undefined;
    this.needFull = false;
    await this.flushConntrack(gone);
  }

  private async applyDiff(bindings: Bindings): Promise<void> {
    const diff = diffBindings(this.installed!, bindings);
    const script = renderElementOps(diff);
    if (!script) return;
    await this.exec.run(['nft', '-f', '-'], { input: script });
    for (const [ip, t] of diff.remove) {
      this.installed!.delete(ip);
      this.log('info', 'pod unbound', { ip, tenant: t.name, cmd: `nft delete element inet crossvpc_node pod_tenant { ${ip} }` });
    }
    for (const [ip, t] of diff.add) {
      this.installed!.set(ip, t);
      this.log('info', 'pod bound', { ip, tenant: t.name, dev: tunnelDev(t.vni), cmd: `nft add element inet crossvpc_node pod_tenant { ${ip} : 0x${t.table.toString(16)} }` });
    }
    await this.flushConntrack(diff.remove.map(([ip]) => ip));
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
        this.log('error', 'exec failed', { cmd: what, error: (e as Error).message });
      }
    }
    return ok;
  }
}
