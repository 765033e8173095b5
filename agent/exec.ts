import { execFile } from 'child_process';
import { readFileSync } from 'fs';
import { writeFile } from 'fs/promises';
import { PrestartedCommand } from './prestarted';

/** One data-plane action. Plans are lists of these so they can be asserted without root. */
export type Step =
  | { readonly kind: 'run'; readonly argv: readonly string[]; readonly input?: string; readonly okCodes?: readonly number[] }
  | { readonly kind: 'write'; readonly path: string; readonly value: string; readonly optional?: boolean };

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
}

/** The only door to the host. Real: execFile without a shell. Tests: a recording fake. */
export interface Exec {
  /** Resolves on exit codes in okCodes (default [0]); rejects with the command line in the message otherwise. */
  run(argv: readonly string[], opts?: { input?: string; okCodes?: readonly number[] }): Promise<RunResult>;
  write(path: string, value: string): Promise<void>;
  /** A kernel file (/proc, /sys) in process: cheaper than a command; rejects naming the path. */
  read(path: string): Promise<string>;
}

export const cmdLine = (argv: readonly string[]): string => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');

export class HostExec implements Exec {
  private readonly prestarted: PrestartedCommand[];

  /** `prestart`: stdin-fed commands kept started ahead of use (see PrestartedCommand); stop() ends them. */
  constructor(opts: { prestart?: readonly (readonly string[])[] } = {}) {
    this.prestarted = (opts.prestart ?? []).map((argv) => new PrestartedCommand(argv));
  }

  run(argv: readonly string[], opts: { input?: string; okCodes?: readonly number[] } = {}): Promise<RunResult> {
    const ok = opts.okCodes ?? [0];
    const ready = opts.input !== undefined && this.prestarted.find((p) => cmdLine(p.argv) === cmdLine(argv));
    if (ready) {
      return ready.run(opts.input!).then((r) => {
        if (!r.error && ok.includes(r.code)) return { code: r.code, stdout: r.stdout };
        throw new Error(`${cmdLine(argv)} <<stdin: ${r.stderr.trim() || r.error || `exit ${r.code}`}`);
      });
    }
    return new Promise((resolve, reject) => {
      const child = execFile(argv[0], argv.slice(1), { timeout: 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : -1) : 0;
        if (ok.includes(code)) return resolve({ code, stdout });
        const why = String(stderr).trim() || err?.message || `exit ${code}`;
        reject(new Error(`${cmdLine(argv)}${opts.input ? ' <<stdin' : ''}: ${why}`));
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /**
   * Container runtimes mount /proc/sys read-only for unprivileged pods. The DaemonSet mounts
   * the host's /proc/sys/net read-write elsewhere and names it in CROSSVPC_SYSCTL_ROOT; with
   * hostNetwork those files are the node's own network sysctls.
   */
  async write(path: string, value: string): Promise<void> {
    const root = process.env.CROSSVPC_SYSCTL_ROOT;
    const target = root && path.startsWith('/proc/sys/') ? `${root}${path.slice('/proc/sys'.length)}` : path;
    try {
      await writeFile(target, value);
    } catch (e) {
      throw new Error(`write ${target}=${value}: ${(e as Error).message}`);
    }
  }

  /** Ends the prestarted processes. */
  stop(): void {
    for (const p of this.prestarted) p.stop();
  }

  /** Synchronous on purpose: kernel files need no disk, and the thread pool's open/read/close hops cost about 1 ms on a busy node. */
  async read(path: string): Promise<string> {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`read ${path}: ${(e as Error).message}`);
    }
  }
}

/**
 * Records every call; answers from `responses` (first matching command-line prefix),
 * else succeeds with empty output. Used by unit tests and by --dry-run.
 */
export class RecordingExec implements Exec {
  readonly calls: { argv: string[]; input?: string }[] = [];
  readonly writes: { path: string; value: string }[] = [];
  constructor(public responses: { prefix: string; stdout?: string; code?: number }[] = []) {}

  async run(argv: readonly string[], opts: { input?: string; okCodes?: readonly number[] } = {}): Promise<RunResult> {
    this.calls.push({ argv: [...argv], ...(opts.input !== undefined ? { input: opts.input } : {}) });
    const line = argv.join(' ');
    const r = this.responses.find((x) => line.startsWith(x.prefix));
    const code = r?.code ?? 0;
    if (!(opts.okCodes ?? [0]).includes(code)) throw new Error(`${cmdLine(argv)}: exit ${code}`);
    return { code, stdout: r?.stdout ?? '' };
  }

  async write(path: string, value: string): Promise<void> {
    this.writes.push({ path, value });
  }

  /** Recorded and answered as the command `cat <path>` (so responses script files too). */
  async read(path: string): Promise<string> {
    return (await this.run(['cat', path])).stdout;
  }

  /** Command lines run so far, for readable assertions. */
  lines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }
}
