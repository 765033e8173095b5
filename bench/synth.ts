/**
 * Synth benchmark: wall time and peak memory of `app.synth()` for 10, 100 and 1,000
 * tenants, each measurement in a fresh child process so that peak RSS belongs to one
 * size only. Run with `npm run bench:synth`. It is a report: it always exits 0.
 *
 *   node dist/bench/synth.js                         # the whole report
 *   node dist/bench/synth.js --child N [--type T]    # one measurement, JSON on stdout
 *   node dist/bench/synth.js --floor COUNTS.json     # one measurement of the floor
 *
 * Tenants t0001.. all use 172.16.0.0/16 (they overlap completely), have their own VPC
 * and subnet ids and an explicit VNI (i + 1, so no two names can hash to one VNI).
 * The gateway is c6in.xlarge: 3 tenants per member, pairs added as tenants need them.
 *
 * If the model rejects a size on c6in.xlarge (it allows at most 1,000 pairs, so 3,000
 * tenants), the report says so and also measures that size on the smallest type of the
 * built-in ENI table that fits, marked with `*`.
 *
 * Each size is measured side by side with its floor (bench/synth-floor.ts): the same
 * resource and data blocks built with plain cdktf, runs alternating. The targets at 1,000
 * tenants (issue 12): < 3 s of process time (spawn to exit), at most 1.5x the floor's,
 * < 300 MiB peak RSS, cdk.tf.json < 5 MiB.
 */
import { spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App } from 'cdktf';
import { TenantProps } from '../lib';
import { MAX_ENIS_BY_INSTANCE_TYPE } from '../lib/model/eni-capacity';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';
import { UsageError } from '../lib/cli/args';
import { parseSynthArgs, SYNTH_USAGE, SynthMode } from './synth-args';
import { BlockCounts, blockCounts, FloorStack } from './synth-floor';
import { FloorRow, printReport, Row } from './synth-report';

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
  /** Resource and data blocks by `resource.<type>` / `data.<type>`: what the floor rebuilds. */
  readonly counts: BlockCounts;
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

/**
 * Builds a stack with `build`, synthesizes it and prints one Measurement (JSON) on stdout.
 * `build` returns the pair count, or a ChildError when the model refuses the stack.
 */
function measureChild(label: { tenants: number; instanceType: string }, build: (app: App) => number | ChildError): void {
  const outdir = mkdtempSync(join(tmpdir(), 'crossvpc-bench-synth-'));
  try {
    const startRssKiB = Math.round(process.memoryUsage().rss / 1024);
    const t0 = process.hrtime.bigint();
    const app = new App({ outdir });
    const pairs = build(app);
    if (typeof pairs !== 'number') {
      process.stdout.write(`${JSON.stringify(pairs)}\n`);
      return;
    }
    const t1 = process.hrtime.bigint();
    app.synth();
    const t2 = process.hrtime.bigint();
    const maxRssKiB = process.resourceUsage().maxRSS;
    const file = join(outdir, 'stacks', STACK_ID, 'cdk.tf.json');
    const text = readFileSync(file, 'utf8');
    const counts = blockCounts(JSON.parse(text));
    const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
    const m: Measurement = {
      ...label,
      pairs,
      resources: Object.entries(counts).filter(([a]) => a.startsWith('resource.')).reduce((n, [, c]) => n + c, 0),
      counts,
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

/** Ours: the example stack with N tenants on the requested instance type. */
function child(tenants: number, instanceType: string): void {
  measureChild({ tenants, instanceType }, (app) => {
    try {
      return new OverlappingTenantsStack(app, STACK_ID, { tenants: benchTenants(tenants), gateway: { instanceType }, agentImage: 'crossvpc-agent:bench' }).nat.pairs.length;
    } catch (e) {
      return { tenants, instanceType, error: (e as Error).message, crossVpcError: (e as Error).name === 'CrossVpcError' };
    }
  });
}

/** The floor: the same blocks (as counted in our plan) in plain cdktf. */
function floorChild(countsFile: string): void {
  const counts: BlockCounts = JSON.parse(readFileSync(countsFile, 'utf8'));
  measureChild({ tenants: 0, instanceType: 'floor' }, (app) => {
    new FloorStack(app, STACK_ID, counts);
    return 0;
  });
}

// ---------------------------------------------------------------- parent: the report

interface Run {
  readonly m?: Measurement;
  readonly err?: ChildError;
  readonly failure?: string;
  /** Spawn to exit, including node start-up and module loading. */
  readonly processMs: number;
}

function spawnChild(args: string[]): Run {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [__filename, ...args], {
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

/** The medians of a set of runs of one kind (ours or the floor). */
function summarize(runs: Run[]): FloorRow {
  const ms = runs.map((r) => r.m!);
  return {
    resources: ms[0].resources,
    outputMiB: ms[0].outputBytes / 1048576,
    wallMs: median(ms.map((m) => m.wallMs)),
    constructMs: median(ms.map((m) => m.constructMs)),
    synthMs: median(ms.map((m) => m.synthMs)),
    processMs: median(runs.map((r) => r.processMs)),
    peakMiB: median(ms.map((m) => m.maxRssKiB)) / 1024,
    deltaMiB: median(ms.map((m) => m.maxRssKiB - m.startRssKiB)) / 1024,
    runs: ms.map((m) => m.wallMs),
  };
}

/**
 * RUNS of ours and RUNS of the floor, alternating (ours, floor, ours, ...), so that both
 * see the same machine; the floor holds the blocks counted in our first run's plan.
 */
function measure(tenants: number, instanceType: string, log: (s: string) => void): { row?: Row; err?: ChildError; failure?: string } {
  const ours: Run[] = [];
  const floor: Run[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'crossvpc-bench-floor-'));
  try {
    const countsFile = join(dir, 'counts.json');
    for (let i = 0; i < RUNS; i++) {
      const r = spawnChild(['--child', String(tenants), '--type', instanceType]);
      if (r.err || r.failure) return { err: r.err, failure: r.failure };
      ours.push(r);
      log(`  ${tenants} tenants on ${instanceType}, run ${i + 1}/${RUNS}: ${r.m!.wallMs.toFixed(0)} ms in the app, ${r.processMs.toFixed(0)} ms process, peak ${(r.m!.maxRssKiB / 1024).toFixed(0)} MiB`);
      if (i === 0) writeFileSync(countsFile, JSON.stringify(r.m!.counts));
      const f = spawnChild(['--floor', countsFile]);
      if (f.failure) return { failure: `the floor: ${f.failure}` };
      floor.push(f);
      log(`  ${tenants} tenants' floor (plain cdktf, same blocks), run ${i + 1}/${RUNS}: ${f.m!.wallMs.toFixed(0)} ms in the app, ${f.processMs.toFixed(0)} ms process, peak ${(f.m!.maxRssKiB / 1024).toFixed(0)} MiB`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { row: { tenants, instanceType, pairs: ours[0].m!.pairs, ...summarize(ours), floor: summarize(floor) } };
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
  } else if (mode.kind === 'floor') {
    floorChild(mode.countsFile);
  } else {
    try {
      parent();
    } catch (e) {
      process.stdout.write(`benchmark failed: ${(e as Error).stack ?? e}\n`);
    }
    process.exit(0);
  }
}
