import { createHash } from 'crypto';
import { existsSync, mkdirSync, renameSync } from 'fs';
import { join } from 'path';
import { instancePermissions } from './iam';
import { GatewayMember, Member } from './member';
import { EmulatedPlan, loadMemberImage, memberId, memberRows, primaryMac } from './member-image';
import { PlanMember } from './plan';
import { sleep } from './sys';
import { Topology } from './topology';
import { Wiring } from './wiring';
import { GATEWAY_EXPORTER_UNIT, MemberStatus, TenantTableRow } from '../contract';

/**
 * The gateway members of a run: each one's machine (namespace and ENIs, through Wiring),
 * its identity in the emulated cloud, its units, its election state, and the faults
 * failover and transitions inject.
 */
export class Gateways {
  private readonly list: Member[] = [];
  /** Instances launched per member id: a replacement gets new credentials, as a new instance would. */
  private readonly launches = new Map<string, number>();

  constructor(
    private readonly topo: Topology,
    private readonly wiring: Wiring,
    private readonly runDir: string,
    private readonly progress: (msg: string) => void,
  ) {}

  /** Every member of the plan: its disk written from the user data, its identity, its machine wired. */
  create(plan: EmulatedPlan): void {
    for (const m of plan.plan.members) {
      const image = loadMemberImage(plan, m, this.runDir);
      this.progress(`proxy pair ${m.pair} member ${m.member}: underlay ${image.env.SELF_IP}, ${image.tenants.length} tenant ENI(s)`);
      const member = new Member(image, this.topo.ns(image.id));
      this.list.push(member);
      this.identify(member, plan, m);
      this.wiring.addMember(member, primaryMac(plan, member.env.SELF_ENI), this.slot(member));
    }
  }

  async boot(): Promise<void> {
    for (const m of this.list) await m.boot();
  }

  private slot(m: GatewayMember): number {
    return this.list.findIndex((g) => g.id === m.id) + 1;
  }

  /** Credentials of this instance and its role's statements from the plan, served by the emulated IMDS to this member only. */
  private identify(member: Member, plan: EmulatedPlan, m: PlanMember, fresh = true): void {
    if (fresh) this.launches.set(member.id, (this.launches.get(member.id) ?? 0) + 1);
    const seed = createHash('sha256').update(`${this.topo.prefix}/${member.id}/${this.launches.get(member.id)}`).digest('hex');
    const perms = instancePermissions(plan.plan.json, m.logicalId, plan.standIns.resolve);
    this.wiring.setIdentity(this.slot(member), {
      member: member.id,
      accessKeyId: `ASIA${seed.slice(0, 16).toUpperCase()}`,
      secretAccessKey: `emulated-secret-${seed.slice(16, 40)}`,
      token: `emulated-session-token-${seed.slice(40, 64)}`,
      role: perms.role || 'no-role',
      statements: perms.statements,
    });
  }

  /** A new plan's policies for the running members (their credentials stay). */
  updateIdentities(plan: EmulatedPlan, except: readonly string[] = []): void {
    for (const m of plan.plan.members) {
      const member = this.list.find((g) => g.id === memberId(m));
      if (member && !except.includes(member.id)) this.identify(member, plan, m, false);
    }
  }

  /** The rows Terraform will attach to a running member under a new plan (its half of the new document). */
  nextRows(plan: EmulatedPlan, m: GatewayMember): TenantTableRow[] {
    return memberRows(plan, this.own(m));
  }

  /**
   * Hot-plug (and with `detach`, unplug) NAT ENIs of running members so that each carries
   * `rows` of it: Terraform's aws_network_interface_attachment create/destroy.
   */
  syncEnis(plan: EmulatedPlan, m: GatewayMember, rows: readonly TenantTableRow[], opts: { detach?: boolean } = {}): { attached: string[]; detached: string[] } {
    const member = this.own(m);
    member.setTenants(rows);
    return this.wiring.syncEnis(member, primaryMac(plan, member.env.SELF_ENI), opts);
  }

  /**
   * Terraform replaces the instance: the old one is terminated (its namespace, processes and
   * disk go; the disk is kept aside for its logs), a new one with the same tags boots from the
   * new plan's user data on a fresh disk, with new credentials, and its NAT ENIs are attached.
   */
  async replace(m: GatewayMember, plan: EmulatedPlan): Promise<void> {
    const old = this.own(m);
    const pm = plan.plan.members.find((x) => memberId(x) === old.id);
    if (!pm) throw new Error(`plan has no instance for ${old.id}`);
    old.units.halt();
    this.wiring.removeMember(old);
    let n = 1;
    while (existsSync(`${old.root}.replaced-${n}`)) n++;
    renameSync(old.root, `${old.root}.replaced-${n}`);
    const image = loadMemberImage(plan, pm, this.runDir);
    const member = new Member(image, old.ns);
    this.list[this.list.indexOf(old)] = member;
    this.identify(member, plan, pm);
    this.wiring.addMember(member, primaryMac(plan, member.env.SELF_ENI), this.slot(member));
    this.progress(`${member.id} replaced: the old instance is gone (disk kept in ${old.root}.replaced-${n}), the new one boots from the new user data with ${image.tenants.length} tenant ENI(s)`);
    await member.boot();
  }

