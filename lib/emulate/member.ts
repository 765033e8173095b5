import { existsSync, mkdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { EC2_ADDR } from './fake-cloud';
import { MemberImage } from './member-image';
import { UnitSupervisor } from './units';
import { CONF_DIR, GatewayEnvKey, RUN_DIR, TenantTableRow } from '../contract';

// Per-process mount namespace: the member's own /etc/crossvpc and /run/crossvpc, so
// the scripts run byte for byte at the paths the user data gives them.
const MOUNT_WRAPPER = 'R=$1; shift; mount --bind "$R/etc/crossvpc" /etc/crossvpc && mount --bind "$R/run/crossvpc" /run/crossvpc && exec "$@"';

/** What failover, checks and benchmarks may read of a gateway member. */
export interface GatewayMember {
  readonly id: string;
  readonly pair: number;
  readonly member: string;
  /** Its network namespace (the "machine"). */
  readonly ns: string;
  /** Its disk: /etc/crossvpc and /run/crossvpc under this directory. */
  readonly root: string;
  readonly env: Readonly<Record<GatewayEnvKey, string>>;
  readonly tenants: readonly TenantTableRow[];
}

/**
 * One gateway instance: the image cloud-init left on its disk and its units, run inside
 * its namespace. apply() swaps the image, as a configuration refresh on the instance would.
 */
export class Member implements GatewayMember {
  readonly id: string;
  readonly pair: number;
  readonly member: string;
  readonly root: string;
  readonly units: UnitSupervisor;

  constructor(private current: MemberImage, readonly ns: string) {
    this.id = current.id;
    this.pair = current.pair;
    this.member = current.member;
    this.root = current.root;
    this.units = new UnitSupervisor({ id: this.id, argv: (cmd) => this.argv(cmd), env: unitEnv(), logDir: join(this.root, 'run/crossvpc') });
  }

  get image(): MemberImage {
    return this.current;
  }

  get env(): Readonly<Record<GatewayEnvKey, string>> {
    return this.current.env;
  }

  get tenants(): readonly TenantTableRow[] {
    return this.current.tenants;
  }

  /** A new image for the same member (same id and disk): its files are already written. */
  reimage(next: MemberImage): void {
    if (next.id !== this.id) throw new Error(`cannot reimage ${this.id} with ${next.id}`);
    this.current = next;
  }

  /** Start the enabled units in runcmd's order. */
  async boot(): Promise<void> {
    // Empty mount points for the bind mounts; they stay, as other runs on this host may use them.
    for (const dir of [CONF_DIR, RUN_DIR]) if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    await this.units.start(this.current.units);
  }

  /** Re-run the (idempotent) oneshot data-plane unit after new files were written. */
  async rerunOneshots(): Promise<void> {
    for (const u of this.current.units.filter((x) => x.oneshot)) await this.units.runOneshot(u);
  }

  vrrpState(): string {
    try {
      return readFileSync(join(this.root, 'run/crossvpc/vrrp-state'), 'utf8').trim();
    } catch {
      return 'NONE';
    }
  }

  private argv(cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT_WRAPPER, 'crossvpc-unit', this.root, ...cmd];
  }
}

/** The only difference from a real instance's environment: the EC2 endpoint is the emulated one (plain HTTP). */
function unitEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', EC2_ENDPOINT: `http://${EC2_ADDR}` };
}
