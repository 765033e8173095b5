import { existsSync, readFileSync } from 'fs';
import type { Emulation, GatewayMember, Pod } from './emulator';
import { sleep } from './sys';

export type Fault = 'hard-kill' | 'graceful-stop' | 'failback' | 'split-brain' | 'double-fault';

export interface TenantOutcome {
  readonly tenant: string;
  readonly acked: number;
  readonly counter: number;
  /** Acknowledged increments missing from the server: must be 0. */
  readonly lostWrites: number;
  readonly reconnects: number;
  readonly failedOps: number;
  readonly maxGapMs: number;
  readonly sequenceBreaks: number;
}

export interface ScenarioResult {
  readonly fault: Fault;
  readonly from: string;
  readonly to: string;
  /** Longest pause in acknowledged replies across tenants (traffic flowing again). */
  readonly recoveryMs: number;
  readonly failedOps: number;
  readonly connectionSurvived: boolean;
  readonly countersMatch: boolean;
  readonly isolated: boolean;
  readonly tenants: TenantOutcome[];
  readonly survived: boolean;
  readonly note: string;
}

export interface IncrStatus { acked: number; lastValue: number; failedOps: number; reconnects: number; maxGapMs: number; lastAckAt: number; sequenceBreaks: number; gaps?: Array<{ at: number; ms: number }>; connected?: boolean }

export function readStatus(file: string): IncrStatus {
  for (let i = 0; i < 20; i++) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  throw new Error(`cannot read workload status ${file}`);
}

/** The longest pause in acknowledgements, counting a pause still going on now. */
function stallMs(st: IncrStatus): number {
  return Math.max(st.maxGapMs, Date.now() - st.lastAckAt);
}

/**
 * Failover scenarios against the active member, each under load: one client per tenant
 * holds ONE TCP connection to its tenant's Redis and issues INCR back to back.
 */
export class FailoverRunner {
  constructor(private readonly emu: Emulation, private readonly pair = 0) {}

  private members(): GatewayMember[] {
    return this.emu.members(this.pair);
  }

  private clientPods(): Pod[] {
    const pods = this.emu.pods();
    const tenants = [...new Set(pods.filter((p) => p.tenant).map((p) => p.tenant!))];
    return tenants.map((t) => pods.find((p) => p.tenant === t)!);
  }

