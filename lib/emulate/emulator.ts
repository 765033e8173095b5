import { ChildProcess } from 'child_process';
import { chmodSync, mkdirSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { agentContainerSpec } from './agent-container';
import { applyPlan, ApplyOptions, ApplyReport, TransitionRefused } from './apply';
import { runMatrix, ServiceTarget } from './checks';
import { Cluster, metricsPortOf, Pod, PodReadiness } from './cluster';
import { EC2_ADDR, IMDS_ADDR, SSM_ADDR } from './fake-cloud';
import { diagnosePairs } from './diagnose';
import { egressTenantsOf, EgressTenant, Internet, INTERNET_SERVER } from './egress';
import { connectEipTenants, eipTenantsOf } from './eip-egress';
import { Gateways } from './gateways';
import { IngressTenant, ingressTargetsOf, ingressTenantsOf } from './ingress';
import { GatewayMember } from './member';
import { EmulatedPlan, loadEmulatedPlan, memberUserData } from './member-image';
import { Monitoring } from './monitoring';
import { parseCloudConfig, PlanPeering } from './plan';
import { Check, formatMatrix, MatrixResult } from './report';
import { checkHost, okAsync } from './sys';
import { Topology } from './topology';
import { slash24, startRedis, Wiring } from './wiring';
import { AgentPeeredTenant, AgentTenant, MemberStatus } from '../contract';

export type { ApplyOptions, ApplyReport } from './apply';
export type { Pod, PodReadiness } from './cluster';
export type { GatewayMember } from './member';
export type { Check, MatrixResult } from './report';

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
  /**
   * How the node agents run: 'process' (node on this host, in the node namespace), or
   * 'podman': a container of `agentImage` (see agent-image.ts) with the synthesized
   * DaemonSet's security context, args, env and mounts (agent-container.ts).
   * @default 'process'
   */
  readonly agentRuntime?: 'process' | 'podman';
  /** The local image for agentRuntime 'podman'; never pulled. */
  readonly agentImage?: string;
}

/**
 * One emulation run: a synthesized plan's members, tenants and cluster in network
 * namespaces named after `prefix`. It orchestrates; wiring.ts builds the network,
 * member.ts/units.ts run the gateways, cluster.ts the agents and pods, checks.ts proves.
 */
export class Emulation {
  readonly prefix: string;
  readonly runDir: string;
  private readonly topo = new Topology();
  private readonly wiring: Wiring;
  private readonly cluster: Cluster;
  private readonly log: (line: string) => void;
  private readonly gateways: Gateways;
  /** The emulated internet and the egress tenants' NAT gateway stand-ins (egress.ts). */
  private readonly internet: Internet;
  private current?: EmulatedPlan;
  private step = 0;
  /** The monitoring host's Prometheus (monitoring.ts), when the plan has gateway metrics. */
  private monitoring?: Monitoring;
  /** Each peered tenant's peering link number (Wiring.peer); a number is never reused in a run. */
  private readonly peeringLinks = new Map<string, number>();
  private peeringLinksMade = 0;
  /** The nodes SNAT pod traffic leaving the VPC to their own IP (Wiring.vpcCniSnat). */
  private cniSnat = false;

  constructor(private readonly opts: EmulateOptions) {
    this.prefix = this.topo.prefix;
    this.runDir = opts.runDir ?? join(tmpdir(), `crossvpc-emulate-${this.prefix}`);
    this.log = opts.log ?? ((l) => console.log(l));
    this.wiring = new Wiring(this.topo, this.runDir);
    this.internet = new Internet(this.topo, this.runDir);
    this.gateways = new Gateways(this.topo, this.wiring, this.runDir, (m) => this.progress(m));
    const runtime = opts.agentRuntime ?? 'process';
    if (runtime !== 'process' && runtime !== 'podman') throw new Error(`agentRuntime: got '${String(runtime)}', expected 'process' or 'podman'`);
    if ((runtime === 'podman') !== !!opts.agentImage) throw new Error(`agentImage: ${opts.agentImage ? `'${opts.agentImage}' given without agentRuntime 'podman'` : "agentRuntime 'podman' needs agentImage (a local image, see agent-image.ts)"}`);
    const image = opts.agentImage;
    this.cluster = new Cluster({
      topo: this.topo, wiring: this.wiring, runDir: this.runDir, progress: (m) => this.progress(m),
      functionCidr: () => this.plan.standIns.functionCidr, probeAddress: (t) => this.probeAddress(t),
      metricsPort: () => this.agentMetricsPort(),
      container: image ? () => ({ image, spec: agentContainerSpec(this.plan.plan.json), namePrefix: this.prefix }) : undefined,
    });
  }

