import { mkdirSync } from 'fs';
import { join } from 'path';
import { GatewayMember, Member } from './member';
import { EmulatedPlan, loadMemberImage, memberId, primaryMac } from './member-image';
import { sleep } from './sys';
import { Topology } from './topology';
import { Wiring } from './wiring';

/**
 * The gateway members of a run: each one's machine (namespace and ENIs, through Wiring),
 * its units, its election state, and the faults failover injects.
 */
export class Gateways {
  private readonly list: Member[] = [];

  constructor(
    private readonly topo: Topology,
    private readonly wiring: Wiring,
    private readonly runDir: string,
    private readonly progress: (msg: string) => void,
  ) {}

  /** Every member of the plan: its disk written from the user data, its machine wired. */
  create(plan: EmulatedPlan): void {
    for (const m of plan.plan.members) {
      const image = loadMemberImage(plan, m, this.runDir);
      this.progress(`proxy pair ${m.pair} member ${m.member}: underlay ${image.env.SELF_IP}, ${image.tenants.length} tenant ENI(s)`);
      const member = new Member(image, this.topo.ns(image.id));
      this.list.push(member);
      this.wiring.addMember(member, primaryMac(plan, member.env.SELF_ENI), this.list.length);
    }
  }

  async boot(): Promise<void> {
    for (const m of this.list) await m.boot();
  }

  /**
   * A new plan on running members: new files, new ENIs attached, the data-plane oneshot run
   * again. Extension point: members the plan adds or drops are an error today.
   */
  async apply(plan: EmulatedPlan): Promise<void> {
    const kept = new Set(plan.plan.members.map(memberId));
    const dropped = this.list.filter((g) => !kept.has(g.id));
    if (dropped.length) throw new Error(`the new plan drops ${dropped.map((g) => g.id).join(', ')}; removing members from a running emulation is not supported`);
    for (const m of plan.plan.members) {
      const member = this.list.find((g) => g.id === memberId(m));
      if (!member) throw new Error(`the new plan adds pair ${m.pair} member ${m.member}; applying new members to a running emulation is not supported`);
      member.reimage(loadMemberImage(plan, m, this.runDir));
      this.wiring.syncEnis(member, primaryMac(plan, member.env.SELF_ENI));
      await member.rerunOneshots();
    }
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

  vrrpState(m: GatewayMember): string {
    return this.own(m).vrrpState();
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

  kill(m: GatewayMember): void {
    const member = this.own(m); // never a namespace the caller made up
    member.units.halt();
    this.topo.killAll(member.ns, 'SIGKILL');
    this.wiring.linksDown(member.ns);
  }

  async stop(m: GatewayMember): Promise<void> {
    await this.own(m).units.stop();
  }

  async reboot(m: GatewayMember, plan: EmulatedPlan): Promise<void> {
    const member = this.own(m);
    member.units.halt();
    this.wiring.removeMember(member);
    Topology.removeDir(join(member.root, 'run/crossvpc'));
    mkdirSync(join(member.root, 'run/crossvpc'), { recursive: true, mode: 0o755 });
    this.wiring.addMember(member, primaryMac(plan, member.env.SELF_ENI), this.list.indexOf(member) + 1);
    await member.boot();
  }

  /** No unit restarts from now on: the run is being torn down. */
  haltAll(): void {
    for (const m of this.list) m.units.halt();
  }
}