  all(pair?: number): GatewayMember[] {
    return this.list.filter((m) => pair === undefined || m.pair === pair);
  }

  find(pair: number, name: string): GatewayMember {
    const m = this.list.find((g) => g.pair === pair && g.member === name);
    if (!m) throw new Error(`no member ${name} in pair ${pair}`);
    return m;
  }

  private own(m: GatewayMember): Member {
    const run = this.list.find((g) => g.id === m.id);
    if (!run) throw new Error(`${m.id} is not a member of this emulation`);
    return run;
  }

  /** Whether the member's user data runs node_exporter (the plan has the gateway metrics on). */
  servesMetrics(m: GatewayMember): boolean {
    return this.own(m).image.units.some((u) => u.name === GATEWAY_EXPORTER_UNIT);
  }

  vrrpState(m: GatewayMember): string {
    return this.own(m).vrrpState();
  }

  /** The member's reconciler status (STATE_DIR/status); undefined before its first attempt. */
  status(m: GatewayMember): MemberStatus | undefined {
    return this.own(m).status();
  }

  master(pair: number): GatewayMember | undefined {
    return this.all(pair).find((m) => this.vrrpState(m) === 'MASTER');
  }

  /** The master whose processes are alive (a killed member's state file still says MASTER). */
  liveMaster(pair: number): GatewayMember | undefined {
    return this.all(pair).find((m) => this.vrrpState(m) === 'MASTER' && this.own(m).units.anyAlive() && this.isRunning(m));
  }

  isRunning(m: GatewayMember): boolean {
    return this.topo.pids(m.ns).length > 0;
  }

  async waitForMaster(timeoutMs: number): Promise<void> {
    const pairs = [...new Set(this.list.map((m) => m.pair))];
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (pairs.every((p) => this.master(p))) {
        this.progress(`elected: ${pairs.map((p) => `pair ${p} master ${this.master(p)!.member}`).join(', ')} after ${Date.now() - t0} ms`);
        return;
      }
      await sleep(100);
    }
    throw new Error(`no VRRP master within ${timeoutMs} ms; states: ${this.list.map((m) => `${m.id}=${m.vrrpState()}`).join(' ')} (logs in ${this.runDir})`);
  }

  unit(m: GatewayMember, name: string): { pid?: number; restarts: number } {
    const units = this.own(m).units;
    return { pid: units.mainPid(name), restarts: units.restartCount(name) };
  }

  /** A shell command on the member (see Member.run). */
  run(m: GatewayMember, cmd: string[], timeoutMs?: number): ReturnType<Member['run']> {
    return this.own(m).run(cmd, timeoutMs);
  }

  /** `systemctl stop` / `systemctl start` of one unit of a member. */
  stopUnit(m: GatewayMember, name: string): Promise<void> {
    return this.own(m).units.stopUnit(name);
  }

  startUnit(m: GatewayMember, name: string): void {
    this.own(m).units.startUnit(name);
  }

  kill(m: GatewayMember): void {
    const member = this.own(m); // never a namespace the caller made up
    member.units.halt();
    this.topo.killAll(member.ns, 'SIGKILL');
    this.wiring.linksDown(member.ns);
  }

  async stop(m: GatewayMember): Promise<void> {
    await this.own(m).units.stop();
  }

  /** A reboot: namespace and /run go, /etc and /var/lib stay; the ENIs are attached again. */
  async reboot(m: GatewayMember, plan: EmulatedPlan): Promise<void> {
    const member = this.own(m);
    member.units.halt();
    this.wiring.removeMember(member);
    member.setTenants(memberRows(plan, member));
    // /run is a tmpfs: the member sees an empty one; the old one is set aside for its logs.
    let n = 1;
    while (existsSync(join(member.root, `run/crossvpc.before-reboot-${n}`))) n++;
    renameSync(join(member.root, 'run/crossvpc'), join(member.root, `run/crossvpc.before-reboot-${n}`));
    mkdirSync(join(member.root, 'run/crossvpc'), { recursive: true, mode: 0o755 });
    this.wiring.addMember(member, primaryMac(plan, member.env.SELF_ENI), this.slot(member));
    await member.boot();
  }

  /** No unit restarts from now on: the run is being torn down. */
  haltAll(): void {
    for (const m of this.list) m.units.halt();
  }
}
