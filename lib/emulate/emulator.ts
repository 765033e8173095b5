import { ChildProcess, execFileSync } from 'child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { evaluate, parseCloudConfig, Plan, PlanMember, readPlan, cidrhost } from './plan';
import { buildStandIns, StandIns } from './standins';
import { checkHost, compiled, sleep, sleepSync, spawnLogged } from './sys';
import { Topology } from './topology';
import { AttackRunner, counter } from './attacks';
import { EC2_ADDR, IMDS_ADDR } from './fake-cloud';
import { AGENT_CONFIG_KEY, AgentConfig, AgentTenant, CONF_DIR, GATEWAY_NFT_TABLE, GatewayEnvKey, parseGatewayEnv, parseTenantTable, RUN_DIR, tenantDev, TenantTableRow } from '../contract';

/** The unassigned state of a floating IP in an emulated VPC router (RFC 7042 documentation MAC). */
const UNASSIGNED_MAC = '00:00:5e:00:53:00';

export interface EmulateOptions {
  /** Directory holding cdk.tf.json. */
  readonly stackDir: string;
  /** Emulated cluster nodes. @default 2 */
  readonly nodes?: number;
  /** Where run files go. @default a new directory under the OS temp dir */
  readonly runDir?: string;
  /** Progress output. @default console.log */
  readonly log?: (line: string) => void;
  /**
   * Tenants that get a Redis server and pods. The others still get their VPC fabric and
   * ENIs, so the gateway carries their full configuration (benchmarks with many tenants).
   * @default every tenant
   */
  readonly activeTenants?: string[];
}

export interface MemberRun {
  readonly id: string; // g0a
  readonly pair: number;
  readonly member: string;
  readonly ns: string;
  readonly root: string;
  env: Record<GatewayEnvKey, string>;
  tenants: TenantTableRow[];
  units: Array<{ name: string; exec: string[]; oneshot: boolean }>;
  procs: ChildProcess[];
}

export interface Pod {
  readonly name: string;
  readonly node: number;
  readonly ns: string;
  readonly ip: string;
  readonly tenant?: string;
}

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

export interface MatrixResult {
  readonly tenants: string[];
  /** pod name -> tenants whose Redis received the pod's writes. */
  readonly reached: Record<string, string[]>;
  readonly checks: Check[];
  readonly ok: boolean;
}

const ROOT_DIRS = [CONF_DIR, RUN_DIR];
// Per-process mount namespace: the member's own /etc/crossvpc and /run/crossvpc, so
// the scripts run byte for byte at the paths the user data gives them.
const MOUNT_WRAPPER = 'R=$1; shift; mount --bind "$R/etc/crossvpc" /etc/crossvpc && mount --bind "$R/run/crossvpc" /run/crossvpc && exec "$@"';

const slash24 = (ip: string) => `${ip.split('.').slice(0, 3).join('.')}.0/24`;

export class Emulation {
  readonly topo = new Topology();
  readonly runDir: string;
  readonly log: (line: string) => void;
  plan!: Plan;
  standIns!: StandIns;
  agentConfig!: AgentConfig;
  agentConfigText!: string;
  members: MemberRun[] = [];
  pods: Pod[] = [];
  nodeIps: string[] = [];
  readonly probes = new Map<string, string>(); // tenant -> service address
  readonly tenantNs = new Map<string, { fab: string; svc: string }>();
  podReadyMs: Record<string, number> = {};
  private agents: ChildProcess[] = [];
  private step = 0;

  constructor(private readonly opts: EmulateOptions) {
    this.runDir = opts.runDir ?? join(tmpdir(), `crossvpc-emulate-${this.topo.prefix}`);
    this.log = opts.log ?? ((l) => console.log(l));
  }

  progress(msg: string): void {
    this.step += 1;
    this.log(`[emulate ${this.topo.prefix}] step ${this.step}: ${msg}`);
  }

