import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'fs';
import { join } from 'path';

/**
 * The host mount points every emulation member bind-mounts its own /etc/crossvpc and
 * /run/crossvpc over (lib/emulate/emulator.ts ROOT_DIRS). Topology.destroy() removes them
 * when its run created them and they are empty; since Linux 3.18 removing a mount point
 * lazily DETACHES the mounts on it in every other mount namespace, so an emulation that
 * ends while another is running takes the other's /etc/crossvpc away (seen as
 * `nft: Could not open file "/etc/crossvpc/ruleset.nft"` in a member's dataplane unit).
 *
 * While held, a marker file keeps the directories non-empty, so no run's destroy() can
 * remove them under this benchmark. release() drops the marker and removes a directory
 * only if this process created it and no process has anything mounted on it any more.
 */
const MOUNT_POINTS = ['/etc/crossvpc', '/run/crossvpc'];

export interface MountPointGuard {
  release(): void;
}

function mountedSomewhere(dir: string): boolean {
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return true;
  }
  const seen = new Set<string>();
  for (const pid of pids) {
    try {
      const mntns = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
      if (seen.has(mntns)) continue;
      seen.add(mntns);
      // mountinfo field 5 is the mount point
      if (mntns.split('\n').some((l) => l.split(' ')[4] === dir)) return true;
    } catch {
      /* process gone */
    }
  }
  return false;
}

export function holdMountPoints(): MountPointGuard {
  const created: string[] = [];
  const markers: string[] = [];
  for (const dir of MOUNT_POINTS) {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      created.push(dir);
    }
    const marker = join(dir, `.bench-dataplane-${process.pid}`);
    writeFileSync(marker, 'crossvpc bench:dataplane keeps this mount point while it runs\n');
    markers.push(marker);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      for (const m of markers) {
        try {
          unlinkSync(m);
        } catch {
          /* gone */
        }
      }
      for (const dir of created) {
        try {
          if (readdirSync(dir).length === 0 && !mountedSomewhere(dir)) rmdirSync(dir);
        } catch {
          /* in use or gone */
        }
      }
    },
  };
}