  progress(msg: string): void {
    this.step += 1;
    this.log(`[emulate ${this.prefix}] step ${this.step}: ${msg}`);
  }

  private get plan(): EmulatedPlan {
    if (!this.current) throw new Error('the emulation has not started');
    return this.current;
  }

  /** Build the whole plan in namespaces: fabrics, tenants with Redis, gateways, nodes, agents, pods. */
  async start(): Promise<void> {
    checkHost();
    mkdirSync(this.runDir, { recursive: true, mode: 0o755 });
    chmodSync(this.runDir, 0o755);
    const file = join(this.opts.stackDir, 'cdk.tf.json');
    this.progress(`reading ${file}`);
    this.current = loadEmulatedPlan(file);
    this.progress(`function VPC fabric ${this.plan.standIns.functionCidr}`);
    this.wiring.fabric();
    this.progress(`emulated cloud API: IMDSv2 on ${IMDS_ADDR} (credentials per member), EC2 AssignPrivateIpAddresses and AssociateAddress on ${EC2_ADDR} (move floating IPs in the emulated VPC routers, map EIPs in the IGW stand-in), SSM GetParameter on ${SSM_ADDR}; each call allowed only if the member's role policy in the plan allows it`);
    this.wiring.cloud();
    this.addTenants(this.plan.agentConfig.tenants);
    this.addPeeredTenants(this.plan, this.plan.peerings.map((p) => p.tenant));
    this.linkPeerings(this.plan, this.plan.peerings.map((p) => p.tenant));
    this.addInternet(this.plan);
    this.addForwardTargets();
    for (const [pair, doc] of this.plan.documents) {
      const { version } = this.wiring.putParameter(doc.parameter.name, doc.value);
      this.progress(`pair ${pair}: document ${doc.parameter.name} version ${version} in SSM (${Buffer.byteLength(doc.value)} bytes stored, ${doc.parameter.tier} tier)`);
    }
    this.gateways.create(this.plan);
    const nodes = this.opts.nodes ?? 2;
    // Before the boot: Prometheus's first scrapes wait about 5 s for service discovery.
    await this.startMonitoring(nodes);
    this.progress(`skipping the package install step (user data packages: ${parseCloudConfig(memberUserData(this.plan, this.plan.plan.members[0])).packages.join(', ')}); they are installed on this host`);
    this.progress('skipping runcmd\'s systemctl calls: starting the units it enables, in its order, from their ExecStart lines (honouring Restart=)');
    await this.gateways.boot();
    await this.gateways.waitForMaster(20000);
    this.progress(`${nodes} cluster nodes in ${this.plan.standIns.nodeSubnet}`);
    this.wiring.addNodes(nodes, this.plan.standIns.nodeSubnet);
    this.nodesSnat(this.plan);
    await this.cluster.startAgents(this.plan.agentConfigText);
    await this.cluster.addPodsForTenants([...this.activeTenants(), ...this.peeredTenants()].map((t) => t.name), true);
    await this.monitoring?.scraped();
  }

  // ---- Prometheus (monitoring.ts): a monitoring host scrapes members and agents; checks read it back ----

  private agentMetricsPort(): number {
    return metricsPortOf(agentContainerSpec(this.plan.plan.json).args);
  }