  /** Build the whole plan in namespaces: fabrics, tenants with Redis, gateways, nodes, agents, pods. */
  async start(): Promise<void> {
    checkHost();
    mkdirSync(this.runDir, { recursive: true, mode: 0o755 });
    chmodSync(this.runDir, 0o755);
    const file = join(this.opts.stackDir, 'cdk.tf.json');
    this.progress(`reading ${file}`);
    this.loadPlan(readPlan(file));
    this.progress(`function VPC fabric ${this.standIns.functionCidr}`);
    this.buildFabric();
    this.progress(`emulated cloud API: IMDSv2 on ${IMDS_ADDR}, EC2 AssignPrivateIpAddresses on ${EC2_ADDR} (moves floating IPs in the emulated VPC routers)`);
    this.buildCloud();
    for (const t of this.agentConfig.tenants) this.buildTenant(t);
    for (const m of this.plan.members) this.buildMember(m);
    this.progress(`skipping the package install step (user data packages: ${parseCloudConfig(this.evaluated(this.plan.members[0])).packages.join(', ')}); they are installed on this host`);
    this.progress('skipping runcmd\'s systemctl calls: starting the units it enables, in its order, from their ExecStart lines');
    for (const m of this.members) this.startUnits(m);
    await this.waitForMaster();
    this.buildNodes(this.opts.nodes ?? 2);
    await this.startAgents();
    await this.addPods();
  }

  private evaluated(m: PlanMember): string {
    return evaluate(m.userData, this.standIns.resolve);
  }

