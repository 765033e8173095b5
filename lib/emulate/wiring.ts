import { existsSync, readFileSync, renameSync, writeFileSync } from 'fs';
import { join } from 'path';
import { CloudIdentity, SsmStore } from './cloud-api';
import { EC2_ADDR, EipInfo, IMDS_ADDR, SSM_ADDR } from './fake-cloud';
import { GatewayMember } from './member';
import { cidrhost, PeeringIngressRule, PlanPeering } from './plan';
import { ProbePlacement } from './standins';
import { compiled, sleepSync, spawnLogged } from './sys';
import { Topology } from './topology';
import { tenantDev, TenantTableRow } from '../contract';

/** AWS VPC MTU: every emulated link and bridge carries it. */
export const VPC_MTU = 9001;
/** The unassigned state of a floating IP in an emulated VPC router (RFC 7042 documentation MAC). */
const UNASSIGNED_MAC = '00:00:5e:00:53:00';
/** A pod's default gateway, answered by proxy ARP on its node's veth (routed CNIs do this). */
const POD_GATEWAY = '169.254.1.1';
/** The cloud APIs' addresses, routed into every member over its imds link. */
const CLOUD_ADDRS = [IMDS_ADDR, EC2_ADDR, SSM_ADDR];
/** A member's own address on its link to the cloud; the emulated IMDS tells members apart by it. */
export const memberLinkAddr = (slot: number) => `169.254.170.${slot}`;

export interface CloudCall { at: number; service?: string; action: string; member?: string; eni?: string; ip?: string; allocation?: string; name?: string; version?: number; result: string }

