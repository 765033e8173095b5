import * as http from 'http';
import * as https from 'https';
import { readFileSync } from 'fs';
import { createInterface } from 'readline';
import type { Log } from './log';
import { PodInfo, PodSink, PodSource, parseEventLine, podFromObject } from './pods';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeOptions {
  readonly nodeName: string;
  readonly host: string;
  readonly port: number;
  /** Re-read per request: projected service-account tokens rotate. */
  readonly token: () => string;
  readonly ca?: Buffer;
  /** 'http' only for tests against a local fake API server. */
  readonly protocol?: 'https' | 'http';
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** In-cluster settings from the environment and the mounted service account. */
export function inClusterOptions(nodeName: string): KubeOptions {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = Number(process.env.KUBERNETES_SERVICE_PORT ?? 443);
  if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: not in a cluster (use --pods file:<path>)');
  return { nodeName, host, port, token: () => readFileSync(`${SA_DIR}/token`, 'utf8').trim(), ca: readFileSync(`${SA_DIR}/ca.crt`) };
}

class Gone extends Error {}

/**
 * Pods of one node from the API server: list (snapshot), then watch from the list's
 * resourceVersion. 410 Gone (history compacted) → re-list; other failures → back off
 * and resume from the last resourceVersion seen.
 */
export class KubePodSource implements PodSource {
  private stopped = false;
  private req?: http.ClientRequest;
  private wake?: () => void;

  constructor(
    private readonly opts: KubeOptions,
    private readonly log: Log,
  ) {}

  start(sink: PodSink): void {
    void this.loop(sink);
  }

  stop(): void {
    this.stopped = true;
    this.req?.destroy();
    this.wake?.();
  }

  private async loop(sink: PodSink): Promise<void> {
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    let backoff = min;
    let rv: string | undefined;
    while (!this.stopped) {
      try {
        if (rv === undefined) {
          const list = await this.list();
          if (this.stopped) return;
          sink.alive?.();
          sink.sync(list.pods);
          rv = list.rv;
          this.log('info', 'pods listed', { count: list.pods.length, resourceVersion: rv });
        }
        const started = Date.now();
        rv = await this.watch(rv, sink);
        backoff = min;
        if (Date.now() - started < 1000) await this.sleep(min); // a server closing at once must not spin us
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof Gone) {
          this.log('info', 'watch expired (410 Gone), re-listing', {});
          rv = undefined;
          continue;
        }
        this.log('warn', 'pod watch failed, backing off', { error: (e as Error).message, backoffMs: backoff });
        sink.failed?.();
        await this.sleep(backoff);
        backoff = Math.min(max, backoff * 2);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private selector(): string {
    return `fieldSelector=${encodeURIComponent(`spec.nodeName=${this.opts.nodeName}`)}`;
  }

  private request(path: string, timeoutMs: number): Promise<http.IncomingMessage> {
    const mod = this.opts.protocol === 'http' ? http : https;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        {
          host: this.opts.host,
          port: this.opts.port,
          path,
          method: 'GET',
          ca: this.opts.ca,
          headers: { Authorization: `Bearer ${this.opts.token()}`, Accept: 'application/json' },
        },
        resolve,
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: no data for ${timeoutMs} ms`)));
      req.on('error', (e) => reject(new Error(`GET ${path}: ${e.message}`)));
      req.end();
      this.req = req;
    });
  }

  private async body(res: http.IncomingMessage): Promise<string> {
    let s = '';
    for await (const chunk of res) s += chunk;
    return s;
  }

  private async list(): Promise<{ pods: PodInfo[]; rv: string }> {
    const pods: PodInfo[] = [];
    let cont = '';
    for (;;) {
      const path = `/api/v1/pods?${this.selector()}&limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
      const res = await this.request(path, 30_000);
      const text = await this.body(res);
      if (res.statusCode === 410) throw new Gone(); // continue token expired
      if (res.statusCode !== 200) throw new Error(`GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      const doc = JSON.parse(text);
      for (const item of doc.items ?? []) {
        const p = podFromObject(item);
        if (p) pods.push(p);
      }
      cont = doc.metadata?.continue ?? '';
      if (!cont) return { pods, rv: String(doc.metadata?.resourceVersion ?? '') };
    }
  }

  /** Streams events until the server ends the watch; returns the last resourceVersion seen. */
  private async watch(rv: string, sink: PodSink): Promise<string> {
    const timeout = 240 + Math.floor(Math.random() * 60); // spread re-watches of many nodes
    const path = `/api/v1/pods?${this.selector()}&watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeout}&resourceVersion=${encodeURIComponent(rv)}`;
    const res = await this.request(path, (timeout + 60) * 1000);
    if (res.statusCode === 410) throw new Gone();
    if (res.statusCode !== 200) throw new Error(`GET ${path}: HTTP ${res.statusCode} ${(await this.body(res)).slice(0, 200)}`);
    let last = rv;
    for await (const line of createInterface({ input: res, crlfDelay: Infinity })) {
      if (!line.trim() || this.stopped) continue;
      sink.alive?.();
      const doc = JSON.parse(line);
      if (doc.type === 'ERROR') {
        if (doc.object?.code === 410) throw new Gone();
        throw new Error(`watch error: ${doc.object?.message ?? line.slice(0, 200)}`);
      }
      const v = doc.object?.metadata?.resourceVersion;
      if (v) last = String(v);
      const e = parseEventLine(line);
      if (!('skip' in e)) sink.event(e.type, e.pod); // BOOKMARK only moves resourceVersion
    }
    return last;
  }
}