  private loadPlan(plan: Plan): void {
    this.plan = plan;
    // The tenant table (with stand-in-free literal CIDRs) tells the stand-ins where tenants live.
    const rawTenants = JSON.parse(plan.agentConfigRaw.replace(/\$\{[^}]*\}/g, 'X')) as AgentConfig;
    const cidrs = Object.fromEntries(rawTenants.tenants.map((t) => [t.name, t.cidrs]));
    this.standIns = buildStandIns(plan, cidrs);
    this.agentConfigText = evaluate(plan.agentConfigRaw, this.standIns.resolve);
    this.agentConfig = JSON.parse(this.agentConfigText);
  }


  private buildCloud(): void {
    const cloud = this.topo.addNs('cloud');
    this.topo.bridge(cloud, 'br0', 1500);
    this.topo.exec(cloud, 'ip', ['addr', 'add', `${IMDS_ADDR}/16`, 'dev', 'br0']);
    this.topo.exec(cloud, 'ip', ['addr', 'add', `${EC2_ADDR}/16`, 'dev', 'br0']);
    writeFileSync(this.enisFile, '{}');
    const script = compiled('dist/lib/emulate/fake-cloud.js');
    spawnLogged('ip', ['netns', 'exec', cloud, process.execPath, script, this.enisFile, this.cloudLog], join(this.runDir, 'cloud.out'));
  }

  get enisFile(): string {
    return join(this.runDir, 'cloud-enis.json');
  }

  get cloudLog(): string {
    return join(this.runDir, 'cloud-api.log');
  }

  /** The cloud's API calls so far (what the gateways asked, signed or not). */
  cloudCalls(): Array<{ at: number; action: string; eni: string; ip: string; result: string }> {
    if (!existsSync(this.cloudLog)) return [];
    return readFileSync(this.cloudLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /** Tell the emulated cloud which ENI lives where, so AssignPrivateIpAddresses can move IPs onto it. */
  private registerEnis(run: MemberRun, primaryMac: string): void {
    const enis = JSON.parse(readFileSync(this.enisFile, 'utf8'));
    enis[run.env.SELF_ENI] = { mac: primaryMac, routerNs: this.topo.ns('fab'), routerDev: 'br0' };
    for (const t of run.tenants) enis[t.eniId] = { mac: t.eniMac, routerNs: this.tenantNs.get(t.name)!.fab, routerDev: 'br0' };
    writeFileSync(this.enisFile, JSON.stringify(enis, null, 2));
  }

  /** Floating IPs start unassigned: only the API can make the fabric deliver them. */
  private unassignFloatingIps(run: MemberRun): void {
    const pin = (ns: string, ip: string) => {
      const cur = this.topo.exec(ns, 'ip', ['neigh', 'show', ip, 'dev', 'br0']);
      if (!cur.includes('PERMANENT')) this.topo.exec(ns, 'ip', ['neigh', 'replace', ip, 'lladdr', UNASSIGNED_MAC, 'dev', 'br0', 'nud', 'permanent']);
    };
    pin(this.topo.ns('fab'), run.env.HAVIP);
    for (const t of run.tenants) pin(this.tenantNs.get(t.name)!.fab, t.natIp);
  }

  private primaryMac(run: MemberRun): string {
    const enis = this.plan.json.resource?.aws_network_interface ?? {};
    const key = Object.keys(enis).find((k) => this.standIns.resolve(`aws_network_interface.${k}.id`) === run.env.SELF_ENI);
    if (!key) throw new Error(`${run.id}: no aws_network_interface has id ${run.env.SELF_ENI}`);
    return this.standIns.resolve(`aws_network_interface.${key}.mac_address`);
  }

  private buildFabric(): void {
    if (this.topo.namespaces.includes(this.topo.ns('fab'))) return;
    const fab = this.topo.addNs('fab');
    this.topo.bridge(fab, 'br0', 9001);
  }

  private routerOn(ns: string, subnet: string): void {
    const addr = `${cidrhost(subnet, 1)}/${subnet.split('/')[1]}`;
    const have = this.topo.exec(ns, 'ip', ['-o', 'addr', 'show', 'dev', 'br0']);
    if (!have.includes(` ${addr} `)) this.topo.exec(ns, 'ip', ['addr', 'add', addr, 'dev', 'br0']);
  }

  isActive(tenant: string): boolean {
    return !this.opts.activeTenants || this.opts.activeTenants.includes(tenant);
  }

  private buildTenant(t: AgentTenant): void {
    if (this.tenantNs.has(t.name)) return;
    if (!this.isActive(t.name)) {
      const fab = this.topo.addNs(`t-${t.name}`);
      this.topo.bridge(fab, 'br0', 9001);
      this.tenantNs.set(t.name, { fab, svc: '' });
      return;
    }
    this.progress(`tenant ${t.name}: VPC fabric ${t.cidrs.join(', ')} and Redis`);
    const fab = this.topo.addNs(`t-${t.name}`);
    this.topo.bridge(fab, 'br0', 9001);
    const svc = this.topo.addNs(`s-${t.name}`);
    // On an allowed destination: in a stand-in subnet, a service /24, or a /32 the fabric routes to.
    const { ip: probe, net: svcNet, prefix } = this.standIns.probe(t.name);
    this.probes.set(t.name, probe);
    this.topo.link(svc, 'eth0', fab, 'svc', { mtu: 9001 });
    this.topo.enslave(fab, 'svc', 'br0');
    this.routerOn(fab, svcNet);
    if (prefix === 32) this.topo.exec(fab, 'ip', ['route', 'replace', `${probe}/32`, 'dev', 'br0']);
    this.topo.exec(svc, 'ip', ['addr', 'add', `${probe}/${prefix}`, 'dev', 'eth0']);
    this.topo.exec(svc, 'ip', ['route', 'add', 'default', 'via', cidrhost(svcNet, 1), ...(prefix === 32 ? ['dev', 'eth0', 'onlink'] : [])]);
    spawnLogged('ip', ['netns', 'exec', svc, 'redis-server', '--bind', probe, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no', '--logfile', ''], join(this.runDir, `redis-${t.name}.log`));
    for (let i = 0; i < 50 && !this.topo.ok(svc, 'redis-cli', ['-h', probe, 'ping'], 2000); i++) sleepSync(100);
    if (!this.topo.ok(svc, 'redis-cli', ['-h', probe, 'ping'], 2000)) throw new Error(`redis-server of tenant ${t.name} did not start (see ${this.runDir}/redis-${t.name}.log)`);
    this.tenantNs.set(t.name, { fab, svc });
  }

  /** Evaluate a member's user data and write its files into the member's root. */
  private loadMember(m: PlanMember): Omit<MemberRun, 'ns' | 'procs'> {
    const id = `g${m.pair}${m.member}`;
    const cc = parseCloudConfig(this.evaluated(m));
    const root = join(this.runDir, id);
    const files = this.writeMemberFiles(root, cc.writeFiles);
    const file = (name: string) => {
      const text = files.get(`${CONF_DIR}/${name}`);
      if (text === undefined) throw new Error(`${m.logicalId}: user data writes no ${CONF_DIR}/${name}`);
      return text;
    };
    const env = parseGatewayEnv(file('gateway.env'));
    const tenants = parseTenantTable(file('tenants.tsv'));
    const enable = cc.runcmd.find((c) => c[0] === 'systemctl' && c[1] === 'enable');
    if (!enable) throw new Error(`${m.logicalId}: runcmd enables no units`);
    const units = enable.filter((u) => u.endsWith('.service')).map((name) => {
      const text = files.get(`/etc/systemd/system/${name}`);
      if (!text) throw new Error(`${m.logicalId}: unit ${name} is enabled but not written`);
      const exec = /^ExecStart=(.*)$/m.exec(text)?.[1];
      if (!exec) throw new Error(`${m.logicalId}: unit ${name} has no ExecStart`);
      return { name, exec: exec.trim().split(/\s+/), oneshot: /^Type=oneshot$/m.test(text) };
    });
    return { id, pair: m.pair, member: m.member, root, env, tenants, units };
  }

  private buildMember(m: PlanMember): void {
    const loaded = this.loadMember(m);
    this.progress(`proxy pair ${m.pair} member ${m.member}: underlay ${loaded.env.SELF_IP}, ${loaded.tenants.length} tenant ENI(s)`);
    const run: MemberRun = { ...loaded, ns: this.topo.ns(loaded.id), procs: [] };
    this.members.push(run);
    this.wireMember(run);
  }

  /** The member's "machine": namespace, primary ENI on the function fabric, tenant ENIs. */
  private wireMember(run: MemberRun): void {
    const ns = this.topo.addNs(run.id);
    const fab = this.topo.ns('fab');
    const mac = this.primaryMac(run);
    this.topo.link(ns, 'ens5', fab, run.id, { mtu: 9001, macA: mac });
    // The link-local path to the instance metadata service and the (emulated) EC2 endpoint.
    const k = this.members.indexOf(run) + 1;
    this.topo.link(ns, 'imds', this.topo.ns('cloud'), `c-${run.id}`, { mtu: 1500 });
    this.topo.enslave(this.topo.ns('cloud'), `c-${run.id}`, 'br0');
    this.topo.exec(ns, 'ip', ['addr', 'add', `169.254.170.${k}/32`, 'dev', 'imds']);
    for (const a of [IMDS_ADDR, EC2_ADDR]) this.topo.exec(ns, 'ip', ['route', 'add', `${a}/32`, 'dev', 'imds']);
    this.topo.exec(this.topo.ns('cloud'), 'ip', ['route', 'replace', `169.254.170.${k}/32`, 'dev', 'br0']);
    this.topo.enslave(fab, run.id, 'br0');
    this.routerOn(fab, slash24(run.env.SELF_IP));
    this.topo.exec(ns, 'ip', ['addr', 'add', `${run.env.SELF_IP}/24`, 'dev', 'ens5']);
    this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', cidrhost(slash24(run.env.SELF_IP), 1)]);
    run.tenants.forEach((t) => this.attachEni(run, t));
    this.registerEnis(run, mac);
    this.unassignFloatingIps(run);
  }

  /**
   * A reboot: every process of the member dies, its kernel state (namespace) and /run
   * (tmpfs) are gone; /etc survives. Then the units start again in order.
   */
  async reboot(run: MemberRun): Promise<void> {
    this.topo.removeNs(run.ns);
    this.topo.waitGone(this.topo.ns('fab'), run.id);
    for (const t of this.tenantNs.values()) this.topo.waitGone(t.fab, run.id);
    Topology.removeDir(join(run.root, 'run/crossvpc'));
    mkdirSync(join(run.root, 'run/crossvpc'), { recursive: true, mode: 0o755 });
    run.procs = [];
    this.wireMember(run);
    this.startUnits(run);
  }

  /**
   * Apply a new plan to the running emulation, as `terraform apply` plus the instances'
   * configuration refresh would: new tenants get their VPC, Redis and ENIs; every member
   * gets the new files and re-runs its (idempotent) data-plane unit; agents get the new
   * tenant table; pods of the new tenants are announced.
   */
  async apply(stackDir: string): Promise<void> {
    const before = new Set(this.agentConfig.tenants.map((t) => t.name));
    this.progress(`applying ${join(stackDir, 'cdk.tf.json')} to the running emulation`);
    this.loadPlan(readPlan(join(stackDir, 'cdk.tf.json')));
    const added = this.agentConfig.tenants.filter((t) => !before.has(t.name));
    for (const t of added) this.buildTenant(t);
    for (const m of this.plan.members) {
      const run = this.members.find((r) => r.pair === m.pair && r.member === m.member);
      if (!run) throw new Error(`the new plan adds pair ${m.pair}; applying new pairs to a running emulation is not supported`);
      const loaded = this.loadMember(m);
      run.env = loaded.env;
      run.tenants = loaded.tenants;
      run.units = loaded.units;
      run.tenants.forEach((t) => this.attachEni(run, t));
      this.registerEnis(run, this.primaryMac(run));
      this.unassignFloatingIps(run);
      const dataplane = run.units.find((u) => u.oneshot);
      if (dataplane) this.runOneshot(run, dataplane.exec);
    }
    for (let i = 0; i < this.nodeIps.length; i++) writeFileSync(join(this.nodeDir(i), AGENT_CONFIG_KEY), this.agentConfigText);
    const fresh: Pod[] = [];
    for (let n = 0; n < this.nodeIps.length; n++) for (const t of added.filter((x) => this.isActive(x.name))) fresh.push(this.createPod(n, t.name));
    if (fresh.length) await this.announcePods(fresh);
  }

  private writeMemberFiles(root: string, writeFiles: Array<{ path: string; permissions: string; content: string }>): Map<string, string> {
    const files = new Map<string, string>();
    for (const f of writeFiles) {
      files.set(f.path, f.content);
      if (f.path.startsWith('/etc/systemd/system/')) continue;
      if (!f.path.startsWith('/etc/crossvpc/')) throw new Error(`user data writes ${f.path}, outside /etc/crossvpc; the emulator would have to touch the host`);
      const dest = join(root, f.path);
      mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
      writeFileSync(dest, f.content, { mode: parseInt(f.permissions, 8) });
      chmodSync(dest, parseInt(f.permissions, 8));
    }
    mkdirSync(join(root, 'run/crossvpc'), { recursive: true, mode: 0o755 });
    return files;
  }

  /** A NAT ENI: a veth whose tenant end joins the tenant's VPC fabric. The dataplane finds it by MAC. */
  private attachEni(run: MemberRun, row: TenantTableRow): void {
    const { name, eniMac, subnetCidr } = row;
    const dev = `eni${row.vni}`.slice(0, 15);
    if (this.topo.ok(run.ns, 'ip', ['link', 'show', tenantDev(row.vni)]) || this.topo.exec(run.ns, 'ip', ['-o', 'link']).includes(eniMac)) return;
    const t = this.tenantNs.get(name);
    if (!t) throw new Error(`tenant ${name} of ${run.id} is missing from the agent tenant table`);
    const port = `${run.id}`;
    this.topo.link(run.ns, dev, t.fab, port, { macA: eniMac, mtu: 9001 });
    this.topo.exec(run.ns, 'ip', ['link', 'set', dev, 'down']);
    this.topo.enslave(t.fab, port, 'br0');
    this.routerOn(t.fab, subnetCidr);
  }

  wrapped(run: MemberRun, cmd: string[]): string[] {
    return ['ip', 'netns', 'exec', run.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT_WRAPPER, 'crossvpc-unit', run.root, ...cmd];
  }

  /** The only difference from a real instance's environment: the EC2 endpoint is the emulated one (plain HTTP). */
  unitEnv(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', EC2_ENDPOINT: `http://${EC2_ADDR}` };
  }

  runOneshot(run: MemberRun, cmd: string[], timeoutMs = 120000): void {
    const argv = this.wrapped(run, cmd);
    const logFile = join(run.root, 'run/crossvpc', 'units.log');
    try {
      const out = execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: this.unitEnv() });
      appendFileSync(logFile, out);
    } catch (e: any) {
      appendFileSync(logFile, `${e.stdout ?? ''}${e.stderr ?? ''}`);
      throw new Error(`${run.id}: ${cmd.join(' ')} failed:\n${(e.stderr ?? e.message).toString().trim()}`);
    }
  }

  startUnits(run: MemberRun, only?: string[]): void {
    for (const ROOT of ROOT_DIRS) this.topo.ensureMountPoint(ROOT);
    for (const u of run.units) {
      if (only && !only.includes(u.name)) continue;
      if (u.oneshot) {
        this.runOneshot(run, u.exec);
      } else {
        run.procs.push(spawnLogged(this.wrapped(run, u.exec)[0], this.wrapped(run, u.exec).slice(1), join(run.root, 'run/crossvpc', `${u.name}.log`), this.unitEnv()));
      }
    }
  }

  vrrpState(run: MemberRun): string {
    try {
      return readFileSync(join(run.root, 'run/crossvpc/vrrp-state'), 'utf8').trim();
    } catch {
      return 'NONE';
    }
  }

  /** The master whose processes are alive (a killed member's state file still says MASTER). */
  liveMaster(pair = 0): MemberRun | undefined {
    return this.members.find((m) => m.pair === pair && this.vrrpState(m) === 'MASTER' && m.procs.some((p) => p.exitCode === null && p.signalCode === null) && this.topo.pids(m.ns).length > 0);
  }

  master(pair = 0): MemberRun | undefined {
    return this.members.find((m) => m.pair === pair && this.vrrpState(m) === 'MASTER');
  }

  async waitForMaster(timeoutMs = 20000): Promise<void> {
    const pairs = [...new Set(this.members.map((m) => m.pair))];
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (pairs.every((p) => this.master(p))) {
        this.progress(`elected: ${pairs.map((p) => `pair ${p} master ${this.master(p)!.member}`).join(', ')} after ${Date.now() - t0} ms`);
        return;
      }
      await sleep(100);
    }
    throw new Error(`no VRRP master within ${timeoutMs} ms; states: ${this.members.map((m) => `${m.id}=${this.vrrpState(m)}`).join(' ')} (logs in ${this.runDir})`);
  }

  private buildNodes(count: number): void {
    const fab = this.topo.ns('fab');
    const subnet = this.standIns.nodeSubnet;
    this.routerOn(fab, subnet);
    this.progress(`${count} cluster nodes in ${subnet}`);
    for (let i = 0; i < count; i++) {
      const ns = this.topo.addNs(`n${i + 1}`);
      const ip = cidrhost(subnet, 10 + i);
      this.nodeIps.push(ip);
      this.topo.link(ns, 'eth0', fab, `n${i + 1}`, { mtu: 9001 });
      this.topo.enslave(fab, `n${i + 1}`, 'br0');
      this.topo.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', cidrhost(subnet, 1)]);
      this.topo.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    }
  }

  nodeDir(i: number): string {
    return join(this.runDir, `n${i + 1}`);
  }

  private async startAgents(): Promise<void> {
    const entry = compiled('dist/agent/main.js');
    for (let i = 0; i < this.nodeIps.length; i++) {
      const dir = this.nodeDir(i);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, AGENT_CONFIG_KEY), this.agentConfigText);
      writeFileSync(join(dir, 'pods.jsonl'), '');
      this.agents.push(spawnLogged('ip', ['netns', 'exec', this.topo.ns(`n${i + 1}`), process.execPath, entry,
        '--config', join(dir, AGENT_CONFIG_KEY), '--node-ip', this.nodeIps[i], '--node-name', `n${i + 1}`,
        '--pods', `file:${join(dir, 'pods.jsonl')}`, '--ready-file', join(dir, 'ready')], join(dir, 'agent.log')));
    }
    const t0 = Date.now();
    while (!this.nodeIps.every((_, i) => existsSync(join(this.nodeDir(i), 'ready')))) {
      if (Date.now() - t0 > 90000) throw new Error(`node agents not ready within 90 s (logs: ${this.runDir}/n*/agent.log)`);
      await sleep(50);
    }
    this.progress(`node agents ready on ${this.nodeIps.length} nodes after ${Date.now() - t0} ms (exact ConfigMap tenant table)`);
  }

  /** A pod namespace wired to its node like a routed CNI: /32 address, gateway 169.254.1.1 by proxy ARP. */
  createPod(node: number, tenant: string | undefined): Pod {
    const k = this.pods.filter((p) => p.node === node).length;
    const name = `n${node + 1}-${tenant ?? 'unlabelled'}${this.pods.some((p) => p.node === node && p.tenant === tenant) ? `-${k}` : ''}`;
    const ns = this.topo.addNs(`p${node + 1}${k}`);
    const nodeNs = this.topo.ns(`n${node + 1}`);
    const fn = this.standIns.functionCidr.split('/')[0].split('.').map(Number);
    const ip = `${fn[0]}.${fn[1]}.${fn[2] + 100 + node}.${10 + k}`;
    const hostIf = `vp${k}`;
    this.topo.link(ns, 'eth0', nodeNs, hostIf, { mtu: 9001 });
    this.topo.exec(nodeNs, 'sysctl', ['-qw', `net.ipv4.conf.${hostIf}.proxy_arp=1`]);
    this.topo.exec(nodeNs, 'ip', ['route', 'add', `${ip}/32`, 'dev', hostIf]);
    this.topo.exec(ns, 'ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    this.topo.exec(ns, 'ip', ['route', 'add', '169.254.1.1', 'dev', 'eth0']);
    this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', '169.254.1.1']);
    const hostMac = /link\/ether ([0-9a-f:]+)/.exec(this.topo.exec(nodeNs, 'ip', ['-o', 'link', 'show', hostIf]))![1];
    this.topo.exec(ns, 'ip', ['neigh', 'replace', '169.254.1.1', 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent']);
    const pod = { name, node, ns, ip, tenant };
    this.pods.push(pod);
    return pod;
  }

  podEvent(pod: Pod, type: 'ADDED' | 'DELETED'): void {
    const labels = pod.tenant ? { [this.agentConfig.podLabelKey]: pod.tenant } : {};
    const ev = { type, object: { metadata: { name: pod.name, namespace: 'functions', uid: `uid-${pod.ns}`, labels }, status: { podIP: pod.ip, phase: 'Running' }, spec: {} } };
    appendFileSync(join(this.nodeDir(pod.node), 'pods.jsonl'), `${JSON.stringify(ev)}\n`);
  }

  redis(pod: Pod, host: string, args: string[], timeoutSec = 2): string {
    return this.topo.exec(pod.ns, 'timeout', [String(timeoutSec), 'redis-cli', '-h', host, '-p', '6379', ...args], { allowFail: true, timeoutMs: (timeoutSec + 2) * 1000 }).trim();
  }

  private async addPods(): Promise<void> {
    const tenants = this.agentConfig.tenants.map((t) => t.name).filter((t) => this.isActive(t));
    const fresh: Pod[] = [];
    for (let n = 0; n < this.nodeIps.length; n++) {
      for (const t of [...tenants, undefined]) fresh.push(this.createPod(n, t));
    }
    await this.announcePods(fresh);
  }

  /** Announce pods to their agents and time each labelled pod from event to first Redis reply. */
  async announcePods(pods: Pod[]): Promise<void> {
    this.progress(`announcing ${pods.length} pods (${pods.map((p) => p.name).join(', ')})`);
    const t0 = Date.now();
    for (const p of pods) this.podEvent(p, 'ADDED');
    const pending = pods.filter((p) => p.tenant);
    while (pending.length && Date.now() - t0 < 10000) {
      for (const p of [...pending]) {
        // Short attempts: a SYN sent before the agent binds the pod is dropped, and a real
        // client would wait a full retransmit for it; a fresh attempt measures the binding.
        if (this.redis(p, this.probes.get(p.tenant!)!, ['ping'], 0.1) === 'PONG') {
          this.podReadyMs[p.name] = Date.now() - t0;
          pending.splice(pending.indexOf(p), 1);
        }
      }
      await sleep(20);
    }
    const times = pods.filter((p) => p.tenant).map((p) => `${p.name} ${this.podReadyMs[p.name] ?? 'never'}${this.podReadyMs[p.name] !== undefined ? ' ms' : ''}`);
    this.progress(`pod event -> first Redis reply: ${times.join(', ')}`);
  }

  /** Every pod against every tenant, crafted tunnel packets, and probes at the gateways. */
  async matrix(): Promise<MatrixResult> {
    const tenants = this.agentConfig.tenants.map((t) => t.name).filter((t) => this.isActive(t));
    const nonce = Date.now().toString(36);
    this.progress(`reachability matrix: ${this.pods.length} pods x ${tenants.length} tenants`);
    const reached: Record<string, string[]> = {};
    const addrs = [...new Set(tenants.map((t) => this.probes.get(t)!))];
    for (const pod of this.pods) {
      for (const a of addrs) this.redis(pod, a, ['set', `crossvpc:${nonce}:${pod.name}:${a}`, pod.name], 2);
    }
    for (const t of tenants) {
      const svc = this.tenantNs.get(t)!.svc;
      const keys = this.topo.exec(svc, 'redis-cli', ['-h', this.probes.get(t)!, '--scan', '--pattern', `crossvpc:${nonce}:*`], { allowFail: true }).split('\n').filter(Boolean);
      for (const pod of this.pods) {
        if (keys.some((k) => k.startsWith(`crossvpc:${nonce}:${pod.name}:`))) (reached[pod.name] ??= []).push(t);
      }
    }
    const checks: Check[] = [];
    for (const pod of this.pods) {
      const got = reached[pod.name] ?? [];
      const want = pod.tenant ? [pod.tenant] : [];
      checks.push({ name: `pod ${pod.name} reaches exactly ${want.length ? want.join(',') : 'no tenant'}`, pass: got.join(',') === want.join(','), detail: `reached: ${got.join(',') || 'none'}` });
    }
    checks.push(...(await new AttackRunner(this).run()));
    checks.push(...this.gatewayProbeChecks());
    const result = { tenants, reached, checks, ok: checks.every((c) => c.pass) };
    this.log(formatMatrix(result, this.pods));
    return result;
  }

  private gatewayProbeChecks(): Check[] {
    const checks: Check[] = [];
    // A pod (which may share the nodes' security group) sends session-sync datagrams to a member.
    const pod = this.pods.find((p) => p.tenant);
    const master = this.liveMaster(this.members[0]?.pair ?? 0);
    if (pod && master) {
      const before = counter(this, master.ns, GATEWAY_NFT_TABLE, 'not_from_peer');
      this.topo.exec(pod.ns, 'bash', ['-c', `for i in 1 2 3; do echo forged >/dev/udp/${master.env.SELF_IP}/3780; done`], { allowFail: true });
      const after = counter(this, master.ns, GATEWAY_NFT_TABLE, 'not_from_peer');
      checks.push({ name: `pod ${pod.name} -> conntrackd sync port of ${master.id} is dropped by the gateway itself`, pass: before >= 0 && after >= before + 3, detail: `not_from_peer counter ${before} -> ${after}` });
    }
    const tcp = (ns: string, ip: string, port: number) => this.topo.ok(ns, 'timeout', ['1', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`], 3000);
    for (const t of this.agentConfig.tenants.filter((x) => this.isActive(x.name))) {
      const svc = this.tenantNs.get(t.name)!.svc;
      for (const run of this.members) {
        const row = run.tenants.find((r) => r.name === t.name);
        if (!row) continue;
        const { natIp, eniIp } = row;
        for (const [ip, port, what] of [[natIp, 22, 'NAT IP ssh'], [natIp, 6379, 'NAT IP unsolicited'], [eniIp, 22, `${run.id} ENI ssh`], [eniIp, 3780, `${run.id} ENI conntrackd port`]] as Array<[string, number, string]>) {
          if (what.startsWith('NAT') && run.member !== 'a') continue;
          const open = tcp(svc, ip, port);
          checks.push({ name: `tenant ${t.name} -> ${what} ${ip}:${port} is refused/dropped`, pass: !open, detail: open ? 'CONNECTED' : 'no connection' });
        }
        if (run.member === 'a') {
          const pinged = this.topo.ok(svc, 'ping', ['-c', '1', '-W', '1', natIp], 3000);
          checks.push({ name: `tenant ${t.name} -> ping NAT IP ${natIp} gets no answer`, pass: !pinged, detail: pinged ? 'ANSWERED' : 'no answer' });
        }
      }
      const pod = this.pods.find((p) => p.tenant === t.name)!;
      const eniIp = this.members[0].tenants.find((r) => r.name === t.name)?.eniIp;
      if (eniIp) {
        const open = tcp(pod.ns, eniIp, 22);
        checks.push({ name: `pod ${pod.name} -> gateway ENI ${eniIp}:22 through its tunnel is dropped`, pass: !open, detail: open ? 'CONNECTED' : 'no connection' });
      }
    }
    return checks;
  }

  /** One long-lived INCR connection from a pod; see incr-client.ts. */
  startIncrClient(pod: Pod, key: string): { statusFile: string; child: ChildProcess } {
    const script = compiled('dist/lib/emulate/incr-client.js');
    const statusFile = join(this.runDir, `incr-${pod.name}-${key.replace(/[^a-z0-9]/gi, '_')}.json`);
    const child = spawnLogged('ip', ['netns', 'exec', pod.ns, process.execPath, script, this.probes.get(pod.tenant!)!, key, statusFile, '3000'], join(this.runDir, `incr-${pod.name}.log`));
    return { statusFile, child };
  }

  stop(): void {
    this.topo.destroy();
  }
}

export function formatMatrix(r: MatrixResult, pods: Pod[]): string {
  const w = Math.max(14, ...pods.map((p) => p.name.length)) + 2;
  const cw = Math.max(8, ...r.tenants.map((t) => t.length + 2));
  const lines = ['', `${'pod \\ tenant'.padEnd(w)}${r.tenants.map((t) => t.padEnd(cw)).join('')}expected`];
  for (const p of pods) {
    const got = r.reached[p.name] ?? [];
    lines.push(`${p.name.padEnd(w)}${r.tenants.map((t) => (got.includes(t) ? 'REACHED' : '-').padEnd(cw)).join('')}${p.tenant ?? 'none'}`);
  }
  lines.push('');
  for (const c of r.checks) lines.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name} (${c.detail})`);
  lines.push('', r.ok ? 'RESULT: every cell as expected' : `RESULT: ${r.checks.filter((c) => !c.pass).length} wrong cell(s)`);
  return lines.join('\n');
}
