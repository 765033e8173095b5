import { execFileSync, spawn, ChildProcess } from 'child_process';
import { closeSync, existsSync, openSync } from 'fs';
import { join } from 'path';

/** Thin, logged wrappers around the host tools; every call is bounded in time. */

/**
 * Runs a command, stdin /dev/null unless `input` is given. Never a pipe by default: Node's pipes are
 * sockets, and `bash -c` with a socket on stdin thinks rshd started it and sources ~/.bashrc (on
 * this kind of machine pyenv's rehash, which waits up to 60 s for a lock other shells hold).
 */
export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30000, input: opts.input, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  } catch (e: any) {
    if (opts.allowFail) return '';
    const stderr = (e.stderr ?? '').toString().trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr || e.message}`);
  }
}

/** Exit status only, no throw. */
export function ok(cmd: string, args: string[], timeoutMs = 10000): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}

/** ok() without blocking the event loop, so independent probes can run side by side. */
export function okAsync(cmd: string, args: string[], timeoutMs = 10000): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

/** Run async jobs at most `limit` at a time; results in input order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await job(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function spawnLogged(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env });
  closeSync(fd);
  child.unref();
  return child;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * SIGTERM a process this run started and wait (at most timeoutMs) until it is gone, so that
 * removing its working directory does not race its shutdown writes.
 */
export function terminateAndWait(pid: number, timeoutMs = 5000): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let waited = 0; waited < timeoutMs && existsSync(`/proc/${pid}`); waited += 20) sleepSync(20);
}

export const REQUIRED_TOOLS: Array<{ tool: string; pkg: string }> = [
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'bridge', pkg: 'iproute2' },
  { tool: 'nft', pkg: 'nftables' },
  { tool: 'conntrack', pkg: 'conntrack' },
  { tool: 'conntrackd', pkg: 'conntrackd' },
  { tool: 'keepalived', pkg: 'keepalived' },
  { tool: 'redis-server', pkg: 'redis-server' },
  { tool: 'redis-cli', pkg: 'redis-tools' },
  { tool: 'unshare', pkg: 'util-linux' },
  { tool: 'flock', pkg: 'util-linux' },
  { tool: 'curl', pkg: 'curl' },
  { tool: 'jq', pkg: 'jq' },
  { tool: 'gunzip', pkg: 'gzip' },
  { tool: 'arping', pkg: 'iputils-arping' },
  { tool: 'ping', pkg: 'iputils-ping' },
  { tool: 'ethtool', pkg: 'ethtool' },
  { tool: 'sysctl', pkg: 'procps' },
  { tool: 'prometheus-node-exporter', pkg: 'prometheus-node-exporter' },
];

/** Refuse clearly, naming the Debian packages to install. */
export function checkHost(): void {
  if (process.platform !== 'linux') throw new Error('crossvpc emulate needs Linux (network namespaces)');
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('crossvpc emulate needs root: it creates network namespaces (run it with sudo)');
  }
  const missing = REQUIRED_TOOLS.filter((t) => !ok('sh', ['-c', `command -v ${t.tool}`]));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
    throw new Error(`crossvpc emulate needs ${missing.map((m) => m.tool).join(', ')}; install them with: apt-get install -y ${pkgs}`);
  }
}

/** A compiled program of this package, whether running from dist/ or (under ts-jest) from the sources. */
export function compiled(distPath: string): string {
  const fromDist = join(__dirname, '../..', distPath.replace(/^dist\//, ''));
  const fromSource = join(__dirname, '../..', distPath);
  const found = [fromDist, fromSource].find((c) => existsSync(c));
  if (!found) throw new Error(`${distPath} not found; run npm run build`);
  return found;
}

