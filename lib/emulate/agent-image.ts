import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'fs';
import { dirname, join } from 'path';

/**
 * The node agent's OCI image, built on this host without any image registry: a Debian root
 * file system from mmdebstrap (nodejs, iproute2, nftables, conntrack from the host's apt
 * sources), plus /app laid out as agent/Dockerfile.package lays it out (dist/agent,
 * dist/lib/contract, node_modules from `npm ci` of agent/runtime) and its /usr/local/bin/crossvpc,
 * imported with `podman import`.
 */

/**
 * Debian packages of the image: the agent's runtime and the tools it runs. netbase is only
 * recommended by nftables, but without its /etc/protocols nft cannot resolve `ip protocol gre`
 * and every table apply fails ("Could not resolve protocol name"): found by running the agent here.
 */
export const AGENT_IMAGE_PACKAGES = ['nodejs', 'iproute2', 'nftables', 'conntrack', 'netbase'];
/** Where the program lives in the image (agent/Dockerfile's WORKDIR). */
export const AGENT_APP_DIR = '/app';
/** Mount points the DaemonSet uses, made in the image so a read-only root needs none created. */
const MOUNT_POINTS = ['etc/crossvpc', 'host/proc/sys/net', 'run/crossvpc-emulate'];
/** The image's `crossvpc` command (agent/runtime/crossvpc: `crossvpc doctor --live`), as the Dockerfiles install it. */
const CLI_PATH = 'usr/local/bin/crossvpc';
/** Entries appended to the Debian tarball: only new paths (podman refuses duplicates). */
const APPENDED = ['app', 'etc/crossvpc', 'host', 'run/crossvpc-emulate', CLI_PATH];

/** The package root, whether running from dist/lib/emulate or (ts-jest) lib/emulate. */
const ROOT = existsSync(join(__dirname, '../../package.json')) ? join(__dirname, '../..') : join(__dirname, '../../..');

export interface AgentImageOptions {
  /** Image reference to create, e.g. localhost/crossvpc-agent:cv1a2b. */
  readonly tag: string;
  /** Where the rootfs tarball is cached (reused while suite and packages are the same). */
  readonly cacheDir: string;
  /** Debian suite. @default the host's VERSION_CODENAME */
  readonly suite?: string;
  readonly progress?: (msg: string) => void;
}

export interface AgentImage {
  readonly tag: string;
  readonly id: string;
  readonly suite: string;
  /** mmdebstrap's time; 0 when the cached tarball was used. */
  readonly rootfsMs: number;
  readonly rootfsCached: boolean;
  readonly importMs: number;
  readonly sizeBytes: number;
  /** `node --version` inside the image. */
  readonly nodeVersion: string;
}

