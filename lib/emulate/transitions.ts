/**
 * Plan transitions under load: `crossvpc emulate A --then B --then C`. Every active tenant
 * (NAT or peered) keeps one long-lived INCR connection to its Redis; each step applies the
 * next plan (Emulation.apply) and reports, per tenant, how long a new, edited or switched
 * (NAT <-> peering) tenant took from the document write to its first reply, what the others' connections saw (reconnects, failed
 * operations, the longest pause), each member's VRRP state changes, and the full matrix.
 * A step holds when members settled on the new version, no member entered FAULT, no
 * failover happened unless a rolling member was replaced or a fault was injected, the
 * untouched tenants lost nothing, and every cell of the matrix is as expected.
 */
import { ChildProcess } from 'child_process';
import { existsSync } from 'fs';
import type { ApplyOptions, ApplyReport } from './apply';
import type { Emulation, GatewayMember, Pod } from './emulator';
import { IncrStatus, readStatus } from './failover';
import type { MatrixResult } from './report';
import { sleep } from './sys';
import { formatVrrp, VrrpWatch, VrrpWatchResult } from './vrrp-watch';

export interface StepOptions extends ApplyOptions {
  /** Fail the live master right after the document write (it is rebooted after the step's checks). */
  readonly fault?: 'kill-master' | 'stop-master';
  /** The attack checks in the step's matrix. @default true */
  readonly attacks?: boolean;
  /** Bound on a new or edited tenant's first reply, from the document write. @default 15000 */
  readonly liveBoundMs?: number;
}

/** `switched`: the tenant moved between the NAT and peering paths (same name and VNI). */
export type TenantChange = 'added' | 'edited' | 'switched' | 'unchanged' | 'retired';
const FRESH: readonly TenantChange[] = ['added', 'edited', 'switched'];

export interface ClientDelta {
  readonly reconnects: number;
  readonly failedOps: number;
  readonly acked: number;
  /** Longest pause between replies during the step (a pause still going on counts). */
  readonly maxGapMs: number;
}

export interface TenantStep {
  readonly tenant: string;
  readonly change: TenantChange;
  /** Added, edited or switched: from the document write (the ConfigMap write when no document changed) to its first reply from one of its pods. */
  readonly liveMs?: number;
  /** Edited away from a destination: that destination no longer answers its pods. */
  readonly formerRefused?: boolean;
  /** Its long-lived connection during the step (tenants that had one). */
  readonly client?: ClientDelta;
  /** Matrix: its pods reach exactly its service (current tenants), or nothing (retired ones). */
  readonly isolated: boolean;
}

export interface StepReport {
  readonly index: number;
  readonly stackDir: string;
  readonly apply: ApplyReport;
  readonly tenants: TenantStep[];
  readonly vrrp: VrrpWatchResult;
  readonly fault?: { readonly member: string; readonly newMaster?: string; readonly newMasterVersion?: number; readonly restored: boolean };
  readonly matrix: MatrixResult;
  readonly problems: string[];
  readonly ok: boolean;
}

interface Client { readonly pod: Pod; readonly address: string; readonly statusFile: string; readonly child: ChildProcess }

const status = (c: Client): IncrStatus | undefined => (existsSync(c.statusFile) ? readStatus(c.statusFile) : undefined);

export class TransitionRunner {
  private readonly clients = new Map<string, Client>();
  private steps = 0;

  constructor(private readonly emu: Emulation, private readonly pair = 0) {}

  /** A long-lived INCR connection for every active tenant (NAT or peered) without one, waiting (bounded) until each is answered. */
  async connect(): Promise<void> {
    const fresh: Client[] = [];
    for (const t of [...this.emu.activeTenants(), ...this.emu.peeredTenants()]) {
      if (this.clients.has(t.name)) continue;
      const pod = this.emu.pods().find((p) => p.tenant === t.name && p.node === 0) ?? this.emu.pods().find((p) => p.tenant === t.name);
      if (!pod) continue;
      const address = this.emu.probeAddress(t.name);
      const c = { pod, address, ...this.emu.startIncrClient(pod, `transition:${t.name}:${Date.now().toString(36)}`, address) };
      this.clients.set(t.name, c);
      fresh.push(c);
    }
    const t0 = Date.now();
    while (fresh.some((c) => (status(c)?.acked ?? 0) < 20) && Date.now() - t0 < 10_000) await sleep(100);
    const idle = fresh.filter((c) => (status(c)?.acked ?? 0) < 20);
    if (idle.length) throw new Error(`INCR connections of ${idle.map((c) => c.pod.name).join(', ')} got no replies within 10 s (logs in ${this.emu.runDir})`);
    if (fresh.length) this.emu.progress(`long-lived INCR connections: ${fresh.map((c) => `${c.pod.name} -> ${c.address}`).join(', ')}`);
  }

