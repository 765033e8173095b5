import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { EC2_ADDR, SSM_ADDR } from './fake-cloud';
import { MemberImage } from './member-image';
import { UnitSupervisor } from './units';
import { CONF_DIR, GatewayEnvKey, MEMBER_STATUS_FILE, MemberStatus, parseMemberStatus, RUN_DIR, STATE_DIR, TenantTableRow } from '../contract';

// Per-process mount namespace: the member's own /etc/crossvpc, /var/lib/crossvpc and
// /run/crossvpc, so the scripts run byte for byte at the paths the user data gives them.
const MOUNT_WRAPPER = `R=$1; shift; mount --bind "$R${CONF_DIR}" ${CONF_DIR} && mount --bind "$R${STATE_DIR}" ${STATE_DIR} && mount --bind "$R${RUN_DIR}" ${RUN_DIR} && exec "$@"`;

/** What failover, checks and benchmarks may read of a gateway member. */
export interface GatewayMember {
  readonly id: string;
  readonly pair: number;
  readonly member: string;
  /** Its network namespace (the "machine"). */
  readonly ns: string;
  /** Its disk: /etc/crossvpc, /var/lib/crossvpc and /run/crossvpc under this directory. */
  readonly root: string;
  readonly env: Readonly<Record<GatewayEnvKey, string>>;
  /** Its rows of the pair's current document: the NAT ENIs attached to it. */
  readonly tenants: readonly TenantTableRow[];
}

/**
 * One gateway instance: the image cloud-init left on its disk and its units, run inside
 * its namespace. Its user data never changes while it lives (a new one means a new
 * instance); its tenants change with the document its reconciler follows.
 */
export class Member implements GatewayMember {
  readonly id: string;
  readonly pair: number;
  readonly member: string;
  readonly root: string;
  readonly units: UnitSupervisor;
  private rows: readonly TenantTableRow[];

  constructor(private readonly current: MemberImage, readonly ns: string) {
    this.id = current.id;
    this.pair = current.pair;
    this.member = current.member;
    this.root = current.root;
    this.rows = current.tenants;
    this.units = new UnitSupervisor({ id: this.id, argv: (cmd) => this.argv(cmd), env: unitEnv(), logDir: join(this.root, 'run/crossvpc') });
  }

  get image(): MemberImage {
    return this.current;
  }

  get env(): Readonly<Record<GatewayEnvKey, string>> {
    return this.current.env;
  }

  get tenants(): readonly TenantTableRow[] {
    return this.rows;
  }

  /** The member's rows of a new document: what Terraform attaches to it. */
  setTenants(rows: readonly TenantTableRow[]): void {
    this.rows = rows;
  }

  /** Start the enabled units in runcmd's order. */
  async boot(): Promise<void> {
    // Empty mount points for the bind mounts; they stay, as other runs on this host may use them.
    for (const dir of [CONF_DIR, STATE_DIR, RUN_DIR]) if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    await this.units.start(this.current.units);
  }

  /** What the reconciler last reported (STATE_DIR/status), or undefined before its first attempt. */
  status(): MemberStatus | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.root, STATE_DIR, MEMBER_STATUS_FILE), 'utf8');
    } catch {
      return undefined;
    }
    return parseMemberStatus(text);
  }

  vrrpState(): string {
    try {
      return readFileSync(join(this.root, 'run/crossvpc/vrrp-state'), 'utf8').trim();
    } catch {
      return 'NONE';
    }
  }

  /** A command as an operator's root shell on the instance runs it: in its namespace, with its own /etc, /var/lib and /run, and the units' environment. */
  run(cmd: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
    const argv = this.argv(cmd);
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: unitEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
  }

  private argv(cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT_WRAPPER, 'crossvpc-unit', this.root, ...cmd];
  }
}

/** The only difference from a real instance's environment: the EC2 and SSM endpoints are the emulated ones (plain HTTP). */
function unitEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', EC2_ENDPOINT: `http://${EC2_ADDR}`, SSM_ENDPOINT: `http://${SSM_ADDR}` };
}
