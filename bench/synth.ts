/**
 * Synth benchmark: wall time and peak memory of `app.synth()` for 10, 100 and 1,000
 * tenants, each measurement in a fresh child process so that peak RSS belongs to one
 * size only. Run with `npm run bench:synth`. It is a report: it always exits 0.
 *
 *   node dist/bench/synth.js                         # the whole report
 *   node dist/bench/synth.js --child N [--type T]    # one measurement, JSON on stdout
 *
 * Tenants t0001.. all use 172.16.0.0/16 (they overlap completely), have their own VPC
 * and subnet ids and an explicit VNI (i + 1, so no two names can hash to one VNI).
 * The gateway is c6in.xlarge: 3 tenants per member, pairs added as tenants need them.
 *
 * If the model rejects a size on c6in.xlarge (it allows at most 1,000 pairs, so 3,000
 * tenants), the report says so and also measures that size on the smallest type of the
 * built-in ENI table that fits, marked with `*`. The target (1,000 tenants in < 10 s
 * and < 1 GiB) is judged on the child's whole run time (spawn to exit) and its peak RSS.
 */
import { spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App } from 'cdktf';
import { TenantProps } from '../lib';
import { MAX_ENIS_BY_INSTANCE_TYPE } from '../lib/model/eni-capacity';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';
import { UsageError } from '../lib/cli/args';
import { parseSynthArgs, SYNTH_USAGE, SynthMode } from './synth-args';
import { printReport, Row } from './synth-report';

const SIZES = [10, 100, 1000];
const RUNS = 3;
const INSTANCE_TYPE = 'c6in.xlarge';
const STACK_ID = 'bench-synth';

// ---------------------------------------------------------------- the stack

const hex = (i: number, width: number) => i.toString(16).padStart(width, '0');

export function benchTenants(n: number): TenantProps[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `t${String(i + 1).padStart(4, '0')}`,
    vpcId: `vpc-0${hex(i + 1, 16)}`,
    subnetId: `subnet-0${hex(i + 1, 16)}`,
    cidrs: ['172.16.0.0/16'],
    vni: i + 1,
  }));
}

// ---------------------------------------------------------------- child: one measurement

interface Measurement {
  readonly tenants: number;
  readonly instanceType: string;
  readonly pairs: number;
  readonly resources: number;
  readonly outputBytes: number;
  /** Stack construction (model, placement, rendering) in ms. */
  readonly constructMs: number;
  /** app.synth() (validation, resolution, JSON written) in ms. */
  readonly synthMs: number;
  /** constructMs + synthMs: what `cdktf synth` spends in the app after loading modules. */
  readonly wallMs: number;
  /** RSS after the modules are loaded, before the stack is built (KiB). */
  readonly startRssKiB: number;
  /** process.resourceUsage().maxRSS (KiB): the child's peak. */
  readonly maxRssKiB: number;
}

interface ChildError {
  readonly tenants: number;
  readonly instanceType: string;
  readonly error: string;
  readonly crossVpcError: boolean;
}