  async waitForState(run: GatewayMember, state: string, timeoutMs = 15000): Promise<boolean> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (this.emu.vrrpState(run) === state) return true;
      await sleep(100);
    }
    return false;
  }

  /** Bring a member back like a rebooted instance and wait until it is a synced backup. */
  async restore(run: GatewayMember): Promise<void> {
    await this.emu.rebootMember(run);
    const t0 = Date.now();
    while (!['BACKUP', 'MASTER'].includes(this.emu.vrrpState(run)) && Date.now() - t0 < 20000) await sleep(100);
    if (!['BACKUP', 'MASTER'].includes(this.emu.vrrpState(run))) throw new Error(`${run.id} did not come back (state ${this.emu.vrrpState(run)})`);
    await sleep(2000); // bulk resync from the master (conntrackd -n on BACKUP)
  }

  async scenario(fault: Fault): Promise<ScenarioResult> {
    const master = this.emu.liveMaster(this.pair);
    if (!master) throw new Error(`pair ${this.pair} has no master before ${fault}`);
    const standby = this.members().find((m) => m !== master)!;
    const key = `failover:${fault}:${Date.now().toString(36)}`;
    const pods = this.clientPods();
    this.emu.progress(`failover ${fault}: load on ${pods.length} tenant connection(s), fault on ${master.id}`);
    const clients = pods.map((p) => ({ pod: p, ...this.emu.startIncrClient(p, key) }));
    const t0 = Date.now();
    const started = () => clients.every((c) => existsSync(c.statusFile) && readStatus(c.statusFile).acked > 20);
    while (Date.now() - t0 < 5000 && !started()) await sleep(100);
    const before = clients.map((c) => readStatus(c.statusFile).acked);
    if (before.some((a) => a === 0)) throw new Error(`failover ${fault}: the workload did not start (acks ${before.join(',')})`);
    await sleep(1000);

    let note = '';
    // Failback: the member that failed earlier came back (rebooted, resynced as standby);
    // now the current master dies hard and traffic must return to it with sessions intact.
    if (fault === 'hard-kill' || fault === 'failback') this.emu.killMember(master);
    else if (fault === 'graceful-stop') await this.emu.stopMember(master);
    else if (fault === 'split-brain') {
      // Cut only the link between the members: both keep their nodes, tenants and the cloud API.
      this.emu.partition(master, standby, true);
      await sleep(5000);
      const both = [master, standby].filter((m) => this.emu.vrrpState(m) === 'MASTER').length;
      note = `while cut: ${both} member(s) MASTER, cloud calls ${this.emu.cloudCalls().length}; healed after 5 s`;
      this.emu.partition(master, standby, false);
      await sleep(3000);
    }
    else if (fault === 'double-fault') {
      this.emu.killMember(master);
      await sleep(300);
      this.emu.killMember(standby);
      note = 'both members down: expected outage, reported not survived';
    }
    // Wait, bounded, until traffic has flowed again on every connection for a full 1.5 s,
    // starting at least 1 s after the fault took effect (in-flight replies are not recovery).
    const actionDone = Date.now();
    const limit = fault === 'double-fault' ? 6000 : 20000;
    let steadySince = 0;
    let resumed = false;
    while (Date.now() - actionDone < limit) {
      const flowing = clients.every((c) => Date.now() - readStatus(c.statusFile).lastAckAt < 250);
      if (!flowing || Date.now() - actionDone < 1000) steadySince = 0;
      else if (!steadySince) steadySince = Date.now();
      if (steadySince && Date.now() - steadySince >= 1500 && fault !== 'double-fault') {
        resumed = true;
        break;
      }
      await sleep(50);
    }
    for (const c of clients) {
      try {
        process.kill(c.child.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await sleep(400);

    const outcomes: TenantOutcome[] = clients.map((c) => {
      const st = readStatus(c.statusFile);
      st.maxGapMs = stallMs(st);
      const svc = this.emu.tenantService(c.pod.tenant!)!;
      const counter = Number(this.emu.exec(svc.ns, 'redis-cli', ['-h', svc.address, 'get', key], { allowFail: true }).trim() || '0');
      return { tenant: c.pod.tenant!, acked: st.acked, counter, lostWrites: Math.max(0, st.lastValue - counter), reconnects: st.reconnects, failedOps: st.failedOps, maxGapMs: st.maxGapMs, sequenceBreaks: st.sequenceBreaks };
    });
    // Isolation: each tenant's key exists only in that tenant's Redis.
    let isolated = true;
    for (const o of outcomes) {
      for (const t of this.emu.activeTenants().map((x) => x.name)) {
        const svc = this.emu.tenantService(t);
        if (t === o.tenant || !svc) continue;
        const other = this.emu.exec(svc.ns, 'redis-cli', ['-h', svc.address, 'exists', key], { allowFail: true }).trim();
        // Every tenant writes the same key name in its own Redis; a foreign write would push its counter past its own acks.
        if (other !== '1' && other !== '0') isolated = false;
      }
      if (o.counter > o.acked + 1 || o.sequenceBreaks > 0) isolated = false;
    }
    const to = this.emu.liveMaster(this.pair)?.id ?? 'none';
    const recoveryMs = Math.max(...outcomes.map((o) => o.maxGapMs));
    const result: ScenarioResult = {
      fault,
      from: master.id,
      to,
      recoveryMs,
      failedOps: outcomes.reduce((a, o) => a + o.failedOps, 0),
      connectionSurvived: outcomes.every((o) => o.reconnects === 0),
      countersMatch: outcomes.every((o) => o.lostWrites === 0 && (o.counter === o.acked || o.counter === o.acked + 1)),
      isolated,
      tenants: outcomes,
      survived: fault !== 'double-fault' && resumed && to !== 'none' && outcomes.every((o) => o.reconnects === 0 && o.lostWrites === 0 && (o.counter === o.acked || o.counter === o.acked + 1)),
      note,
    };
    this.emu.progress(`failover ${fault}: ${master.id} -> ${to}, traffic back after ${recoveryMs} ms, failed ops ${result.failedOps}, connection ${result.connectionSurvived ? 'survived' : 'RECONNECTED'}, counters ${result.countersMatch ? 'match' : 'LOST WRITES'}`);
    return result;
  }

  /** (a) hard kill, (c) failback to the returned member, (b) graceful stop, split brain, (d) double fault; members are restored between them. */
  async runAll(faults: Fault[] = ['hard-kill', 'failback', 'graceful-stop', 'split-brain', 'double-fault']): Promise<ScenarioResult[]> {
    const results: ScenarioResult[] = [];
    const original = this.emu.liveMaster(this.pair)!;
    for (const f of faults) {
      if (f === 'failback') {
        // The original member must be the standby now; failing the current master moves traffic back to it.
        if (this.emu.liveMaster(this.pair) === original) throw new Error('failback needs the original master to be the standby');
      }
      results.push(await this.scenario(f));
      for (const m of this.members()) {
        const down = this.emu.vrrpState(m) !== 'MASTER' && this.emu.vrrpState(m) !== 'BACKUP';
        const dead = !this.emu.isRunning(m) || down;
        if (dead) await this.restore(m);
      }
    }
    return results;
  }
}

export function formatFailover(results: ScenarioResult[]): string {
  const lines = ['', 'scenario        from -> to    recovery  failed ops  connection  acked = counter  isolated  verdict'];
  for (const r of results) {
    lines.push(
      `${r.fault.padEnd(16)}${`${r.from} -> ${r.to}`.padEnd(14)}${`${r.recoveryMs} ms`.padEnd(10)}${String(r.failedOps).padEnd(12)}${(r.connectionSurvived ? 'survived' : 'reconnected').padEnd(12)}${r.tenants.map((t) => `${t.tenant}:${t.acked}=${t.counter}`).join(' ').padEnd(17)}${(r.isolated ? 'yes' : 'NO').padEnd(10)}${r.fault === 'double-fault' ? 'reported (not survivable)' : r.survived ? 'SURVIVED' : 'FAILED'}`,
    );
    if (r.note) lines.push(`  note: ${r.note}`);
  }
  return lines.join('\n');
}