  private disconnect(tenant: string): void {
    const c = this.clients.get(tenant);
    if (!c) return;
    try {
      process.kill(c.child.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    this.clients.delete(tenant);
  }

  /**
   * A switched tenant's connection: its path is gone, so once its client has exited, its
   * orphaned socket is aborted. Left alone it would retransmit its FIN into the new path for
   * minutes (the gateway counts those as invalid, `unmatched`, long after the step).
   */
  private async abandon(tenant: string): Promise<void> {
    const c = this.clients.get(tenant);
    if (!c) return;
    this.disconnect(tenant);
    for (let i = 0; i < 40 && c.child.exitCode === null && c.child.signalCode === null; i++) await sleep(50);
    this.emu.exec(c.pod.ns, 'ss', ['-K', 'dst', c.address, 'dport', '=', '6379'], { allowFail: true });
  }

  /** Every connection ends (SIGTERM to the clients this runner started). */
  stop(): void {
    for (const t of [...this.clients.keys()]) this.disconnect(t);
  }

  async step(stackDir: string, opts: StepOptions = {}): Promise<StepReport> {
    const emu = this.emu;
    const index = ++this.steps;
    const entries = () => new Map([...emu.tenants().map((t) => [t.name, JSON.stringify(['nat', t])] as const), ...emu.peeredTenants().map((t) => [t.name, JSON.stringify(['peering', t])] as const)]);
    const before = entries();
    const snapshot = new Map([...this.clients].map(([t, c]) => [t, status(c)]));
    const startedAt = Date.now();
    const liveBound = opts.liveBoundMs ?? 15_000;
    const live = new Map<string, number | undefined>();
    const probes: Array<Promise<void>> = [];
    let fault: { member: GatewayMember } | undefined;
    const watch = new VrrpWatch(emu, this.pair);
    let report: ApplyReport;
    try {
      report = await emu.apply(stackDir, {
        ...opts,
        afterDocumentWrite: async (t0) => {
          // The plan is the new one now: probe every tenant whose table entry is new or changed.
          for (const [t, entry] of entries()) {
            if (before.get(t) !== entry && emu.isActive(t)) probes.push(this.probeLive(t, t0, liveBound).then((ms) => void live.set(t, ms)));
          }
          if (opts.fault) {
            const m = emu.liveMaster(this.pair);
            if (!m) throw new Error(`step ${index}: no live master to fail`);
            fault = { member: m };
            emu.progress(`fault injected right after the document write: ${opts.fault} on ${m.id}`);
            if (opts.fault === 'kill-master') emu.killMember(m);
            else await emu.stopMember(m);
          }
          if (opts.afterDocumentWrite) await opts.afterDocumentWrite(t0);
        },
      });
    } catch (e) {
      watch.stop();
      throw e;
    }
    const booted = report.members.filter((m) => m.replaced).map((m) => m.id);
    await Promise.all(probes);
    // A replaced member's step ends when it is ready to take over: BACKUP (or MASTER).
    const notReady: string[] = [];
    for (const id of booted) {
      if (!(await this.waitState(emu.members(this.pair).find((m) => m.id === id)!, ['BACKUP', 'MASTER'], 30_000))) notReady.push(id);
    }
    // Tenants edited only in their rows (ENI, NAT IP), and changes no document carries (peered
    // tenants alone), were not probed from t0: probe them now, from t0 or the ConfigMap write.
    const changed = [...report.tenants.added, ...report.tenants.edited, ...report.tenants.switched.map((x) => x.tenant)];
    for (const t of changed.filter((x) => !live.has(x) && emu.isActive(x))) live.set(t, await this.probeLive(t, report.t0 ?? report.agentsAt, liveBound));
    const vrrp = watch.stop(booted);
    const deltas = new Map([...this.clients].filter(([t]) => snapshot.get(t)).map(([t, c]) => [t, delta(snapshot.get(t)!, status(c)!, startedAt)]));

    const problems: string[] = notReady.map((id) => `the new ${id} did not become BACKUP or MASTER within 30 s (state ${emu.vrrpState(emu.members(this.pair).find((m) => m.id === id)!)})`);
    let faultReport: StepReport['fault'];
    if (fault) {
      const newMaster = emu.liveMaster(this.pair);
      const newMasterVersion = newMaster ? emu.memberStatus(newMaster)?.version : undefined;
      const want = report.documents[this.pair];
      if (!newMaster || newMaster.id === fault.member.id) problems.push(`no other member took over from ${fault.member.id}`);
      else if (want !== undefined && newMasterVersion !== want) problems.push(`the new master ${newMaster.id} reports document version ${newMasterVersion}, not the latest ${want}`);
      await emu.rebootMember(fault.member);
      const restored = await this.waitState(fault.member, ['BACKUP', 'MASTER'], 20_000);
      if (!restored) problems.push(`${fault.member.id} did not come back as BACKUP within 20 s of its reboot`);
      faultReport = { member: fault.member.id, newMaster: newMaster?.id, newMasterVersion, restored };
    }

    const matrix = await emu.matrix({ attacks: opts.attacks ?? true });
    const { added, edited, switched, retired } = report.tenants;
    const change = (t: string): TenantChange => (added.includes(t) ? 'added' : edited.includes(t) ? 'edited' : switched.some((x) => x.tenant === t) ? 'switched' : retired.includes(t) ? 'retired' : 'unchanged');
    const names = [...new Set([...emu.tenants().map((t) => t.name), ...emu.peeredTenants().map((t) => t.name), ...retired])].filter((t) => emu.isActive(t));
    const tenants: TenantStep[] = names.map((t) => {
      const pods = emu.pods().filter((p) => p.tenant === t);
      const former = this.clients.get(t)?.address;
      const moved = change(t) === 'edited' && former !== undefined && former !== emu.probeAddress(t);
      return {
        tenant: t,
        change: change(t),
        liveMs: live.get(t),
        formerRefused: moved ? pods.every((p) => emu.redis(p, former!, ['ping'], 1) !== 'PONG') : undefined,
        client: deltas.get(t),
        isolated: pods.length > 0 && pods.every((p) => matrix.checks.find((c) => c.name.startsWith(`pod ${p.name} reaches`))?.pass === true),
      };
    });

    if (!report.settled) problems.push(`members did not all report the new document version within the bound: ${report.members.filter((m) => m.live && m.settledMs === undefined).map((m) => m.id).join(', ')}`);
    if (vrrp.fault) problems.push(`a member entered FAULT: ${formatVrrp(vrrp)}`);
    const rolled = report.instances.changes.some((c) => c.kind === 'replace' || c.kind === 'stop-start');
    if (vrrp.failover && !rolled && !opts.fault) problems.push(`the master changed (${vrrp.masterBefore} -> ${vrrp.masterAfter}) though no member was replaced and no fault injected: ${formatVrrp(vrrp)}`);
    for (const t of tenants) {
      if (FRESH.includes(t.change) && t.liveMs === undefined) problems.push(`tenant ${t.tenant} (${t.change}) did not answer within ${liveBound / 1000} s of the document write`);
      if (t.formerRefused === false) problems.push(`tenant ${t.tenant}'s pods still reach the destination its edit took away`);
      if (!t.isolated) problems.push(`tenant ${t.tenant}: its pods do not reach exactly ${t.change === 'retired' ? 'nothing' : 'its own service'}`);
      if (t.change === 'unchanged' && t.client) {
        if (t.client.reconnects > 0) problems.push(`tenant ${t.tenant}'s connection reconnected ${t.client.reconnects} time(s)`);
        if (t.client.failedOps > 0 && !opts.fault) problems.push(`tenant ${t.tenant}'s connection had ${t.client.failedOps} failed operation(s)`);
      }
    }
    if (!matrix.ok) problems.push(`matrix: ${matrix.checks.filter((c) => !c.pass).map((c) => `${c.name} (${c.detail})`).join('; ')}`);

    // Connections for what the next step starts from: retired tenants' end, moved and switched ones follow (new path, new source), new ones open.
    for (const t of retired) this.disconnect(t);
    for (const t of tenants.filter((x) => x.formerRefused !== undefined)) this.disconnect(t.tenant);
    for (const t of tenants.filter((x) => x.change === 'switched')) await this.abandon(t.tenant);
    await this.connect();
    return { index, stackDir, apply: report, tenants, vrrp, fault: faultReport, matrix, problems, ok: problems.length === 0 };
  }

  /** First reply from any of the tenant's pods, probing every 100 ms until the bound; ms from t0. */
  private async probeLive(tenant: string, t0: number, boundMs: number): Promise<number | undefined> {
    const address = this.emu.probeAddress(tenant);
    for (let i = 0; i < Math.ceil(boundMs / 100) + 1 && Date.now() - t0 < boundMs; i++) {
      const pods = this.emu.pods().filter((p) => p.tenant === tenant);
      for (const p of pods) {
        if ((await this.emu.redisAsync(p, address, ['ping'], 0.5)) === 'PONG') return Date.now() - t0;
      }
      await sleep(100);
    }
    return undefined;
  }

  private async waitState(m: GatewayMember, states: string[], timeoutMs: number): Promise<boolean> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (states.includes(this.emu.vrrpState(m))) return true;
      await sleep(100);
    }
    return false;
  }
}