  private async startMonitoring(nodes: number): Promise<void> {
    const { functionCidr, nodeSubnet } = this.plan.standIns;
    const podNets = Array.from({ length: nodes }, (_, i) => this.cluster.podNet(i));
    const taken = [nodeSubnet, ...this.members().map((m) => slash24(m.env.SELF_IP)), ...podNets];
    this.monitoring = await Monitoring.start({
      emu: this, wiring: this.wiring, json: this.plan.plan.json, functionCidr, takenSubnets: [...new Set(taken)], agentMetricsPort: this.agentMetricsPort(),
      nodeIps: Array.from({ length: nodes }, (_, i) => Wiring.nodeIpIn(nodeSubnet, i)),
      servesMetrics: (m) => this.gateways.servesMetrics(m), runDir: this.runDir, progress: (m) => this.progress(m),
    });
  }

  /** Hosts on the function fabric serving the port forwards' targets (ingress.ts), by address. */
  private readonly forwardTargets = new Map<string, string>();

  /** The run's Prometheus, when the plan has gateway metrics. */
  prometheus(): Monitoring | undefined {
    return this.monitoring;
  }

  /** Prometheus saw the pair's MASTER move between its members since `sinceMs` (undefined without gateway metrics). */
  vrrpFlipCheck(pair: number, sinceMs: number): Check | undefined {
    return this.monitoring?.vrrpFlipCheck(pair, sinceMs);
  }

  /** VPCs (and Redis, for active tenants) of tenants not wired yet; a new Redis where an edit moved a tenant's probe. */
  private addTenants(tenants: readonly AgentTenant[]): void {
    for (const t of tenants) {
      const have = this.wiring.tenant(t.name);
      const probe = this.isActive(t.name) ? this.plan.standIns.probe(t.name) : undefined;
      if (have && (!probe || have.probe === probe.ip)) continue;
      if (probe) this.progress(`tenant ${t.name}: ${have ? `Redis on its new destination ${probe.ip} (the one on ${have.probe} stays, now off limits)` : `VPC fabric ${t.cidrs.join(', ')} and Redis`}`);
      this.wiring.addTenant(t.name, probe);
    }
  }

  /** The EKS VPC CNI's default SNAT on the nodes, once a plan has peered tenants (they see node addresses). */
  private nodesSnat(plan: EmulatedPlan): void {
    if (this.cniSnat || !plan.peerings.length || !this.wiring.nodeCount()) return;
    const vpcCidr = plan.agentConfig.cluster!.vpcCidr;
    this.progress(`nodes SNAT pod traffic to destinations outside ${vpcCidr} to their own IP, as the EKS VPC CNI does by default (the peered tenants see node addresses)`);
    this.wiring.vpcCniSnat(vpcCidr);
    this.cniSnat = true;
  }

  /**
   * Egress tenants (the plan's `egress` column): their VPC's NAT gateway stand-in toward the
   * emulated internet. A tenant linked before keeps it (its VPC keeps its own NAT gateway).
   */
  private addInternet(plan: EmulatedPlan): void {
    const wired = new Set(this.internet.tenants().map((t) => t.name));
    for (const t of egressTenantsOf(plan).filter((x) => !wired.has(x.name))) {
      const t0 = Date.now();
      const linked = this.internet.connect(t, this.tenantFabric(t.name));
      this.progress(`tenant ${t.name} has internet egress: its VPC routes 0.0.0.0/0 to a NAT gateway stand-in that SNATs ${t.subnets.join(', ')} to the EIP stand-in ${linked.eip}; the emulated internet (${this.internet.ns}) has a server on ${INTERNET_SERVER} that answers with the source it sees (wired in ${Date.now() - t0} ms)`);
    }
    const eipTenants = eipTenantsOf(plan);
    if (!eipTenants.length) return;
    const t0 = Date.now();
    const { tenants, eips } = connectEipTenants(this.topo, this.internet, this.wiring.fabricNs, eipTenants);
    this.wiring.setEips(eips);
    for (const t of tenants) this.progress(`tenant ${t.name} has EIP egress: the gateway SNATs it to ${t.natIps[0]}; the function VPC's IGW stand-in maps the EIP stand-in ${t.eip} to it once the active member associates it (AssociateAddress) (wired in ${Date.now() - t0} ms)`);
  }