function run(cmd: string, args: string[], timeoutMs: number, cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e: any) {
    const stderr = String(e.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr || e.message}`);
  }
}

export function hostSuite(): string {
  const m = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  if (!m) throw new Error('/etc/os-release has no VERSION_CODENAME: pass the Debian suite explicitly');
  return m[1];
}

/** /app of the image in `dir`: the compiled agent and contract, and the runtime packages. */
export function stageApp(dir: string): void {
  const dist = join(ROOT, 'dist');
  for (const part of ['agent/main.js', 'agent/doctor.js', 'lib/contract/index.js']) {
    if (!existsSync(join(dist, part))) throw new Error(`${join(dist, part)} is missing: run npm run build first`);
  }
  const app = join(dir, AGENT_APP_DIR.slice(1));
  cpSync(join(dist, 'agent'), join(app, 'dist/agent'), { recursive: true });
  cpSync(join(dist, 'lib/contract'), join(app, 'dist/lib/contract'), { recursive: true });
  // What agent/Dockerfile.package does: npm ci of the published runtime lock (agent/runtime), so
  // this checks that lock installs; --prefer-offline takes the tarballs from npm's cache when there.
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, 'agent/runtime', f), join(app, f));
  run('npm', ['ci', '--omit=dev', '--omit=peer', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], 300_000, app);
  for (const m of MOUNT_POINTS) mkdirSync(join(dir, m), { recursive: true });
  mkdirSync(join(dir, dirname(CLI_PATH)), { recursive: true });
  copyFileSync(join(ROOT, 'agent/runtime/crossvpc'), join(dir, CLI_PATH));
  chmodSync(join(dir, CLI_PATH), 0o755);
}

/** The Debian rootfs tarball, built once per cache dir, suite and package list. */
export function rootfsTarball(cacheDir: string, suite: string): { file: string; ms: number; cached: boolean } {
  const key = createHash('sha256').update(JSON.stringify([suite, AGENT_IMAGE_PACKAGES])).digest('hex').slice(0, 12);
  const file = join(cacheDir, `agent-rootfs-${suite}-${key}.tar`);
  if (existsSync(file)) return { file, ms: 0, cached: true };
  mkdirSync(cacheDir, { recursive: true });
  const t0 = Date.now();
  const tmp = file.replace(/\.tar$/, `.partial-${process.pid}.tar`);
  try {
    run('mmdebstrap', ['--quiet', '--format=tar', '--variant=essential', `--include=${AGENT_IMAGE_PACKAGES.join(',')}`,
      '--dpkgopt=path-exclude=/usr/share/doc/*', '--dpkgopt=path-exclude=/usr/share/man/*', '--dpkgopt=path-exclude=/usr/share/locale/*',
      suite, tmp], 600_000);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true, recursive: true });
  }
  return { file, ms: Date.now() - t0, cached: false };
}

/** Build and import the image; see the module comment. */
export function buildAgentImage(opts: AgentImageOptions): AgentImage {
  const progress = opts.progress ?? (() => undefined);
  const suite = opts.suite ?? hostSuite();
  const rootfs = rootfsTarball(opts.cacheDir, suite);
  progress(rootfs.cached ? `rootfs: cached ${rootfs.file}` : `rootfs: mmdebstrap ${suite} (${AGENT_IMAGE_PACKAGES.join(', ')}) in ${rootfs.ms} ms`);
  const work = mkdtempSync(join(opts.cacheDir, 'agent-image-'));
  try {
    stageApp(join(work, 'root'));
    const tar = join(work, 'image.tar');
    copyFileSync(rootfs.file, tar);
    // Only paths the Debian tree lacks: podman import refuses duplicate entries.
    run('tar', ['--append', '--owner=0', '--group=0', '--numeric-owner', '-f', tar, '-C', join(work, 'root'), ...APPENDED], 120_000);
    const t0 = Date.now();
    const id = run('podman', ['import', '--quiet',
      '--change', `WORKDIR ${AGENT_APP_DIR}`,
      '--change', 'ENTRYPOINT ["node", "dist/agent/main.js"]',
      '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change', 'EXPOSE 9740',
      '--message', 'crossvpc node agent (mmdebstrap rootfs + dist/agent)',
      tar, opts.tag], 300_000).trim().split('\n').pop()!;
    const importMs = Date.now() - t0;
    let sizeBytes: number;
    let nodeVersion: string;
    try {
      sizeBytes = Number(run('podman', ['image', 'inspect', '--format', '{{.Size}}', opts.tag], 30_000).trim());
      nodeVersion = run('podman', ['run', '--rm', '--runtime', '/usr/sbin/runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
        '--entrypoint', 'node', opts.tag, '--version'], 60_000).trim();
    } catch (e) {
      // An image that cannot run node is no agent image: do not leave it behind.
      removeAgentImage(opts.tag);
      throw e;
    }
    progress(`image ${opts.tag}: imported in ${importMs} ms, ${(sizeBytes / 1e6).toFixed(0)} MB, node ${nodeVersion}`);
    return { tag: opts.tag, id, suite, rootfsMs: rootfs.ms, rootfsCached: rootfs.cached, importMs, sizeBytes, nodeVersion };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Remove an image this run created (never another); without --force, so no container is removed with it. */
export function removeAgentImage(tag: string): void {
  try {
    execFileSync('podman', ['rmi', tag], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    /* already gone */
  }
}

const USAGE = `usage: agent-image.js --tag <image ref> [--cache <dir>] [--suite <debian suite>]
  builds the node agent image with mmdebstrap + podman import (root, no registry); run npm run build first`;

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const tag = get('--tag');
  if (!tag || args.length % 2 !== 0 || args.some((a, i) => i % 2 === 0 && !['--tag', '--cache', '--suite'].includes(a))) {
    process.stderr.write(`agent-image.js: bad command line '${args.join(' ')}'\n${USAGE}\n`);
    process.exit(2);
  }
  const cacheDir = get('--cache') ?? '/var/tmp/crossvpc-agent-image';
  try {
    const t0 = Date.now();
    const img = buildAgentImage({ tag, cacheDir, suite: get('--suite'), progress: (m) => console.log(m) });
    console.log(JSON.stringify({ ...img, totalMs: Date.now() - t0 }));
  } catch (e) {
    process.stderr.write(`agent-image.js: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
