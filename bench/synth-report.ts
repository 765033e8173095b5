// The synth benchmark's report: the results table, growth between sizes and the verdict on the target.
import { cpus, loadavg } from 'os';

/** The targets the benchmark judges (issue 12), at 1,000 tenants. */
const TARGET = { tenants: 1000, processMs: 3000, floorRatio: 1.5, rssMiB: 300, outputMiB: 5 };

/** Medians over the runs of one stack (ours or its floor). */
export interface FloorRow {
  readonly resources: number;
  readonly outputMiB: number;
  readonly wallMs: number;
  readonly constructMs: number;
  readonly synthMs: number;
  readonly processMs: number;
  readonly peakMiB: number;
  readonly deltaMiB: number;
  readonly runs: number[];
}

/** One size's medians over its runs, with its floor's. */
export interface Row extends FloorRow {
  readonly tenants: number;
  readonly instanceType: string;
  readonly pairs: number;
  /** The plain-cdktf floor holding the same blocks, measured alternately with ours. */
  readonly floor: FloorRow;
  /** Set when this row replaces a size the requested type could not hold. */
  readonly fallbackFor?: string;
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Prints everything after the measurements: table, growth, target and notes. */
export function printReport(rows: Row[], notes: string[], instanceType: string, log: (s: string) => void): void {
  log('');
  log(table(
    ['tenants', 'instance type', 'pairs', 'resources', 'cdk.tf.json', 'wall ms', 'min..max', '(construct', '+ synth)', 'process ms', 'ms/resource', 'peak MiB', 'peak - start MiB'],
    rows.map((r) => [
      String(r.tenants),
      `${r.instanceType}${r.fallbackFor ? ' *' : ''}`,
      String(r.pairs),
      String(r.resources),
      `${r.outputMiB.toFixed(1)} MiB`,
      r.wallMs.toFixed(0),
      `${Math.min(...r.runs).toFixed(0)}..${Math.max(...r.runs).toFixed(0)}`,
      r.constructMs.toFixed(0),
      r.synthMs.toFixed(0),
      r.processMs.toFixed(0),
      (r.wallMs / r.resources).toFixed(2),
      r.peakMiB.toFixed(0),
      r.deltaMiB.toFixed(0),
    ]),
  ));
  if (rows.some((r) => r.fallbackFor)) log(`* ${instanceType} cannot hold this many tenants (see notes); measured on the type named instead`);
  log('wall ms: stack construction + app.synth() inside the child (median, and min..max of the runs); process ms: spawn to exit (adds node start-up and module loading)');
  log(`machine: ${cpus().length} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);

  log('');
  log('growth (10x tenants each step; about 10x means linear):');
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1];
    const b = rows[i];
    log(`  ${b.tenants}/${a.tenants}: wall x${(b.wallMs / a.wallMs).toFixed(1)}, process x${(b.processMs / a.processMs).toFixed(1)}, resources x${(b.resources / a.resources).toFixed(1)}, peak RSS x${(b.peakMiB / a.peakMiB).toFixed(1)}, peak - start RSS x${(b.deltaMiB / a.deltaMiB).toFixed(1)}`);
  }

  log('');
  log('side by side with the floor (the same resource and data blocks in plain cdktf, runs alternating; ratio = ours / floor):');
  log(table(
    ['tenants', 'process ms', 'floor', 'ratio', 'app ms', 'floor', 'ratio', 'peak MiB', 'floor', 'cdk.tf.json MiB', 'floor'],
    rows.map((r) => [
      String(r.tenants),
      r.processMs.toFixed(0), r.floor.processMs.toFixed(0), (r.processMs / r.floor.processMs).toFixed(2),
      r.wallMs.toFixed(0), r.floor.wallMs.toFixed(0), (r.wallMs / r.floor.wallMs).toFixed(2),
      r.peakMiB.toFixed(0), r.floor.peakMiB.toFixed(0),
      r.outputMiB.toFixed(2), r.floor.outputMiB.toFixed(2),
    ]),
  ));

  log('');
  const top = rows.find((r) => r.tenants === TARGET.tenants);
  if (top) {
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
    const ratio = top.processMs / top.floor.processMs;
    log(`targets at ${TARGET.tenants} tenants${top.fallbackFor ? ` (measured on ${top.instanceType}, not ${top.fallbackFor}: see notes)` : ''}:`);
    log(`  process time < ${TARGET.processMs / 1000} s:   ${verdict(top.processMs < TARGET.processMs)} (${(top.processMs / 1000).toFixed(2)} s spawn to exit; ${(top.wallMs / 1000).toFixed(2)} s in the app)`);
    log(`  <= ${TARGET.floorRatio}x the floor:   ${verdict(ratio <= TARGET.floorRatio)} (x${ratio.toFixed(2)}: ${(top.floor.processMs / 1000).toFixed(2)} s for the floor)`);
    log(`  peak RSS < ${TARGET.rssMiB} MiB: ${verdict(top.peakMiB < TARGET.rssMiB)} (${top.peakMiB.toFixed(0)} MiB; floor ${top.floor.peakMiB.toFixed(0)} MiB)`);
    log(`  cdk.tf.json < ${TARGET.outputMiB} MiB: ${verdict(top.outputMiB < TARGET.outputMiB)} (${top.outputMiB.toFixed(2)} MiB; floor ${top.floor.outputMiB.toFixed(2)} MiB)`);
  } else {
    log(`targets at ${TARGET.tenants} tenants: MISS (no measurement)`);
  }
  if (notes.length) {
    log('');
    log('notes:');
    for (const n of notes) log(`  - ${n}`);
  }
}