  /** Port forwards (the plan's `inbound` column): a Redis host on the function fabric at each target. */
  private addForwardTargets(): void {
    const { targets, notEmulated } = ingressTargetsOf(ingressTenantsOf(this.plan));
    if (notEmulated.length) this.progress(`port forwards not emulated (the targets serve Redis on tcp/6379 only): ${notEmulated.join(', ')}`);
    for (const ip of targets) {
      if (this.forwardTargets.has(ip)) continue;
      const ns = this.wiring.addHost(`fwd${this.forwardTargets.size}`, ip, slash24(ip));
      startRedis(this.topo, ns, ip, join(this.runDir, `redis-forward-${ip}.log`));
      this.forwardTargets.set(ip, ns);
      this.progress(`port forward target ${ip}: a host on the function fabric in ${slash24(ip)} running Redis (CLIENT INFO answers with the source it saw)`);
    }
  }

  /** The plan's tenants with port forwards. */
  ingressTenants(): IngressTenant[] {
    return ingressTenantsOf(this.plan);
  }

  /** The namespace of the host serving a forward target. */
  ingressTargetNs(ip: string): string {
    const ns = this.forwardTargets.get(ip);
    if (!ns) throw new Error(`no forward target host on ${ip} in this run`);
    return ns;
  }

  /**
   * The running plan's egress tenants, with their fabric and EIP stand-in. A tenant whose egress
   * a later plan revoked is not one: its VPC keeps its NAT gateway stand-in, and the egress
   * checks treat it as a tenant without egress (its pods must reach nothing on the internet).
   */
  internetTenants(): EgressTenant[] {
    const current = new Set([...egressTenantsOf(this.plan), ...eipTenantsOf(this.plan)].map((t) => t.name));
    return this.internet.tenants().filter((t) => current.has(t.name));
  }

  /** The emulated internet's namespace, when the plan has egress tenants. */
  internetNs(): string | undefined {
    return this.internet.tenants().length ? this.internet.ns : undefined;
  }

  /**
   * Peered tenants' VPC fabrics with Redis (as NAT tenants get); linkPeerings then joins them to
   * the function fabric by their peering connection with exactly the plan's routes and rules.
   */
  private addPeeredTenants(plan: EmulatedPlan, tenants: readonly string[]): void {
    const byName = new Map((plan.agentConfig.peered ?? []).map((t) => [t.name, t]));
    for (const name of tenants) {
      if (this.wiring.tenant(name)) continue;
      const probe = this.isActive(name) ? plan.standIns.probe(name) : undefined;
      this.progress(`peered tenant ${name}: VPC fabric ${byName.get(name)?.cidrs.join(', ')}${probe ? ' and Redis' : ''}`);
      this.wiring.addTenant(name, probe);
    }
  }

  /** The plan's peering connections of these tenants (their fabrics exist), and the nodes' SNAT once there are nodes. */
  private linkPeerings(plan: EmulatedPlan, tenants: readonly string[]): void {
    for (const p of plan.peerings.filter((x) => tenants.includes(x.tenant))) {
      const k = this.peeringLinks.get(p.tenant) ?? this.peeringLinksMade++;
      const rules = p.ingress.length ? `its security group admits ${p.ingress.map((r) => `${r.cidr} ${r.protocol === '-1' ? 'all' : `${r.protocol}${r.fromPort === undefined ? '' : `:${r.fromPort === r.toPort ? r.fromPort : `${r.fromPort}-${r.toPort}`}`}`}`).join(', ')}` : 'no security-group rules in the plan (left to the user): unfiltered';
      this.progress(`peering ${p.connection} of tenant ${p.tenant}: the function VPC routes ${p.toTenant.join(', ') || 'nothing'} to it, it routes ${p.toFunction.join(', ') || 'nothing'} back; ${rules}`);
      this.wiring.peer(p, k);
      this.peeringLinks.set(p.tenant, k);
    }
    this.nodesSnat(plan);
  }

  /** Destroy these tenants' peering connections, with their routes on both sides and their rules. */
  private unlinkPeerings(tenants: readonly string[]): void {
    for (const t of tenants) {
      const k = this.peeringLinks.get(t);
      if (k === undefined) throw new Error(`tenant ${t} has no peering in this run`);
      this.wiring.unpeer(t, k);
      this.peeringLinks.delete(t);
      this.progress(`peering of tenant ${t} destroyed: its routes on both sides and its security-group rules went with it`);
    }
  }