function delta(a: IncrStatus, b: IncrStatus, since: number): ClientDelta {
  const gaps = (b.gaps ?? []).filter((g) => g.at + g.ms >= since).map((g) => g.ms);
  return {
    reconnects: b.reconnects - a.reconnects,
    failedOps: b.failedOps - a.failedOps,
    acked: b.acked - a.acked,
    maxGapMs: Math.max(0, ...gaps, Date.now() - b.lastAckAt),
  };
}

const sec = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

export function formatStep(r: StepReport): string {
  const a = r.apply;
  const lines = ['', `== step ${r.index}: ${r.stackDir}`];
  const path = (n: string) => (a.tenants.paths[n] === 'peering' ? ' (peered)' : '');
  lines.push(`tenants: added ${a.tenants.added.map((n) => n + path(n)).join(', ') || '-'}; edited ${a.tenants.edited.join(', ') || '-'}; switched ${a.tenants.switched.map((x) => `${x.tenant} to ${x.to === 'nat' ? 'NAT' : 'peering'}`).join(', ') || '-'}; retired ${a.tenants.retired.map((n) => n + path(n)).join(', ') || '-'}`);
  lines.push(`internet egress: on ${a.egress.on.join(', ') || '-'}; off ${a.egress.off.join(', ') || '-'}`);
  lines.push(`instances: ${a.instances.changes.length ? a.instances.changes.map((c) => `${c.member} ${c.kind} (${c.because.join('; ')})`).join(', ') : 'none replaced'}`);
  lines.push(`document: ${Object.entries(a.documents).map(([p, v]) => `pair ${p} version ${v}`).join(', ') || 'unchanged'}`);
  lines.push('', 'tenant          change     live after  reconnects  failed ops  acked     max pause  isolated');
  for (const t of r.tenants) {
    const c = t.client;
    lines.push(`${t.tenant.padEnd(16)}${t.change.padEnd(11)}${sec(t.liveMs).padEnd(12)}${String(c?.reconnects ?? '-').padEnd(12)}${String(c?.failedOps ?? '-').padEnd(12)}${String(c?.acked ?? '-').padEnd(10)}${(c ? `${c.maxGapMs} ms` : '-').padEnd(11)}${t.isolated ? 'yes' : 'NO'}${t.formerRefused === undefined ? '' : t.formerRefused ? '  (old destination refused)' : '  (OLD DESTINATION STILL REACHED)'}`);
  }
  lines.push('', 'member  replaced  version  applied   settled   VRRP during the step');
  for (const m of r.vrrp.members) {
    const ap = a.members.find((x) => x.id === m.id);
    const vr = m.transitions.length ? m.transitions.map((t) => `${t.from}->${t.to} @${(t.atMs / 1000).toFixed(1)}s`).join(', ') : 'no change';
    lines.push(`${m.id.padEnd(8)}${(ap?.replaced ? 'yes' : 'no').padEnd(10)}${String(ap?.want ?? '-').padEnd(9)}${sec(ap?.appliedMs).padEnd(10)}${(ap && !ap.live ? 'down' : sec(ap?.settledMs)).padEnd(10)}${vr}${m.entered.length ? ` [keepalived: ${m.entered.join(', ')}]` : ''}`);
  }
  if (r.fault) lines.push(`fault: ${r.fault.member} failed after the document write; ${r.fault.newMaster ?? 'nobody'} took over at version ${r.fault.newMasterVersion ?? '-'}; ${r.fault.member} ${r.fault.restored ? 'rebooted and back' : 'NOT back'}`);
  lines.push(r.ok ? `STEP ${r.index}: holds` : `STEP ${r.index}: FAILED\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}

/** One line per step: the verdict the CLI and CI look for. */
export function formatSteps(steps: readonly StepReport[]): string {
  const lines = ['', 'step  plan                                      new/edited live after      others: reconnects / failed ops  failover  verdict'];
  for (const s of steps) {
    const fresh = s.tenants.filter((t) => FRESH.includes(t.change)).map((t) => `${t.tenant} ${sec(t.liveMs)}`).join(', ') || '-';
    const others = s.tenants.filter((t) => t.change === 'unchanged' && t.client);
    const sum = (k: 'reconnects' | 'failedOps') => others.reduce((n, t) => n + t.client![k], 0);
    lines.push(`${String(s.index).padEnd(6)}${s.stackDir.slice(-40).padEnd(42)}${fresh.padEnd(25)}${`${sum('reconnects')} / ${sum('failedOps')}`.padEnd(33)}${(s.vrrp.failover ? `${s.vrrp.masterBefore}->${s.vrrp.masterAfter}` : 'none').padEnd(10)}${s.ok ? 'HOLDS' : 'FAILED'}`);
  }
  lines.push('', steps.every((s) => s.ok) ? `RESULT: every step holds (${steps.length})` : `RESULT: ${steps.filter((s) => !s.ok).length} of ${steps.length} step(s) failed`);
  return lines.join('\n');
}
