/**
 * A gateway member's disk for netns tests that run its real scripts outside an emulation: the
 * rendered /etc/crossvpc files under <dir>/etc, empty <dir>/state and <dir>/run, and scripts run
 * in a namespace with those directories bind-mounted where the scripts expect them (as the
 * emulator's units run them).
 */
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { renderGatewayFiles } from './render-fixtures';
import { CONF_DIR, RUN_DIR, STATE_DIR } from '../lib/contract';

const MOUNT_WRAPPER = `R=$1; shift; mount --bind "$R/etc" ${CONF_DIR} && mount --bind "$R/state" ${STATE_DIR} && mount --bind "$R/run" ${RUN_DIR} && exec "$@"`;

/** A new member root for `spec` (a temp dir named after `prefix`): its files, the underlay's name, and BACKUP (so apply starts no converge). */
export function memberRoot(spec: Parameters<typeof renderGatewayFiles>[0], prefix: string, underlay = 'fn0'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const d of [CONF_DIR, STATE_DIR, RUN_DIR]) mkdirSync(d, { recursive: true }); // mount points
  for (const f of renderGatewayFiles(spec, { conntrackMax: 262144 })) {
    if (!f.path.startsWith(`${CONF_DIR}/`)) continue;
    const p = join(dir, 'etc', f.path.slice(CONF_DIR.length + 1));
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content, { mode: parseInt(f.permissions, 8) });
  }
  for (const d of ['state', 'run']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'run/underlay'), `${underlay}\n`);
  writeFileSync(join(dir, 'run/vrrp-state'), 'BACKUP\n');
  return dir;
}

/** Runs the member's real crossvpc-apply in `ns` on the document in <dir>/state; throws with its stderr. */
export function runApply(ns: string, dir: string, timeoutMs = 60_000): string {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT_WRAPPER, 'x', dir, `${CONF_DIR}/bin/crossvpc-apply`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  } catch (e) {
    throw new Error(`crossvpc-apply failed: ${String((e as { stderr?: unknown }).stderr)}`);
  }
}