  /**
   * Apply a new plan to the running emulation as `terraform apply` would (apply.ts): members
   * rollingUpdate does not name are never disrupted (the transition is refused otherwise), new
   * NAT ENIs are hot-plugged and retired ones deleted, peerings are created and destroyed with
   * their routes (also when a tenant switches between the NAT and peering paths), egress tenants'
   * VPCs get their NAT gateway stand-in, the pairs' documents are written to the emulated SSM,
   * and the members' reconcilers take them from there; agents get the new tenant table and new
   * tenants get pods. A peered tenant edited in place, or a NAT ENI attachment Terraform would
   * replace, is refused (TransitionRefused). Resolves once every live member reports the new
   * document version (bounded), with the timings.
   */
  async apply(stackDir: string, opts: ApplyOptions = {}): Promise<ApplyReport> {
    const file = join(stackDir, 'cdk.tf.json');
    this.progress(`applying ${file} to the running emulation`);
    const before = this.plan;
    const next = loadEmulatedPlan(file, before.standIns.placed);
    this.current = next;
    try {
      const report = await applyPlan({
        wiring: this.wiring, gateways: this.gateways, cluster: this.cluster, progress: (m) => this.progress(m),
        isActive: (t) => this.isActive(t), wireTenants: (ts) => this.addTenants(ts),
        wirePeered: (p, ts) => this.addPeeredTenants(p, ts), linkPeerings: (p, ts) => this.linkPeerings(p, ts),
        unlinkPeerings: (ts) => this.unlinkPeerings(ts), wireInternet: (p) => this.addInternet(p),
      }, before, next, opts);
      this.addForwardTargets();
      return report;
    } catch (e) {
      // A refused transition changed nothing: the emulation keeps running plan A.
      if (e instanceof TransitionRefused) this.current = before;
      throw e;
    }
  }

  /**
   * Every pod against every tenant, crafted tunnel packets (unless `attacks: false`, a quick
   * check between steps), and probes at the gateways; with gateway metrics and the attacks,
   * the Prometheus checks (monitoring.ts) too; logs the table.
   */
  async matrix(opts: { attacks?: boolean } = {}): Promise<MatrixResult> {
    const attacks = opts.attacks ?? true;
    // With the attacks (the full matrix), the same run read back through Prometheus.
    const before = attacks ? this.monitoring?.drops() : undefined;
    const result = await runMatrix(this, attacks);
    const checks = attacks && this.monitoring ? [...result.checks, ...(await this.monitoring.checks(before))] : result.checks;
    const out = { ...result, checks, ok: checks.every((c) => c.pass) };
    this.log(formatMatrix(out, this.pods()));
    // A failed matrix explains itself in the log: where each floating IP is, and why.
    if (!out.ok) this.log(diagnosePairs(this));
    return out;
  }

  // ---- reading the run (for checks, attacks, failover, benchmarks) ----

  isActive(tenant: string): boolean {
    return !this.opts.activeTenants || this.opts.activeTenants.includes(tenant);
  }

  /** Peered tenants of the current plan that have a Redis and pods. */
  peeredTenants(): AgentPeeredTenant[] {
    return (this.plan.agentConfig.peered ?? []).filter((t) => this.isActive(t.name));
  }

  /** A peered tenant's peering as the running plan builds it. */
  peering(tenant: string): PlanPeering {
    const p = this.plan.peerings.find((x) => x.tenant === tenant);
    if (!p) throw new Error(`tenant ${tenant} is not peered in the running plan`);
    return p;
  }

  /** The namespace of a tenant's VPC fabric (its router). */
  tenantFabric(tenant: string): string {
    const vpc = this.wiring.tenant(tenant);
    if (!vpc) throw new Error(`tenant ${tenant} has no VPC fabric in this run`);
    return vpc.fab;
  }

  /** NAT tenants of the current plan that have a Redis and pods. */
  activeTenants(): AgentTenant[] {
    return this.plan.agentConfig.tenants.filter((t) => this.isActive(t.name));
  }

