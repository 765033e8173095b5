import { ChildProcess, execFileSync } from 'child_process';
import { appendFileSync } from 'fs';
import { join } from 'path';
import { sleep, spawnLogged } from './sys';

/** What the emulator needs of a systemd unit, read by key name from its [Service] and [Unit] sections. */
export interface UnitSpec {
  readonly name: string;
  readonly exec: string[];
  readonly oneshot: boolean;
  readonly restart: RestartPolicy;
  readonly restartSecMs: number;
  /** StartLimitBurst starts within StartLimitIntervalSec, then the unit fails; an interval of 0 means no limit. */
  readonly startLimitBurst?: number;
  readonly startLimitIntervalMs?: number;
}

export type RestartPolicy = 'no' | 'always' | 'on-success' | 'on-failure' | 'on-abnormal' | 'on-abort' | 'on-watchdog';
const POLICIES: RestartPolicy[] = ['no', 'always', 'on-success', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog'];

/** systemd's defaults: RestartSec=100ms; a unit started 5 times within 10 s gives up (StartLimitBurst/IntervalSec). */
const DEFAULT_RESTART_SEC_MS = 100;
export const RESTART_BURST = 5;
export const RESTART_INTERVAL_MS = 10_000;
/** A ceiling on one RestartSec wait, so that a typo cannot park a unit for hours. */
const MAX_RESTART_DELAY_MS = 30_000;

/** systemd time spans as units use them: "5", "5s", "500ms", "1min 30s". */
export function parseTimeSpan(text: string): number {
  const ms: Record<string, number> = { '': 1000, ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  let total = 0;
  const parts = text.trim().split(/\s+/);
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(part);
    if (!m || ms[m[2]] === undefined) throw new Error(`unsupported time span "${text}"`);
    total += Number(m[1]) * ms[m[2]];
  }
  return Math.round(total);
}

/** Parse a unit file's [Service] (and start-limit [Unit]) keys by name; later assignments win, as in systemd. */
export function parseUnit(name: string, text: string): UnitSpec {
  const keys = new Map<string, string>();
  const unitKeys = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    const [key, value] = [line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim()];
    if (header) section = header[1];
    else if (section === 'Service' && line.includes('=')) keys.set(key, value);
    else if (section === 'Unit' && line.includes('=')) unitKeys.set(key, value);
  }
  const burst = unitKeys.has('StartLimitBurst') ? Number(unitKeys.get('StartLimitBurst')) : RESTART_BURST;
  if (!Number.isInteger(burst) || burst < 1) throw new Error(`unit ${name}: unsupported StartLimitBurst=${unitKeys.get('StartLimitBurst')}`);
  const exec = keys.get('ExecStart');
  if (!exec) throw new Error(`unit ${name} has no ExecStart`);
  const restart = (keys.get('Restart') ?? 'no') as RestartPolicy;
  if (!POLICIES.includes(restart)) throw new Error(`unit ${name}: unsupported Restart=${restart}`);
  const type = keys.get('Type') ?? 'simple';
  if (!['simple', 'exec', 'oneshot'].includes(type)) throw new Error(`unit ${name}: unsupported Type=${type}`);
  return {
    name,
    exec: exec.split(/\s+/),
    oneshot: type === 'oneshot',
    restart,
    restartSecMs: keys.has('RestartSec') ? parseTimeSpan(keys.get('RestartSec')!) : DEFAULT_RESTART_SEC_MS,
    startLimitBurst: burst,
    startLimitIntervalMs: unitKeys.has('StartLimitIntervalSec') ? parseTimeSpan(unitKeys.get('StartLimitIntervalSec')!) : RESTART_INTERVAL_MS,
  };
}

/** SIGHUP, SIGINT, SIGTERM and SIGPIPE count as a clean end for Restart= (systemd.service(5)). */
const CLEAN_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGPIPE'];

/** Whether systemd would restart a unit whose main process ended with this code or signal. */
export function shouldRestart(policy: RestartPolicy, code: number | null, signal: string | null): boolean {
  const clean = (code === 0 && !signal) || (signal !== null && CLEAN_SIGNALS.includes(signal));
  const abnormal = signal !== null && !CLEAN_SIGNALS.includes(signal);
  switch (policy) {
    case 'always': return true;
    case 'on-success': return clean;
    case 'on-failure': return !clean;
    case 'on-abnormal': return abnormal;
    case 'on-abort': return abnormal;
    default: return false;
  }
}

