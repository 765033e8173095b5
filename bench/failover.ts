/**
 * npm run bench:failover [-- --runs 5 --advert 0.3,0.1 --quiet-secs 20 --no-load]
 *
 * Failover speed of the synthesized pair, per keepalived advert interval, side by side in
 * ONE run. For each interval the example plan is synthesized with that `advertIntervalSec`
 * and emulated (lib/emulate), then, under load (iperf3 from a pod through the gateway to
 * its tenant's server, restarted when a failover ends it: both vCPUs busy):
 *   - quiet: --quiet-secs of load with no fault, counting VRRP state changes (flaps);
 *   - --runs rounds of hard kill, failback, graceful stop and split brain
 *     (lib/emulate/failover.ts: one INCR connection per tenant; recovery is the longest
 *     pause in its acknowledgements; sessions kept = same connection and no lost write).
 * A report, never a test: it prints PASS/MISS against the targets and exits 0.
 * Progress goes to stderr; the table and then one JSON document go to stdout.
 */
import { ChildProcess, spawn } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { cpus, release, tmpdir } from 'os';
import { join } from 'path';
import { App } from 'cdktf';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';
import { UsageError } from '../lib/cli/args';
import { Emulation } from '../lib/emulate/emulator';
import { Fault, FailoverRunner, ScenarioResult } from '../lib/emulate/failover';
import { checkHost, sleep } from '../lib/emulate/sys';
import { VrrpWatch } from '../lib/emulate/vrrp-watch';
import { FAILOVER_USAGE, FailoverParams, parseFailoverArgs } from './failover-args';

const T0 = Date.now();
const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const SCENARIOS: Fault[] = ['hard-kill', 'failback', 'graceful-stop', 'split-brain'];
/** The speed issue's target: traffic flows again within 1 s of a hard kill. */
const TARGET_MS = 1000;
const LOAD_TENANT = 'alpha';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

interface IntervalResult {
  advertSec: number;
  quietFlaps: number;
  quietDetail: string;
  rounds: ScenarioResult[][];
  error?: string;
}

function synthPlan(outdir: string, advertSec: number): string {
  const app = new App({ outdir, stackTraces: false });
  new OverlappingTenantsStack(app, 'overlapping-tenants', { gateway: { advertIntervalSec: advertSec } });
  app.synth();
  return join(outdir, 'stacks', 'overlapping-tenants');
}

/** iperf3 through the gateway from the tenant's last pod (the failover clients use its first), restarted when it ends (bounded). */
function startLoad(emu: Emulation, seconds: number): ChildProcess[] {
  const svc = emu.tenantService(LOAD_TENANT);
  const pod = emu.pods().filter((p) => p.tenant === LOAD_TENANT).pop();
  if (!svc || !pod) throw new Error(`no ${LOAD_TENANT} service or pod for the load`);
  const server = spawn('ip', ['netns', 'exec', svc.ns, 'timeout', String(seconds + 30), 'iperf3', '-s', '-B', svc.address], { stdio: 'ignore', detached: true });
  const loop = `for i in $(seq 1000); do iperf3 -c ${svc.address} -t 60 -P 2 >/dev/null 2>&1 || sleep 0.2; done`;
  const client = spawn('ip', ['netns', 'exec', pod.ns, 'timeout', String(seconds), 'bash', '--norc', '-c', loop], { stdio: 'ignore', detached: true });
  return [server, client];
}

function stopLoad(procs: ChildProcess[]): void {
  for (const p of procs) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** What an interrupt must end: the running emulation and load. */
const cleanups = new Set<() => void>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const c of cleanups) c();
    process.exit(130);
  });
}