  /** A tenant's Redis: its namespace and address; undefined for inactive tenants. */
  tenantService(tenant: string): { ns: string; address: string } | undefined {
    const vpc = this.wiring.tenant(tenant);
    return vpc?.svc && vpc.probe ? { ns: vpc.svc, address: vpc.probe } : undefined;
  }

  /**
   * Every Redis of the run, labelled for the matrix: current tenants by name, tenants the
   * plan no longer has as `<name> (retired)`, services on destinations an edit took away as
   * `<name>@<address> (former)`. Only a current tenant's own pods may reach its current service.
   */
  serviceTargets(): ServiceTarget[] {
    const current = new Set([...this.activeTenants(), ...this.peeredTenants()].map((t) => t.name));
    const out: ServiceTarget[] = [];
    for (const name of this.wiring.tenantNames()) {
      const vpc = this.wiring.tenant(name)!;
      if (vpc.svc && vpc.probe) out.push({ label: current.has(name) ? name : `${name} (retired)`, tenant: current.has(name) ? name : undefined, ns: vpc.svc, address: vpc.probe });
      for (const f of vpc.former) out.push({ label: `${name}@${f.probe} (former)`, ns: f.svc, address: f.probe });
    }
    return out;
  }

  /** Tenants of the running plan (active or not). */
  tenants(): readonly AgentTenant[] {
    return this.plan.agentConfig.tenants;
  }

  /** A member's reconciler status; undefined before its first attempt. */
  memberStatus(m: GatewayMember): MemberStatus | undefined {
    return this.gateways.status(m);
  }

  /** The value and version the emulated SSM serves for a parameter. */
  ssmParameter(name: string): { value: string; version: number } | undefined {
    return this.wiring.parameter(name);
  }

  /** Each pair's document parameter name in the running plan. */
  documentName(pair = 0): string | undefined {
    return this.plan.documents.get(pair)?.parameter.name;
  }

  probeAddress(tenant: string): string {
    const svc = this.tenantService(tenant);
    if (!svc) throw new Error(`tenant ${tenant} has no service in this emulation`);
    return svc.address;
  }

  /** Gateway members, of one pair or all. */
  members(pair?: number): GatewayMember[] {
    return this.gateways.all(pair);
  }

  member(pair: number, name: string): GatewayMember {
    return this.gateways.find(pair, name);
  }

  vrrpState(m: GatewayMember): string {
    return this.gateways.vrrpState(m);
  }

  master(pair = 0): GatewayMember | undefined {
    return this.gateways.master(pair);
  }

  /** The master whose processes are alive (a killed member's state file still says MASTER). */
  liveMaster(pair = 0): GatewayMember | undefined {
    return this.gateways.liveMaster(pair);
  }

  /** Whether a member's machine has any process left. */
  isRunning(m: GatewayMember): boolean {
    return this.gateways.isRunning(m);
  }

  /** Main PID of a member's running unit, and how often the supervisor restarted it lately. */
  unit(m: GatewayMember, name: string): { pid?: number; restarts: number } {
    return this.gateways.unit(m, name);
  }

  pods(): readonly Pod[] {
    return this.cluster.pods();
  }

  podsOn(node: number): Pod[] {
    return this.pods().filter((p) => p.node === node);
  }

  podReadyMs(): Record<string, number> {
    return this.cluster.podReadyMs();
  }

  podReadiness(): Record<string, PodReadiness> {
    return this.cluster.podReadiness();
  }

  nodeNs(i: number): string {
    return this.wiring.nodeNs(i);
  }

  nodeIp(i: number): string {
    return this.wiring.nodeIp(i);
  }

  nodeCount(): number {
    return this.wiring.nodeCount();
  }

  /** The run's agent containers (agentRuntime 'podman'), by name. */
  agentContainers(): string[] {
    return this.cluster.containerNames();
  }

  /** The node agent's /metrics text, fetched inside the node's namespace. */
  agentMetricsText(node: number): string {
    return this.exec(this.wiring.nodeNs(node), 'curl', ['-sf', '-m', '2', `http://${this.wiring.nodeIp(node)}:${this.agentMetricsPort()}/metrics`]);
  }

  agentLogFile(node: number): string {
    return join(this.cluster.nodeDir(node), 'agent.log');
  }

  namespaceCount(): number {
    return this.topo.namespaces.length;
  }

