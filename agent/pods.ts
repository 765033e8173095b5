import { watch, FSWatcher } from 'fs';
import { open, stat } from 'fs/promises';
import { StringDecoder } from 'string_decoder';
import type { Log } from './log';

/** The few pod fields the agent needs. */
export interface PodInfo {
  /** uid, or namespace/name when the producer sends no uid. */
  readonly key: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip?: string;
  readonly hostNetwork: boolean;
  readonly phase?: string;
  /** metadata.deletionTimestamp is set: shutting down, its IP about to be freed. */
  readonly terminating?: boolean;
}

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Where pod state goes. `sync` carries the complete set (start, re-list); events follow it in order. */
export interface PodSink {
  sync(pods: PodInfo[]): void;
  event(type: PodEventType, pod: PodInfo): void;
  /** The source heard from its producer (also without a pod change: a watch bookmark); for the event-age metric. */
  alive?(): void;
  /** A list, watch or read of the source failed (it retries on its own); counted in errors_total{op="pod_source"}. */
  failed?(): void;
}

/** Kubernetes watch or a tailed file: the reconciler cannot tell them apart. */
export interface PodSource {
  start(sink: PodSink): void;
  stop(): void;
}

/** A Kubernetes Pod object (or the trimmed one in a watch-event file) → PodInfo. */
export function podFromObject(o: any): PodInfo | undefined {
  const md = o?.metadata;
  if (!md || typeof md.name !== 'string') return undefined;
  const namespace = typeof md.namespace === 'string' ? md.namespace : 'default';
  return {
    key: typeof md.uid === 'string' && md.uid ? md.uid : `${namespace}/${md.name}`,
    name: md.name,
    namespace,
    labels: md.labels && typeof md.labels === 'object' ? md.labels : {},
    ip: typeof o.status?.podIP === 'string' && o.status.podIP ? o.status.podIP : undefined,
    hostNetwork: o.spec?.hostNetwork === true,
    phase: o.status?.phase,
    terminating: typeof md.deletionTimestamp === 'string' && md.deletionTimestamp !== '',
  };
}

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** One watch-event line → event, or a reason it is skipped (BOOKMARK/ERROR lines are not pod changes). */
export function parseEventLine(line: string): { type: PodEventType; pod: PodInfo } | { skip: string } {
  let e: any;
  try {
    e = JSON.parse(line);
  } catch {
    return { skip: 'not JSON' };
  }
  if (!EVENT_TYPES.has(e?.type)) return { skip: `event type ${String(e?.type)}` };
  const pod = podFromObject(e.object);
  return pod ? { type: e.type, pod } : { skip: 'object without metadata.name' };
}

/**
 * Tails a JSON-lines file of watch events (the emulator appends to it). The lines
 * present at start (or after truncation) are folded into a snapshot; later lines are
 * events. fs.watch gives low latency, the poll covers filesystems where it is silent.
 */
export class FilePodSource implements PodSource {
  private offset = 0;
  private ino = -1;
  private partial = '';
  private decoder = new StringDecoder('utf8');
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private again = false;
  private stopped = false;
  private sink?: PodSink;
  private synced = false;

  constructor(
    private readonly path: string,
    private readonly log: Log,
    private readonly pollMs = 50,
  ) {}

  start(sink: PodSink): void {
    this.sink = sink;
    this.timer = setInterval(() => this.poke(), this.pollMs);
    this.poke();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
  }

  private poke(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.read()
      .catch((e) => {
        this.log('warn', 'pod file read failed', { path: this.path, error: (e as Error).message });
        this.sink?.failed?.();
      })
      .finally(() => {
        this.busy = false;
        if (this.again && !this.stopped) {
          this.again = false;
          this.poke();
        }
      });
  }

  private watchFile(): void {
    if (this.watcher || this.stopped) return;
    try {
      this.watcher = watch(this.path, (ev) => {
        if (ev === 'rename') {
          // Replaced or removed: this watcher follows the old inode; the next poll re-arms.
          this.watcher?.close();
          this.watcher = undefined;
        }
        this.poke();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined; // re-armed by the next poll
      });
    } catch {
      // Not there yet: the poll keeps looking.
    }
  }

  private async read(): Promise<void> {
    let st;
    try {
      st = await stat(this.path);
    } catch {
      if (!this.synced) this.emitSnapshot(new Map()); // no file yet = no pods
      return;
    }
    this.watchFile();
    if (st.ino !== this.ino || st.size < this.offset) {
      // New or truncated file: start over and resync from its full contents.
      this.ino = st.ino;
      this.offset = 0;
      this.partial = '';
      this.decoder = new StringDecoder('utf8');
      this.synced = false;
    }
    const snapshot = this.synced ? undefined : new Map<string, PodInfo>();
    if (st.size > this.offset) {
      const fh = await open(this.path, 'r');
      try {
        const buf = Buffer.alloc(st.size - this.offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        this.offset += bytesRead;
        if (bytesRead > 0) this.sink?.alive?.();
        this.consume(this.decoder.write(buf.subarray(0, bytesRead)), snapshot);
      } finally {
        await fh.close();
      }
    }
    if (snapshot) this.emitSnapshot(snapshot);
  }

  private consume(text: string, snapshot?: Map<string, PodInfo>): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? ''; // a line is complete only once its newline is written
    for (const line of lines) {
      if (!line.trim()) continue;
      const e = parseEventLine(line);
      if ('skip' in e) {
        this.log('warn', 'pod event skipped', { reason: e.skip, line: line.slice(0, 200) });
        continue;
      }
      if (this.stopped) return;
      if (snapshot) {
        if (e.type === 'DELETED') snapshot.delete(e.pod.key);
        else snapshot.set(e.pod.key, e.pod);
      } else this.sink?.event(e.type, e.pod);
    }
  }

  private emitSnapshot(pods: Map<string, PodInfo>): void {
    this.synced = true;
    if (!this.stopped) this.sink?.sync([...pods.values()]);
  }
}