async function measureInterval(advertSec: number, work: string, p: FailoverParams): Promise<IntervalResult> {
  const res: IntervalResult = { advertSec, quietFlaps: 0, quietDetail: '', rounds: [] };
  const stackDir = synthPlan(join(work, `synth-${advertSec}`), advertSec);
  const emu = new Emulation({ stackDir, runDir: join(work, `run-${advertSec}`), log });
  let load: ChildProcess[] = [];
  const cleanup = () => {
    stopLoad(load);
    emu.stop();
  };
  cleanups.add(cleanup);
  try {
    await emu.start();
    const budget = p.quietSecs + p.runs * SCENARIOS.length * 60 + 120;
    if (p.load) load = startLoad(emu, budget);
    await sleep(2000);
    const watch = new VrrpWatch(emu);
    await sleep(p.quietSecs * 1000);
    const quiet = watch.stop();
    res.quietFlaps = quiet.members.reduce((n, m) => n + m.transitions.length + m.entered.length, 0);
    res.quietDetail = quiet.members.map((m) => `${m.id}: ${m.transitions.map((t) => `${t.from}->${t.to}`).join(',') || 'steady'}`).join('; ');
    log(`advert ${advertSec} s: ${p.quietSecs} s of ${p.load ? 'load' : 'idle'} without a fault: ${res.quietFlaps} VRRP change(s) (${res.quietDetail})`);
    const runner = new FailoverRunner(emu);
    for (let r = 0; r < p.runs; r++) {
      const round = await runner.runAll(SCENARIOS);
      res.rounds.push(round);
      log(`advert ${advertSec} s, round ${r + 1}/${p.runs}: ${round.map((s) => `${s.fault} ${s.recoveryMs} ms${s.failedOps ? ` (${s.failedOps} failed)` : ''}${s.survived ? '' : ' NOT SURVIVED'}`).join(', ')}`);
    }
  } catch (e) {
    res.error = (e as Error).message;
    log(`advert ${advertSec} s: FAILED: ${res.error}`);
  } finally {
    cleanup();
    cleanups.delete(cleanup);
  }
  return res;
}

function report(results: IntervalResult[], p: FailoverParams): void {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`failover: ${p.runs} round(s) per advert interval of ${SCENARIOS.join(', ')}; ${p.load ? 'iperf3 load through the gateway throughout' : 'no load'}; ${cpus().length} vCPU(s), kernel ${release()}`);
  out('');
  out('advert s  scenario        recovery median / max ms  failed ops  sessions kept  flaps (quiet)');
  for (const r of results) {
    if (r.error && !r.rounds.length) {
      out(`${String(r.advertSec).padEnd(10)}FAILED: ${r.error}`);
      continue;
    }
    for (const f of SCENARIOS) {
      const runs = r.rounds.map((round) => round.find((s) => s.fault === f)!).filter(Boolean);
      const ms = runs.map((s) => s.recoveryMs);
      const kept = runs.filter((s) => s.connectionSurvived && s.countersMatch).length;
      out(`${String(r.advertSec).padEnd(10)}${f.padEnd(16)}${`${median(ms).toFixed(0)} / ${Math.max(...ms)}`.padEnd(26)}${String(runs.reduce((n, s) => n + s.failedOps, 0)).padEnd(12)}${`${kept}/${runs.length}`.padEnd(15)}${f === SCENARIOS[0] ? `${r.quietFlaps} in ${p.quietSecs} s` : ''}`);
    }
    if (r.error) out(`          (stopped early: ${r.error})`);
  }
  out('');
  out('targets:');
  for (const r of results) {
    const kills = r.rounds.map((round) => round.find((s) => s.fault === 'hard-kill')!).filter(Boolean);
    const all = r.rounds.flat();
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
    if (!kills.length) {
      out(`  MISS  advert ${r.advertSec} s: no measurement`);
      continue;
    }
    out(`  ${verdict(Math.max(...kills.map((s) => s.recoveryMs)) < TARGET_MS)}  advert ${r.advertSec} s: hard kill, traffic back in < ${TARGET_MS} ms in every run (max ${Math.max(...kills.map((s) => s.recoveryMs))} ms)`);
    out(`  ${verdict(all.every((s) => s.connectionSurvived && s.countersMatch))}  advert ${r.advertSec} s: sessions kept in every scenario and run (${all.filter((s) => s.connectionSurvived && s.countersMatch).length}/${all.length})`);
    out(`  ${verdict(r.quietFlaps === 0)}  advert ${r.advertSec} s: no VRRP change in ${p.quietSecs} s of ${p.load ? 'load' : 'idle'} without a fault (${r.quietFlaps})`);
  }
  out('');
  out(JSON.stringify({ bench: 'failover', params: p, results }, null, 1));
}

async function main(): Promise<void> {
  let p: FailoverParams | 'help';
  try {
    p = parseFailoverArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`failover.js: ${e.message}\n${FAILOVER_USAGE}\n`);
    process.exit(2);
  }
  if (p === 'help') {
    process.stdout.write(`${FAILOVER_USAGE}\n`);
    return;
  }
  checkHost();
  const work = mkdtempSync(join(tmpdir(), 'crossvpc-bench-failover-'));
  const results: IntervalResult[] = [];
  try {
    for (const a of p.adverts) results.push(await measureInterval(a, work, p));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  report(results, p);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e) => {
      process.stdout.write(`benchmark failed: ${(e as Error).stack ?? e}\n`);
      process.exit(0);
    },
  );
}