export interface SupervisorOptions {
  /** Label in errors and the log (the member id). */
  readonly id: string;
  /** The argv that runs a unit's ExecStart inside the member (namespace, mounts). */
  readonly argv: (exec: string[]) => string[];
  readonly env: NodeJS.ProcessEnv;
  /** Directory of the unit logs (the member's /run/crossvpc). */
  readonly logDir: string;
}

interface Running { readonly spec: UnitSpec; child?: ChildProcess; starts: number[]; restarted: number; timer?: NodeJS.Timeout }

/**
 * A tiny systemd for one member: starts units in the order given, runs oneshots to the end,
 * restarts long-running units as their Restart=/RestartSec= say, with systemd's defaults
 * (RestartSec constant, at most RESTART_BURST starts in RESTART_INTERVAL_MS, then the unit
 * stays failed, as StartLimitBurst/StartLimitIntervalSec would leave it on a real member),
 * and kills what is left of a unit's process group whenever its main process ends, as
 * systemd's control-group cleanup would.
 */
export class UnitSupervisor {
  private readonly running = new Map<string, Running>();
  private readonly stopped = new Map<string, UnitSpec>();
  private halted = false;
  /** Bumped by halt(): a start() or oneshot retry in flight stops at its next step. */
  private generation = 0;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Never throws: it runs from child exit handlers, where an error would end the whole run. */
  private note(line: string): void {
    try {
      appendFileSync(join(this.opts.logDir, 'units.log'), `${new Date().toISOString()} ${line}\n`);
    } catch {
      /* the member's /run is gone (reboot); nothing to tell */
    }
  }

  async start(units: readonly UnitSpec[]): Promise<void> {
    this.halted = false;
    const generation = this.generation;
    for (const u of units) {
      if (this.generation !== generation) return; // halted meanwhile: the machine died
      if (u.oneshot) await this.runOneshot(u);
      else this.spawn({ spec: u, starts: [Date.now()], restarted: 0 });
    }
  }

