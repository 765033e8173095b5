import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { stringify } from 'yaml';
import { ok, sleep, spawnLogged } from './sys';

/**
 * A real Prometheus server (Debian package `prometheus`) in one namespace of the emulation:
 * its configuration rendered from scrape targets, its process, and a typed client for its
 * HTTP API. The API listens on 127.0.0.1 inside that namespace only; the client reaches it
 * with curl run in the namespace, so nothing outside the emulation ever sees it.
 */

export const PROMETHEUS_PACKAGE = 'prometheus';
export const PROMETHEUS_LISTEN = '127.0.0.1:9090';
/** Scrape (and rule evaluation) interval: short, so a counter change shows within seconds. */
export const SCRAPE_INTERVAL_SEC = 1;

export interface ScrapeTarget {
  readonly job: string;
  /** host:port */
  readonly address: string;
  /** Target labels; with `honorLabels`, labels the endpoint's own series carry win. */
  readonly labels: Readonly<Record<string, string>>;
}

/** prometheus.yml: one job per distinct target job, static targets with their labels. */
export function renderPrometheusConfig(targets: readonly ScrapeTarget[], honorLabels: readonly string[] = []): string {
  const jobs = [...new Set(targets.map((t) => t.job))];
  return stringify({
    global: { scrape_interval: `${SCRAPE_INTERVAL_SEC}s`, scrape_timeout: `${SCRAPE_INTERVAL_SEC}s`, evaluation_interval: `${SCRAPE_INTERVAL_SEC}s` },
    scrape_configs: jobs.map((job) => ({
      job_name: job,
      ...(honorLabels.includes(job) ? { honor_labels: true } : {}),
      static_configs: targets.filter((t) => t.job === job).map((t) => ({ targets: [t.address], labels: { ...t.labels } })),
    })),
  });
}

/** One series of an instant query: its labels and value. */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One series of a range query: its labels and [unix seconds, value] points. */
export interface RangeSeries {
  readonly metric: Readonly<Record<string, string>>;
  readonly values: ReadonlyArray<readonly [number, number]>;
}

/** An active target as /api/v1/targets reports it. */
export interface TargetHealth {
  readonly job: string;
  readonly instance: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
  /** Seconds the last scrape took. */
  readonly lastScrapeDuration: number;
}

interface ApiResponse<T> { status: 'success' | 'error'; data?: T; errorType?: string; error?: string }

/** Runs a command in the server's namespace and returns its stdout (the emulator's exec helper). */
export type NsExec = (cmd: string, args: string[], opts?: { timeoutMs?: number; allowFail?: boolean }) => string;

export class PrometheusServer {
  private readonly configFile: string;

  constructor(private readonly ns: string, private readonly dir: string, private readonly exec: NsExec) {
    this.configFile = join(dir, 'prometheus.yml');
  }

  /** Write the configuration, check it with promtool, start the server and wait until it is ready; resolves to the ms it took. */
  async start(config: string, timeoutMs = 30_000): Promise<number> {
    for (const tool of ['prometheus', 'promtool']) {
      if (!ok('sh', ['-c', `command -v ${tool}`])) throw new Error(`this plan has gateway metrics on, and the emulation scrapes them with a real Prometheus server: ${tool} is missing; install it with: apt-get install -y ${PROMETHEUS_PACKAGE}`);
    }
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    writeFileSync(this.configFile, config);
    this.exec('promtool', ['check', 'config', this.configFile]);
    const t0 = Date.now();
    spawnLogged('ip', ['netns', 'exec', this.ns, 'prometheus', `--config.file=${this.configFile}`, `--storage.tsdb.path=${join(this.dir, 'data')}`,
      `--web.listen-address=${PROMETHEUS_LISTEN}`, '--storage.tsdb.retention.time=1d'], join(this.dir, 'prometheus.log'));
    while (!this.get('/-/ready', true).includes('Ready')) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`prometheus in ${this.ns} not ready within ${timeoutMs} ms (see ${join(this.dir, 'prometheus.log')})`);
      await sleep(100);
    }
    return Date.now() - t0;
  }

  get logFile(): string {
    return join(this.dir, 'prometheus.log');
  }

  /** GET an API path with query parameters, from inside the namespace. */
  private get(path: string, allowFail = false, params: Record<string, string> = {}): string {
    const data = Object.entries(params).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`]);
    return this.exec('curl', ['-sS', '-m', '5', '--get', ...data, `http://${PROMETHEUS_LISTEN}${path}`], { timeoutMs: 8000, allowFail });
  }

  private api<T>(path: string, params: Record<string, string>): T {
    const body = this.get(path, false, params);
    let res: ApiResponse<T>;
    try {
      res = JSON.parse(body);
    } catch {
      throw new Error(`prometheus ${path}: not JSON: ${body.slice(0, 200)}`);
    }
    if (res.status !== 'success' || res.data === undefined) throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${res.errorType}: ${res.error}`);
    return res.data;
  }

  /** An instant query (a vector result) at `time` (unix seconds), or now. */
  query(expr: string, time?: number): Sample[] {
    const data = this.api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>('/api/v1/query', { query: expr, ...(time ? { time: String(time) } : {}) });
    if (data.resultType !== 'vector') throw new Error(`prometheus query ${expr}: a ${data.resultType}, expected a vector`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** A range query (a matrix result) from `start` to `end` (unix seconds) every `stepSec`. */
  queryRange(expr: string, start: number, end: number, stepSec = SCRAPE_INTERVAL_SEC): RangeSeries[] {
    const data = this.api<{ resultType: string; result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> }>('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: `${stepSec}s` });
    if (data.resultType !== 'matrix') throw new Error(`prometheus query_range ${expr}: a ${data.resultType}, expected a matrix`);
    return data.result.map((r) => ({ metric: r.metric, values: r.values.map(([t, v]) => [t, Number(v)] as const) }));
  }

  /** The active targets and their last scrape. */
  targets(): TargetHealth[] {
    const data = this.api<{ activeTargets: Array<{ labels: Record<string, string>; health: TargetHealth['health']; lastError: string; lastScrapeDuration: number }> }>('/api/v1/targets', { state: 'active' });
    return data.activeTargets.map((t) => ({ job: t.labels.job, instance: t.labels.instance, labels: t.labels, health: t.health, lastError: t.lastError, lastScrapeDuration: t.lastScrapeDuration }));
  }

  /** What a target serves, fetched from this namespace (for promtool, as Prometheus sees it). */
  scrape(address: string): string {
    return this.exec('curl', ['-sS', '-m', '5', `http://${address}/metrics`], { timeoutMs: 8000 });
  }
}