/** Readers (the fake cloud) never see a half-written file. */
function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** The /24 an address is in (the emulation's subnets on the function fabric are /24s). */
export const slash24 = (ip: string) => `${ip.split('.').slice(0, 3).join('.')}.0/24`;

/** A tenant's VPC: its fabric (bridge + VPC router) and, for active tenants, a Redis service namespace. */
export interface TenantVpc {
  readonly fab: string;
  /** Service namespace, or undefined for tenants that get no Redis (benchmarks with many tenants). */
  readonly svc?: string;
  readonly probe?: string;
  /** Earlier services of the tenant, on destinations an edit took away (they keep running: the old destination must be refused). */
  readonly former: ReadonlyArray<{ readonly svc: string; readonly probe: string }>;
}

/** Where a peered tenant's fabric enforces its security-group rules, and the counter of what they refuse. */
export const PEERING_SG_TABLE = 'crossvpc_sg_peering';
export const PEERING_SG_REFUSED = 'sg_refused';

/** The link-local next hops of peering connection k: host 1 on the function side, 2 on the tenant side. */
const peeringHop = (k: number, host: 1 | 2) => `169.254.250.${4 * k + host}`;

/** The nft match of one security-group rule's protocol and ports (empty for all traffic). */
function ingressMatch(r: PeeringIngressRule): string {
  if (r.protocol === '-1') return '';
  if (r.protocol === 'tcp' || r.protocol === 'udp') return `${r.protocol} dport ${r.fromPort === r.toPort ? r.fromPort : `${r.fromPort}-${r.toPort}`} `;
  if (r.protocol === 'icmp') return 'ip protocol icmp ';
  if (/^\d+$/.test(r.protocol)) return `ip protocol ${r.protocol} `;
  throw new Error(`security-group rule protocol ${r.protocol} is not modelled by the emulator`);
}

/**
 * A pod namespace wired to its node like a routed CNI: /32 address, gateway 169.254.1.1 by
 * proxy ARP. Shared with the benchmark baseline, so both measure the same pod hop.
 */
export function wirePod(topo: Topology, podNs: string, nodeNs: string, hostIf: string, ip: string): void {
  topo.link(podNs, 'eth0', nodeNs, hostIf, { mtu: VPC_MTU });
  topo.exec(nodeNs, 'sysctl', ['-qw', `net.ipv4.conf.${hostIf}.proxy_arp=1`]);
  topo.exec(nodeNs, 'ip', ['route', 'add', `${ip}/32`, 'dev', hostIf]);
  topo.exec(podNs, 'ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
  topo.exec(podNs, 'ip', ['route', 'add', POD_GATEWAY, 'dev', 'eth0']);
  topo.exec(podNs, 'ip', ['route', 'add', 'default', 'via', POD_GATEWAY]);
  const hostMac = /link\/ether ([0-9a-f:]+)/.exec(topo.exec(nodeNs, 'ip', ['-o', 'link', 'show', hostIf]))![1];
  topo.exec(podNs, 'ip', ['neigh', 'replace', POD_GATEWAY, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent']);
}

/** Start a Redis in a namespace and wait until it answers. */
export function startRedis(topo: Topology, ns: string, ip: string, logFile: string): void {
  spawnLogged('ip', ['netns', 'exec', ns, 'redis-server', '--bind', ip, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no', '--logfile', ''], logFile);
  for (let i = 0; i < 50 && !topo.ok(ns, 'redis-cli', ['-h', ip, 'ping'], 2000); i++) sleepSync(100);
  if (!topo.ok(ns, 'redis-cli', ['-h', ip, 'ping'], 2000)) throw new Error(`redis-server on ${ip} in ${ns} did not start (see ${logFile})`);
}

/**
 * The emulated cloud's network: the function VPC fabric, the cloud API namespace, tenant
 * VPCs, members' primary and NAT ENIs, and cluster nodes. Every method is safe to call again
 * for what already exists, so a second plan can be wired into a running emulation.
 */
export class Wiring {
  private readonly tenantVpcs = new Map<string, TenantVpc>();
  private readonly nodeIps: string[] = [];

  constructor(private readonly topo: Topology, private readonly runDir: string) {}

  get fabricNs(): string {
    return this.topo.ns('fab');
  }

  fabric(): void {
    if (this.topo.namespaces.includes(this.fabricNs)) return;
    this.topo.bridge(this.topo.addNs('fab'), 'br0', VPC_MTU);
  }

  /** The emulated IMDS, EC2 and SSM APIs, on link-local addresses every member reaches through its imds link. */
  cloud(): void {
    const cloud = this.topo.addNs('cloud');
    this.topo.bridge(cloud, 'br0', 1500);
    for (const a of CLOUD_ADDRS) this.topo.exec(cloud, 'ip', ['addr', 'add', `${a}/16`, 'dev', 'br0']);
    writeFileSync(this.enisFile, '{}');
    writeFileSync(this.identitiesFile, '{}', { mode: 0o600 });
    writeFileSync(this.ssmFile, '{}');
    writeFileSync(this.eipsFile, '{}');
    const script = compiled('dist/lib/emulate/fake-cloud.js');
    spawnLogged('ip', ['netns', 'exec', cloud, process.execPath, script, this.enisFile, this.identitiesFile, this.ssmFile, this.cloudLog, this.eipsFile], join(this.runDir, 'cloud.out'));
  }

  /** The EIPs the emulated account owns, by allocation id: AssociateAddress maps them in the IGW stand-in. */
  setEips(eips: Record<string, EipInfo>): void {
    writeAtomic(this.eipsFile, JSON.stringify({ ...JSON.parse(readFileSync(this.eipsFile, 'utf8')), ...eips }, null, 2));
  }

  private get eipsFile(): string {
    return join(this.runDir, 'cloud-eips.json');
  }

  private get enisFile(): string {
    return join(this.runDir, 'cloud-enis.json');
  }

  private get identitiesFile(): string {
    return join(this.runDir, 'cloud-identities.json');
  }

  private get ssmFile(): string {
    return join(this.runDir, 'ssm-parameters.json');
  }

  private get cloudLog(): string {
    return join(this.runDir, 'cloud-api.log');
  }

  /** The cloud's API calls so far (what the gateways asked, signed or not). */
  cloudCalls(): CloudCall[] {
    if (!existsSync(this.cloudLog)) return [];
    return readFileSync(this.cloudLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /** The credentials and role the emulated IMDS gives the member at link-local slot `slot`. */
  setIdentity(slot: number, identity: CloudIdentity): void {
    const all = JSON.parse(readFileSync(this.identitiesFile, 'utf8'));
    all[memberLinkAddr(slot)] = identity;
    writeAtomic(this.identitiesFile, JSON.stringify(all, null, 2));
  }

  /** The parameter's value and version as the emulated SSM serves it now. */
  parameter(name: string): { value: string; version: number } | undefined {
    return (JSON.parse(readFileSync(this.ssmFile, 'utf8')) as SsmStore)[name];
  }

  /** PutParameter as Terraform does it: a new value gets the next version; the same value changes nothing. */
  putParameter(name: string, value: string, type = 'String'): { version: number; changed: boolean } {
    const store = JSON.parse(readFileSync(this.ssmFile, 'utf8')) as SsmStore;
    const have = store[name];
    if (have?.value === value) return { version: have.version, changed: false };
    const version = (have?.version ?? 0) + 1;
    store[name] = { value, version, lastModified: Math.floor(Date.now() / 1000), type };
    writeAtomic(this.ssmFile, JSON.stringify(store, null, 2));
    return { version, changed: true };
  }

  /** A VPC router (host 1) for a subnet on a fabric bridge. */
  private routerOn(ns: string, subnet: string): void {
    const addr = `${cidrhost(subnet, 1)}/${subnet.split('/')[1]}`;
    const have = this.topo.exec(ns, 'ip', ['-o', 'addr', 'show', 'dev', 'br0']);
    if (!have.includes(` ${addr} `)) this.topo.exec(ns, 'ip', ['addr', 'add', addr, 'dev', 'br0']);
  }

  tenant(name: string): TenantVpc | undefined {
    return this.tenantVpcs.get(name);
  }

  tenantNames(): string[] {
    return [...this.tenantVpcs.keys()];
  }

  /** A tenant's VPC fabric; with a probe placement, also its service namespace running Redis there. */
  addTenant(name: string, probe?: ProbePlacement): TenantVpc {
    const have = this.tenantVpcs.get(name);
    if (have) return probe ? this.addService(name, probe) : have;
    const fab = this.topo.addNs(`t-${name}`);
    this.topo.bridge(fab, 'br0', VPC_MTU);
    this.tenantVpcs.set(name, { fab, former: [] });
    return probe ? this.addService(name, probe) : this.tenantVpcs.get(name)!;
  }

  /**
   * The tenant's Redis at a probe placement; a new placement (an edit moved the tenant's first
   * destination) starts a second service there and keeps the first as `former`.
   */
  addService(name: string, probe: ProbePlacement): TenantVpc {
    const vpc = this.tenantVpcs.get(name);
    if (!vpc) throw new Error(`tenant ${name} has no VPC fabric in this run`);
    if (vpc.probe === probe.ip) return vpc;
    const k = vpc.former.length + (vpc.svc ? 1 : 0);
    const svc = this.topo.addNs(k ? `s-${name}-${k}` : `s-${name}`);
    const port = k ? `svc${k}` : 'svc';
    // On an allowed destination: in a stand-in subnet, a service /24, or a /32 the fabric routes to.
    const { ip, net, prefix } = probe;
    const { fab } = vpc;
    this.topo.link(svc, 'eth0', fab, port, { mtu: VPC_MTU });
    this.topo.enslave(fab, port, 'br0');
    this.routerOn(fab, net);
    if (prefix === 32) this.topo.exec(fab, 'ip', ['route', 'replace', `${ip}/32`, 'dev', 'br0']);
    this.topo.exec(svc, 'ip', ['addr', 'add', `${ip}/${prefix}`, 'dev', 'eth0']);
    this.topo.exec(svc, 'ip', ['route', 'add', 'default', 'via', cidrhost(net, 1), ...(prefix === 32 ? ['dev', 'eth0', 'onlink'] : [])]);
    startRedis(this.topo, svc, ip, join(this.runDir, `redis-${name}${k ? `-${k}` : ''}.log`));
    const next: TenantVpc = { fab, svc, probe: ip, former: vpc.svc && vpc.probe ? [...vpc.former, { svc: vpc.svc, probe: vpc.probe }] : vpc.former };
    this.tenantVpcs.set(name, next);
    return next;
  }

  /**
   * A VPC peering connection between the function fabric and a tenant's fabric (a veth between
   * the two VPC routers, on link-local next hops): each side routes what the plan's aws_route
   * entries route through the connection, nothing else. The tenant's security-group rules from
   * the plan are enforced where the tenant fabric delivers from the peering (stateful, as a
   * security group: replies to the tenant's own connections pass); a plan without rules leaves
   * the group to the user, so nothing is filtered. `k` (0..) numbers the connection.
   */
  peer(p: PlanPeering, k: number): void {
    const vpc = this.tenantVpcs.get(p.tenant);
    if (!vpc) throw new Error(`peered tenant ${p.tenant} has no VPC fabric in this run`);
    const fab = this.fabricNs;
    const dev = `pcx${k}`;
    if (this.topo.ok(fab, 'ip', ['link', 'show', dev], 2000)) return;
    if (!Number.isInteger(k) || k < 0 || k > 63) throw new Error(`peering link ${k} of tenant ${p.tenant}: a run numbers at most 64 peering links (169.254.250.0/24 in /30s)`);
    const [fnSide, tenantSide] = [peeringHop(k, 1), peeringHop(k, 2)];
    this.topo.link(fab, dev, vpc.fab, 'pcx', { mtu: VPC_MTU });
    this.topo.exec(fab, 'ip', ['addr', 'add', `${fnSide}/30`, 'dev', dev]);
    this.topo.exec(vpc.fab, 'ip', ['addr', 'add', `${tenantSide}/30`, 'dev', 'pcx']);
    for (const cidr of p.toTenant) this.topo.exec(fab, 'ip', ['route', 'replace', cidr, 'via', tenantSide, 'dev', dev]);
    for (const cidr of p.toFunction) this.topo.exec(vpc.fab, 'ip', ['route', 'replace', cidr, 'via', fnSide, 'dev', 'pcx']);
    if (!p.ingress.length) return;
    const admit = p.ingress.map((r) => `    iifname "pcx" ip saddr ${r.cidr} ${ingressMatch(r)}accept`);
    this.topo.exec(vpc.fab, 'nft', ['-f', '-'], {
      input: `table inet ${PEERING_SG_TABLE} {\n  counter ${PEERING_SG_REFUSED} {}\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    iifname "pcx" ct state established,related accept\n${admit.join('\n')}\n    iifname "pcx" counter name ${PEERING_SG_REFUSED} drop\n  }\n}\n`,
    });
  }

  /**
   * `terraform destroy` of peering connection k (peer()): deleting the link takes the routes
   * through it on both sides with it (as AWS does a connection's routes, which turn blackhole and
   * then go with their aws_route), and the tenant's security-group rules for the function side.
   */
  unpeer(tenant: string, k: number): void {
    const vpc = this.tenantVpcs.get(tenant);
    if (!vpc) throw new Error(`peered tenant ${tenant} has no VPC fabric in this run`);
    this.topo.exec(this.fabricNs, 'ip', ['link', 'del', 'dev', `pcx${k}`], { allowFail: true });
    this.topo.exec(vpc.fab, 'nft', ['delete', 'table', 'inet', PEERING_SG_TABLE], { allowFail: true });
    const left = [this.topo.exec(this.fabricNs, 'ip', ['-o', 'route', 'show', 'dev', `pcx${k}`], { allowFail: true }), this.topo.exec(vpc.fab, 'ip', ['-o', 'link', 'show', 'dev', 'pcx'], { allowFail: true })].join('').trim();
    if (left) throw new Error(`peering ${k} of tenant ${tenant} is still wired after its removal: ${left}`);
  }

  /**
   * The EKS VPC CNI's default (AWS_VPC_K8S_CNI_EXTERNALSNAT=false): pod traffic leaving the node
   * for a destination outside the VPC CIDR is SNATed to the node's primary IP, so a peered tenant
   * sees node addresses (the plan's sources are nodeCidrs). Tunnel traffic leaves by the tunnel
   * devices (the agent SNATs it) and traffic inside the VPC keeps the pod address.
   */
  vpcCniSnat(vpcCidr: string): void {
    for (let i = 0; i < this.nodeIps.length; i++) {
      const ns = this.nodeNs(i);
      this.topo.exec(ns, 'nft', ['delete', 'table', 'ip', 'crossvpc_emu_cni'], { allowFail: true });
      this.topo.exec(ns, 'nft', ['-f', '-'], {
        input: `table ip crossvpc_emu_cni {\n  chain postrouting {\n    type nat hook postrouting priority srcnat + 10; policy accept;\n    oifname "eth0" ip daddr != ${vpcCidr} snat to ${this.nodeIps[i]}\n  }\n}\n`,
      });
    }
  }

  /**
   * The member's "machine": namespace, primary ENI (MAC from the plan) on the function fabric,
   * a link-local path to IMDS and the EC2 endpoint, and its NAT ENIs. `slot` (1..) numbers its
   * link-local address.
   */
  addMember(m: GatewayMember, primaryMac: string, slot: number): void {
    const ns = this.topo.addNs(m.id);
    if (ns !== m.ns) throw new Error(`member ${m.id}: namespace ${ns} is not ${m.ns}`);
    const fab = this.fabricNs;
    const cloud = this.topo.ns('cloud');
    this.topo.link(ns, 'ens5', fab, m.id, { mtu: VPC_MTU, macA: primaryMac });
    vpcWireToward(this.topo, fab, m.id);
    this.topo.link(ns, 'imds', cloud, `c-${m.id}`, { mtu: 1500 });
    this.topo.enslave(cloud, `c-${m.id}`, 'br0');
    this.topo.exec(ns, 'ip', ['addr', 'add', `${memberLinkAddr(slot)}/32`, 'dev', 'imds']);
    for (const a of CLOUD_ADDRS) this.topo.exec(ns, 'ip', ['route', 'add', `${a}/32`, 'dev', 'imds']);
    this.topo.exec(cloud, 'ip', ['route', 'replace', `${memberLinkAddr(slot)}/32`, 'dev', 'br0']);
    this.topo.enslave(fab, m.id, 'br0');
    this.routerOn(fab, slash24(m.env.SELF_IP));
    this.topo.exec(ns, 'ip', ['addr', 'add', `${m.env.SELF_IP}/24`, 'dev', 'ens5']);
    this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', cidrhost(slash24(m.env.SELF_IP), 1)]);
    this.syncEnis(m, primaryMac);
  }

  /**
   * Bring a member's NAT ENIs in line with its tenant rows: attach (hot-plug) the new ones,
   * register them with the cloud and pin their floating IPs unassigned. `detach` also deletes
   * the ENIs whose rows are gone, as Terraform destroys a retired tenant's attachment and ENI.
   */
  syncEnis(m: GatewayMember, primaryMac: string, opts: { detach?: boolean } = {}): { attached: string[]; detached: string[] } {
    const attached = m.tenants.filter((row) => this.attachEni(m, row)).map((r) => r.name);
    const detached = opts.detach ? this.detachEnis(m) : [];
    this.registerEnis(m, primaryMac);
    this.unassignFloatingIps(m);
    return { attached, detached };
  }

  /** Every ENI of the member whose MAC no row names any more: the veth goes (its tenant-side end with it). */
  private detachEnis(m: GatewayMember): string[] {
    const wanted = new Set(m.tenants.map((r) => r.eniMac.toLowerCase()));
    const gone: string[] = [];
    const enis = JSON.parse(readFileSync(this.enisFile, 'utf8'));
    for (const [id, info] of Object.entries<any>(enis)) {
      if (info.member !== m.id || info.primary || wanted.has(String(info.mac).toLowerCase())) continue;
      const dev = this.devByMac(m.ns, info.mac);
      if (dev) this.topo.exec(m.ns, 'ip', ['link', 'del', 'dev', dev]);
      delete enis[id];
      gone.push(info.tenant ?? id);
      // The ENI's secondary IPs go with it: the NAT IP is delivered nowhere until the API moves it again.
      if (info.natIp && !Object.values<any>(enis).some((e) => e.routerNs === info.routerNs && e.natIp === info.natIp)) {
        this.topo.exec(info.routerNs, 'ip', ['neigh', 'replace', info.natIp, 'lladdr', UNASSIGNED_MAC, 'dev', 'br0', 'nud', 'permanent']);
      }
    }
    writeAtomic(this.enisFile, JSON.stringify(enis, null, 2));
    return gone;
  }

  private devByMac(ns: string, mac: string): string | undefined {
    const line = this.topo.exec(ns, 'ip', ['-o', 'link']).split('\n').find((l) => l.toLowerCase().includes(`link/ether ${mac.toLowerCase()} `));
    return line?.split(': ')[1]?.split('@')[0];
  }

  /** A reboot loses the namespace: remove it and wait until the kernel has let go of its veth peers. */
  removeMember(m: GatewayMember): void {
    this.topo.removeNs(m.ns);
    this.topo.waitGone(this.fabricNs, m.id);
    for (const t of this.tenantVpcs.values()) this.topo.waitGone(t.fab, m.id);
  }

  /** A NAT ENI: a veth whose tenant end joins the tenant's VPC fabric. The dataplane finds it by MAC. False if already attached. */
  private attachEni(m: GatewayMember, row: TenantTableRow): boolean {
    const { name, eniMac, subnetCidr } = row;
    const dev = `eni${row.vni}`.slice(0, 15);
    if (this.devByMac(m.ns, eniMac)) return false;
    const t = this.tenantVpcs.get(name);
    if (!t) throw new Error(`tenant ${name} of ${m.id} is missing from the agent tenant table`);
    if (this.topo.ok(m.ns, 'ip', ['link', 'show', dev]) || this.topo.ok(m.ns, 'ip', ['link', 'show', tenantDev(row.vni)])) {
      throw new Error(`${m.id}: a device for VNI ${row.vni} is still there while tenant ${name}'s ENI ${eniMac} is attached; detach the old ENI first`);
    }
    // Built whole in the tenant fabric, then moved: the member sees the ENI appear at once with
    // its MAC and MTU, down, as a hot-plugged ENI appears (its scripts rename it the moment they see it).
    this.topo.exec(t.fab, 'ip', ['link', 'add', 'dev', dev, 'address', eniMac, 'mtu', String(VPC_MTU), 'type', 'veth', 'peer', 'name', m.id]);
    this.topo.exec(t.fab, 'ip', ['link', 'set', m.id, 'mtu', String(VPC_MTU), 'up']);
    this.topo.enslave(t.fab, m.id, 'br0');
    this.routerOn(t.fab, subnetCidr);
    this.topo.exec(t.fab, 'ip', ['link', 'set', 'dev', dev, 'netns', m.ns]);
    return true;
  }

  /** Tell the emulated cloud which ENI lives where, so AssignPrivateIpAddresses can move IPs onto it. */
  private registerEnis(m: GatewayMember, primaryMac: string): void {
    const enis = JSON.parse(readFileSync(this.enisFile, 'utf8'));
    enis[m.env.SELF_ENI] = { mac: primaryMac, routerNs: this.fabricNs, routerDev: 'br0', member: m.id, primary: true };
    for (const t of m.tenants) enis[t.eniId] = { mac: t.eniMac, routerNs: this.tenantVpcs.get(t.name)!.fab, routerDev: 'br0', member: m.id, tenant: t.name, natIp: t.natIp };
    writeAtomic(this.enisFile, JSON.stringify(enis, null, 2));
  }

  /** Floating IPs start unassigned: only the API can make the fabric deliver them. */
  private unassignFloatingIps(m: GatewayMember): void {
    const pin = (ns: string, ip: string) => {
      const cur = this.topo.exec(ns, 'ip', ['neigh', 'show', ip, 'dev', 'br0']);
      if (!cur.includes('PERMANENT')) this.topo.exec(ns, 'ip', ['neigh', 'replace', ip, 'lladdr', UNASSIGNED_MAC, 'dev', 'br0', 'nud', 'permanent']);
    };
    pin(this.fabricNs, m.env.HAVIP);
    for (const t of m.tenants) pin(this.tenantVpcs.get(t.name)!.fab, t.natIp);
    for (const t of m.tenants.filter((r) => r.egress === 'eip')) pin(this.fabricNs, t.egressIp);
  }

  /** Drop every frame between two members on the function fabric (cut = false restores it). */
  partition(a: GatewayMember, b: GatewayMember, cut: boolean): void {
    if (cut) {
      this.topo.exec(this.fabricNs, 'nft', ['-f', '-'], {
        input: `table bridge crossvpc_cut {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    iifname "${a.id}" oifname "${b.id}" drop\n    iifname "${b.id}" oifname "${a.id}" drop\n  }\n}\n`,
      });
    } else {
      this.topo.exec(this.fabricNs, 'nft', ['delete', 'table', 'bridge', 'crossvpc_cut'], { allowFail: true });
    }
  }

  /** Every link of a namespace down, as a powered-off machine's. */
  linksDown(ns: string): void {
    for (const dev of this.topo.exec(ns, 'ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(': ')[1]?.split('@')[0]).filter((d) => d && d !== 'lo')) {
      this.topo.exec(ns, 'ip', ['link', 'set', dev!, 'down'], { allowFail: true });
    }
  }

  /** Cluster nodes n1.. in the stand-in node subnet, forwarding (the agent routes pods). */
  addNodes(count: number, subnet: string): void {
    const fab = this.fabricNs;
    this.routerOn(fab, subnet);
    for (let i = this.nodeIps.length; i < count; i++) {
      const ns = this.topo.addNs(`n${i + 1}`);
      const ip = Wiring.nodeIpIn(subnet, i);
      this.nodeIps.push(ip);
      this.topo.link(ns, 'eth0', fab, `n${i + 1}`, { mtu: VPC_MTU });
      this.topo.enslave(fab, `n${i + 1}`, 'br0');
      this.topo.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', cidrhost(subnet, 1)]);
      this.topo.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    }
  }

  /**
   * A host of the function VPC outside the cluster (the Prometheus servers' machine): its own
   * namespace on the fabric at `ip`, in `subnet` behind that subnet's VPC router.
   */
  addHost(name: string, ip: string, subnet: string): string {
    const ns = this.topo.addNs(name);
    this.routerOn(this.fabricNs, subnet);
    this.topo.link(ns, 'eth0', this.fabricNs, name, { mtu: VPC_MTU });
    this.topo.enslave(this.fabricNs, name, 'br0');
    this.topo.exec(ns, 'ip', ['addr', 'add', `${ip}/${subnet.split('/')[1]}`, 'dev', 'eth0']);
    this.topo.exec(ns, 'ip', ['route', 'add', 'default', 'via', cidrhost(subnet, 1)]);
    return ns;
  }

  /**
   * The members' security groups for one kind of TCP service, enforced where the fabric delivers
   * to each member's primary ENI: to `port` on member `dev`, only `sources` (addresses or CIDRs)
   * get through. Other ports stay unfiltered (the emulation models these rules only). Called
   * again, it replaces the filter.
   */
  admitOnly(name: string, rules: ReadonlyArray<{ dev: string; port: number; sources: readonly string[] }>): void {
    const table = `crossvpc_sg_${name}`;
    this.topo.exec(this.fabricNs, 'nft', ['delete', 'table', 'bridge', table], { allowFail: true });
    const lines = rules.flatMap(({ dev, port, sources }) => [
      ...(sources.length ? [`    oifname "${dev}" tcp dport ${port} ip saddr { ${sources.join(', ')} } accept`] : []),
      `    oifname "${dev}" tcp dport ${port} drop`,
    ]);
    // forward: frames bridged within a subnet; output: packets the VPC router routed from another subnet.
    const chain = (hook: string) => `  chain ${hook} {\n    type filter hook ${hook} priority 0; policy accept;\n    jump admit\n  }\n`;
    this.topo.exec(this.fabricNs, 'nft', ['-f', '-'], { input: `table bridge ${table} {\n  chain admit {\n${lines.join('\n')}\n  }\n${chain('forward')}${chain('output')}}\n` });
  }

  /** Node i's address in the node subnet (known before the node is wired). */
  static nodeIpIn(subnet: string, i: number): string {
    return cidrhost(subnet, 10 + i);
  }

  nodeCount(): number {
    return this.nodeIps.length;
  }

  nodeIp(i: number): string {
    return this.nodeIps[i];
  }

  nodeNs(i: number): string {
    return this.topo.ns(`n${i + 1}`);
  }

  /** The EKS VPC CNI makes pod IPs routable in the VPC: the fabric routes each /32 to its node. */
  routePodIps(pods: ReadonlyArray<{ ip: string; node: number }>, routed: boolean): void {
    for (const p of pods) this.topo.exec(this.fabricNs, 'ip', ['route', routed ? 'replace' : 'del', `${p.ip}/32`, 'via', this.nodeIps[p.node]], { allowFail: !routed });
  }
}

/**
 * The fabric's port toward a gateway host stands in for the VPC wire, which never carries
 * more than an MTU per frame: segmentation offload off, so the host receives MTU-size frames
 * and its own GRO (ENA's default, which the member's user data also turns on) aggregates
 * them. Without this a veth hands the host TSO super-packets no real NIC would receive.
 */
export function vpcWireToward(topo: Topology, fabricNs: string, port: string): void {
  topo.exec(fabricNs, 'ethtool', ['-K', port, 'tso', 'off']);
}