  /** Run a oneshot to its end; Restart=on-failure retries it after RestartSec, like systemd. */
  async runOneshot(u: UnitSpec, timeoutMs = 120_000): Promise<void> {
    const argv = this.opts.argv(u.exec);
    const generation = this.generation;
    for (let attempt = 0; ; attempt++) {
      if (this.generation !== generation) return; // halted while waiting to retry
      try {
        const out = execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: this.opts.env });
        appendFileSync(join(this.opts.logDir, 'units.log'), out);
        return;
      } catch (e: any) {
        appendFileSync(join(this.opts.logDir, 'units.log'), `${e.stdout ?? ''}${e.stderr ?? ''}`);
        if (this.halted || attempt + 1 >= RESTART_BURST || !shouldRestart(u.restart, e.status ?? null, e.signal ?? null)) {
          throw new Error(`${this.opts.id}: ${u.exec.join(' ')} failed:\n${(e.stderr ?? e.message).toString().trim()}`);
        }
        this.note(`${u.name}: failed; running it again in ${u.restartSecMs} ms (Restart=${u.restart})`);
        await sleep(u.restartSecMs);
      }
    }
  }

  private spawn(r: Running): void {
    const argv = this.opts.argv(r.spec.exec);
    const child = spawnLogged(argv[0], argv.slice(1), join(this.opts.logDir, `${r.spec.name}.log`), this.opts.env);
    r.child = child;
    this.running.set(r.spec.name, r);
    child.on('exit', (code, signal) => this.exited(r, child, code, signal));
    // A failed spawn (ENOENT, EAGAIN) emits 'error' and no 'exit': a failed start, never a crash of the run.
    child.on('error', (e) => this.note(`${r.spec.name}: could not start: ${e.message}`));
  }

  private exited(r: Running, child: ChildProcess, code: number | null, signal: string | null): void {
    if (r.child !== child || this.halted || this.running.get(r.spec.name) !== r) return;
    const how = signal ? `killed by ${signal}` : `exited with ${code}`;
    // Whatever the unit left behind goes with its main process (systemd's control group): its process group.
    killGroup(child, 'SIGKILL');
    if (!shouldRestart(r.spec.restart, code, signal)) {
      this.note(`${r.spec.name}: ${how}; not restarted (Restart=${r.spec.restart})`);
      return;
    }
    const now = Date.now();
    const interval = r.spec.startLimitIntervalMs ?? RESTART_INTERVAL_MS;
    const burst = r.spec.startLimitBurst ?? RESTART_BURST;
    r.starts = interval === 0 ? [] : r.starts.filter((t) => now - t < interval);
    if (interval > 0 && r.starts.length >= burst) {
      this.note(`${r.spec.name}: ${how}; start limit hit (${burst} starts in ${interval} ms), unit failed`);
      return;
    }
    const delay = Math.min(MAX_RESTART_DELAY_MS, r.spec.restartSecMs);
    r.starts.push(now + delay);
    r.restarted += 1;
    this.note(`${r.spec.name}: ${how}; restarting in ${delay} ms (${interval === 0 ? 'no start limit' : `start ${r.starts.length} of ${burst} in ${interval} ms`})`);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      if (this.halted || this.running.get(r.spec.name) !== r) return;
      try {
        this.spawn(r);
      } catch (e) {
        this.note(`${r.spec.name}: restart failed: ${(e as Error).message}`);
      }
    }, delay);
    r.timer.unref();
  }

  /**
   * `systemctl stop <name>` of one long-running unit: no restart, SIGTERM, up to 5 s, then its
   * process group is killed. `startUnit` starts it again (`systemctl start`).
   */
  async stopUnit(name: string): Promise<void> {
    const r = this.running.get(name);
    if (!r?.child) throw new Error(`${this.opts.id}: no running unit ${name}`);
    this.running.delete(name);
    this.stopped.set(name, r.spec);
    if (r.timer) clearTimeout(r.timer);
    await terminate(r.child);
    this.note(`${name}: stopped`);
  }

  startUnit(name: string): void {
    const spec = this.stopped.get(name);
    if (!spec) throw new Error(`${this.opts.id}: unit ${name} was not stopped`);
    this.stopped.delete(name);
    this.spawn({ spec, starts: [Date.now()], restarted: 0 });
    this.note(`${name}: started`);
  }

  /** Whether any long-running unit has a live main process. */
  anyAlive(): boolean {
    return [...this.running.values()].some((r) => alive(r.child));
  }

  /** Main PID of a running unit. */
  mainPid(name: string): number | undefined {
    const r = this.running.get(name);
    return r && alive(r.child) ? r.child.pid : undefined;
  }

  /** How many times a unit was restarted since it was first started. */
  restartCount(name: string): number {
    return this.running.get(name)?.restarted ?? 0;
  }

  /**
   * Stop restarting anything, without touching the processes: the machine is about to die
   * (hard kill, reboot) and whoever calls this ends its processes.
   */
  halt(): void {
    this.halted = true;
    this.generation += 1;
    for (const r of this.running.values()) if (r.timer) clearTimeout(r.timer);
    this.running.clear();
  }

  /**
   * Stop the units in reverse start order, as a shutdown would: SIGTERM to the main process,
   * up to 5 s to exit, then SIGKILL to whatever is left of its process group (KillMode=control-group).
   */
  async stop(): Promise<void> {
    const units = [...this.running.values()].reverse();
    this.halt();
    for (const r of units) if (r.child) await terminate(r.child);
  }
}

/** SIGTERM to a unit's main process, up to 5 s to exit, then SIGKILL to what is left of its process group (KillMode=control-group). */
async function terminate(child: ChildProcess): Promise<void> {
  if (alive(child)) {
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      /* gone already */
    }
    for (let i = 0; i < 50 && alive(child); i++) await sleep(100);
  }
  killGroup(child, 'SIGKILL');
}

const alive = (c: ChildProcess | undefined): c is ChildProcess => !!c && c.exitCode === null && c.signalCode === null;

/** Every process left in a unit's process group (spawnLogged makes the main process its leader). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* the group is empty */
  }
}
