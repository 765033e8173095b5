// What the data-plane benchmark's tools print, read by name: redis-benchmark's CSV and sockperf's summary.

export interface RedisRun { [test: string]: { rps: number; p50: number; p99: number; avg: number } }

/** redis-benchmark 7 --csv: a header naming the columns, one quoted row per test. Columns are found by name. */
export function parseRedisCsv(out: string): RedisRun {
  const rows = out.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
  const hi = rows.findIndex((r) => r.includes('test') && r.includes('p50_latency_ms'));
  if (hi < 0) throw new Error(`redis-benchmark --csv printed no latency percentiles (needs redis-tools >= 7):\n${out.slice(0, 400)}`);
  const h = rows[hi];
  const col = (name: string) => {
    const k = h.indexOf(name);
    if (k < 0) throw new Error(`redis-benchmark --csv has no ${name} column`);
    return k;
  };
  const [ti, ri, p50i, p99i, avgi] = ['test', 'rps', 'p50_latency_ms', 'p99_latency_ms', 'avg_latency_ms'].map(col);
  const res: RedisRun = {};
  for (const r of rows.slice(hi + 1)) {
    if (r.length !== h.length) continue;
    res[r[ti]] = { rps: Number(r[ri]), p50: Number(r[p50i]), p99: Number(r[p99i]), avg: Number(r[avgi]) };
  }
  if (!res.GET || !res.SET) throw new Error(`redis-benchmark --csv lacks GET/SET rows:\n${out.slice(0, 400)}`);
  return res;
}

/** sockperf's summary line: the mean full round trip in µs (`--full-rtt`). */
export function parseSockperfRtt(out: string): number {
  const m = /avg-rtt=([\d.]+)/.exec(out.replace(/\x1b\[[\d;]*m/g, ''));
  if (!m) throw new Error(`sockperf printed no avg-rtt (needs --full-rtt, sockperf >= 3.7):\n${out.slice(-400)}`);
  return Number(m[1]);
}