  cloudCalls(): ReturnType<Wiring['cloudCalls']> {
    return this.wiring.cloudCalls();
  }

  /** Run a command in one of this run's namespaces (never anywhere else). */
  exec(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; allowFail?: boolean } = {}): string {
    return this.topo.exec(this.ours(ns), cmd, args, opts);
  }

  ok(ns: string, cmd: string, args: string[], timeoutMs?: number): boolean {
    return this.topo.ok(this.ours(ns), cmd, args, timeoutMs);
  }

  /** ok() without blocking: independent probes run side by side. */
  okAsync(ns: string, cmd: string, args: string[], timeoutMs = 10000): Promise<boolean> {
    return okAsync('ip', ['netns', 'exec', this.ours(ns), cmd, ...args], timeoutMs);
  }

  private ours(ns: string): string {
    if (!this.topo.namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of run ${this.prefix}`);
    return ns;
  }

  redis(pod: Pod, host: string, args: string[], timeoutSec = 2): string {
    return this.cluster.redis(pod, host, args, timeoutSec);
  }

  /** redis() without blocking: probes that run while an apply goes on. */
  redisAsync(pod: Pod, host: string, args: string[], timeoutSec = 2): Promise<string> {
    if (!this.pods().some((p) => p.ns === pod.ns)) throw new Error(`${pod.ns} is not a pod of run ${this.prefix}`);
    return this.cluster.redisAsync(pod, host, args, timeoutSec);
  }

  // ---- acting on the run ----

  createPod(node: number, tenant: string | undefined): Pod {
    return this.cluster.createPod(node, tenant);
  }

  announcePods(pods: readonly Pod[]): Promise<void> {
    return this.cluster.announcePods(pods);
  }

  /** Route every pod's /32 in the function fabric (EKS VPC CNI), or stop doing so. */
  routePodIpsInFabric(routed: boolean): void {
    this.wiring.routePodIps(this.pods(), routed);
  }

  /** One long-lived INCR connection from a pod to its tenant's Redis (or `address`); see incr-client.ts. */
  startIncrClient(pod: Pod, key: string, address?: string): { statusFile: string; child: ChildProcess } {
    return this.cluster.startIncrClient(pod, address ?? this.probeAddress(pod.tenant!), key);
  }

  /** The instance dies: nothing restarts, every process gets SIGKILL, every link goes down. */
  killMember(m: GatewayMember): void {
    this.gateways.kill(m);
  }

  /** A shutdown: the units stop in reverse start order. */
  async stopMember(m: GatewayMember): Promise<void> {
    await this.gateways.stop(m);
  }

  /**
   * A reboot: every process of the member dies, its kernel state (namespace) and /run
   * (tmpfs) are gone; /etc survives. Then the units start again in order.
   */
  async rebootMember(m: GatewayMember): Promise<void> {
    await this.gateways.reboot(m, this.plan);
  }

  /** A command in a member's root shell (its namespace, its /etc, /var/lib and /run), e.g. `crossvpc doctor --live`. */
  onMember(m: GatewayMember, cmd: string[], timeoutMs?: number): { status: number | null; stdout: string; stderr: string } {
    return this.gateways.run(m, cmd, timeoutMs);
  }

  /** `systemctl stop <unit>` on a member (no restart until startUnit). */
  stopUnit(m: GatewayMember, unit: string): Promise<void> {
    return this.gateways.stopUnit(m, unit);
  }

  startUnit(m: GatewayMember, unit: string): void {
    this.gateways.startUnit(m, unit);
  }

  /** PutParameter in the emulated SSM, outside any plan (a new value gets the next version). */
  putParameter(name: string, value: string): { version: number; changed: boolean } {
    return this.wiring.putParameter(name, value);
  }

  /** Cut (or heal) the function-fabric path between two members. */
  partition(a: GatewayMember, b: GatewayMember, cut: boolean): void {
    this.wiring.partition(a, b, cut);
  }

  /** End every process and namespace of the run. Synchronous, so a signal handler can call it. */
  stop(): void {
    this.cluster.stopAgents();
    this.gateways.haltAll();
    this.topo.destroy();
  }
}