function child(tenants: number, instanceType: string): void {
  const outdir = mkdtempSync(join(tmpdir(), 'crossvpc-bench-synth-'));
  try {
    const startRssKiB = Math.round(process.memoryUsage().rss / 1024);
    const t0 = process.hrtime.bigint();
    const app = new App({ outdir });
    let stack: OverlappingTenantsStack;
    try {
      // The example stack with N tenants on the requested instance type.
      stack = new OverlappingTenantsStack(app, STACK_ID, { tenants: benchTenants(tenants), gateway: { instanceType }, agentImage: 'crossvpc-agent:bench' });
    } catch (e) {
      const err: ChildError = { tenants, instanceType, error: (e as Error).message, crossVpcError: (e as Error).name === 'CrossVpcError' };
      process.stdout.write(`${JSON.stringify(err)}\n`);
      return;
    }
    const t1 = process.hrtime.bigint();
    app.synth();
    const t2 = process.hrtime.bigint();
    const maxRssKiB = process.resourceUsage().maxRSS;
    const file = join(outdir, 'stacks', STACK_ID, 'cdk.tf.json');
    const text = readFileSync(file, 'utf8');
    const json = JSON.parse(text);
    const resources = Object.values<Record<string, unknown>>(json.resource ?? {}).reduce((n, byType) => n + Object.keys(byType).length, 0);
    const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
    const m: Measurement = {
      tenants,
      instanceType,
      pairs: stack.nat.pairs.length,
      resources,
      outputBytes: Buffer.byteLength(text),
      constructMs: ms(t0, t1),
      synthMs: ms(t1, t2),
      wallMs: ms(t0, t2),
      startRssKiB,
      maxRssKiB,
    };
    process.stdout.write(`${JSON.stringify(m)}\n`);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- parent: the report

interface Run {
  readonly m?: Measurement;
  readonly err?: ChildError;
  readonly failure?: string;
  /** Spawn to exit, including node start-up and module loading. */
  readonly processMs: number;
}

function spawnChild(tenants: number, instanceType: string): Run {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [__filename, '--child', String(tenants), '--type', instanceType], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, CHECKPOINT_DISABLE: '1' },
  });
  const processMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line);
    if ('error' in parsed) return { err: parsed as ChildError, processMs };
    return { m: parsed as Measurement, processMs };
  } catch {
    return { failure: `child exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`, processMs };
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function measure(tenants: number, instanceType: string, log: (s: string) => void): { row?: Row; err?: ChildError; failure?: string } {
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = spawnChild(tenants, instanceType);
    if (r.err || r.failure) return { err: r.err, failure: r.failure };
    runs.push(r);
    log(`  ${tenants} tenants on ${instanceType}, run ${i + 1}/${RUNS}: ${r.m!.wallMs.toFixed(0)} ms in the app, ${r.processMs.toFixed(0)} ms process, peak ${(r.m!.maxRssKiB / 1024).toFixed(0)} MiB`);
  }
  const ms = runs.map((r) => r.m!);
  return {
    row: {
      tenants,
      instanceType,
      pairs: ms[0].pairs,
      resources: ms[0].resources,
      outputMiB: ms[0].outputBytes / 1048576,
      wallMs: median(ms.map((m) => m.wallMs)),
      constructMs: median(ms.map((m) => m.constructMs)),
      synthMs: median(ms.map((m) => m.synthMs)),
      processMs: median(runs.map((r) => r.processMs)),
      peakMiB: median(ms.map((m) => m.maxRssKiB)) / 1024,
      deltaMiB: median(ms.map((m) => m.maxRssKiB - m.startRssKiB)) / 1024,
      runs: ms.map((m) => m.wallMs),
    },
  };
}

/** The smallest type of the requested family (then any type) whose 255 pairs hold `tenants`. */
function fallbackType(tenants: number, requested: string): string | undefined {
  const family = requested.split('.')[0];
  const fits = Object.entries(MAX_ENIS_BY_INSTANCE_TYPE)
    .filter(([, enis]) => (enis - 1) * 255 >= tenants)
    .sort(([a, x], [b, y]) => Number(b.startsWith(`${family}.`)) - Number(a.startsWith(`${family}.`)) || x - y);
  return fits[0]?.[0];
}

function parent(): void {
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(`crossvpc synth benchmark: ${SIZES.join(', ')} tenants on ${INSTANCE_TYPE}, ${RUNS} fresh child processes per size, medians`);
  log(`node ${process.version}, ${process.platform}/${process.arch}`);
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const n of SIZES) {
    const r = measure(n, INSTANCE_TYPE, log);
    if (r.row) {
      rows.push(r.row);
      continue;
    }
    if (r.failure) {
      notes.push(`${n} tenants on ${INSTANCE_TYPE}: the child failed: ${r.failure}`);
      continue;
    }
    notes.push(`${n} tenants on ${INSTANCE_TYPE}: the model rejects the stack: ${r.err!.error}`);
    log(`  ${n} tenants on ${INSTANCE_TYPE}: REJECTED by the model (${r.err!.error.split(': ').slice(0, 2).join(': ')})`);
    const alt = fallbackType(n, INSTANCE_TYPE);
    if (!alt) continue;
    log(`  ${n} tenants: measuring on ${alt} instead (${MAX_ENIS_BY_INSTANCE_TYPE[alt] - 1} tenants per member)`);
    const again = measure(n, alt, log);
    if (again.row) rows.push({ ...again.row, fallbackFor: INSTANCE_TYPE });
    else notes.push(`${n} tenants on ${alt}: ${again.err?.error ?? again.failure}`);
  }
  printReport(rows, notes, INSTANCE_TYPE, log);
}

// ---------------------------------------------------------------- entry

if (require.main === module) {
  let mode: SynthMode;
  try {
    mode = parseSynthArgs(process.argv.slice(2), INSTANCE_TYPE);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`synth.js: ${e.message}\n${SYNTH_USAGE}\n`);
    process.exit(2);
  }
  if (mode.kind === 'help') {
    process.stdout.write(`${SYNTH_USAGE}\n`);
  } else if (mode.kind === 'child') {
    child(mode.tenants, mode.instanceType);
  } else {
    try {
      parent();
    } catch (e) {
      process.stdout.write(`benchmark failed: ${(e as Error).stack ?? e}\n`);
    }
    process.exit(0);
  }
}
