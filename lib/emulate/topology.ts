import { createHash, randomBytes } from 'crypto';
import { existsSync, mkdirSync, rmSync } from 'fs';
import { ok, sh } from './sys';

/**
 * Network namespaces of one emulation run. Every name carries the run prefix, links are
 * created directly inside their namespaces (never in the root namespace), and
 * destroy() ends every process in those namespaces before deleting them.
 */
export class Topology {
  readonly prefix: string;
  readonly namespaces: string[] = [];

  constructor(prefix?: string) {
    this.prefix = prefix ?? `cv${randomBytes(2).toString('hex')}`;
  }

  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  addNs(name: string): string {
    const full = this.ns(name);
    sh('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    this.exec(full, 'ip', ['link', 'set', 'lo', 'up']);
    this.exec(full, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return full;
  }

  exec(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; allowFail?: boolean } = {}): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  ok(ns: string, cmd: string, args: string[], timeoutMs = 10000): boolean {
    return ok('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  /** A veth pair with one end in each namespace. */
  link(nsA: string, ifA: string, nsB: string, ifB: string, opts: { macA?: string; mtu?: number } = {}): void {
    sh('ip', ['link', 'add', 'dev', ifA, 'netns', nsA, ...(opts.macA ? ['address', opts.macA] : []), 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    for (const [ns, dev] of [[nsA, ifA], [nsB, ifB]]) {
      if (opts.mtu) this.exec(ns, 'ip', ['link', 'set', dev, 'mtu', String(opts.mtu)]);
      this.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    }
  }

  bridge(ns: string, name: string, mtu: number): void {
    // A fixed MAC: a bridge that inherits its lowest port's MAC changes it when that port
    // leaves (a member reboots), and the kernel then flushes every neighbour entry on it.
    const h = createHash('sha256').update(ns + name).digest();
    const mac = ['02', 'b0', ...[...h.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
    this.exec(ns, 'ip', ['link', 'add', name, 'address', mac, 'type', 'bridge']);
    this.exec(ns, 'ip', ['link', 'set', name, 'mtu', String(mtu), 'up']);
    this.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    // A VPC router sends no ICMP redirects. A Linux router does (hosts of every subnet share its
    // bridge), and a redirected host ARPs for the next hop itself: a gratuitous or stale answer
    // then beats the cloud API, e.g. a tenant's service replying to the NAT IP at a member that
    // no longer holds it, until its neighbour entry expires.
    this.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0', `net.ipv4.conf.${name}.send_redirects=0`]);
  }

  enslave(ns: string, dev: string, bridge: string): void {
    this.exec(ns, 'ip', ['link', 'set', dev, 'master', bridge]);
  }

  /** Empty mount points the per-member bind mounts need on the host. */
  ensureMountPoint(dir: string): void {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  }

  pids(ns: string): number[] {
    return sh('ip', ['netns', 'pids', ns], { allowFail: true }).split(/\s+/).filter(Boolean).map(Number);
  }

  /** Signal every process in a namespace: all of them were started by this run. */
  killAll(ns: string, signal: NodeJS.Signals): void {
    for (const pid of this.pids(ns)) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  }

  /** End every process in one namespace, then delete it. */
  removeNs(ns: string): void {
    this.killAll(ns, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    sh('ip', ['netns', 'del', ns], { allowFail: true });
    const i = this.namespaces.indexOf(ns);
    if (i >= 0) this.namespaces.splice(i, 1);
  }

  /** Namespace teardown is asynchronous in the kernel: wait until a veth peer is gone. */
  waitGone(ns: string, dev: string, timeoutMs = 5000): void {
    const t0 = Date.now();
    while (this.ok(ns, 'ip', ['link', 'show', dev], 2000)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`${dev} in ${ns} did not disappear within ${timeoutMs} ms`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }

  destroy(): void {
    for (const ns of this.namespaces) this.killAll(ns, 'SIGTERM');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    // A process may fork between the listing and the kill: kill until nothing is left (bounded).
    for (let round = 0; round < 10 && this.namespaces.some((ns) => this.pids(ns).length); round++) {
      for (const ns of this.namespaces) this.killAll(ns, 'SIGKILL');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
    for (const ns of [...this.namespaces].reverse()) sh('ip', ['netns', 'del', ns], { allowFail: true });
    this.namespaces.length = 0;
    // The empty mount points (/etc/crossvpc, /run/crossvpc) stay: removing one would
    // detach it from every other emulation still running on this host.
  }

  static removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}
