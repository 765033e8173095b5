import { createHash } from 'crypto';
import { intToIpv4, requireIpv4 } from '../contract/ipv4';
import { ACCOUNT, eniArn, REGION, ssmParameterArn } from './cloud-api';
import { cidrhost, evaluate, Plan } from './plan';

/**
 * Deterministic stand-ins for values a real plan learns only after apply: subnet
 * CIDRs, ENI addresses, ids and MACs. Same plan in, same values out.
 *
 * Placement. A plan knows a tenant only by its allowed destinations D (the agent
 * tenant table); the tenant's own subnets are learned at apply. The stand-ins put
 * the k subnets of a tenant
 * - at the top /24s of D[0] when D[0] is /22 or wider (the historical layout);
 * - else inside D[0] itself, split into k equal blocks from the top (the whole of
 *   D[0] when k = 1), when each block is still a /28 or wider;
 * - else (a /29../32 destination) at the top /24s of the /16 that encloses D[0],
 *   skipping every /24 that overlaps one of the tenant's destinations.
 * In a subnet the router is host 1, NAT ENIs are host 10.. (host 4.. in subnets
 * narrower than /24) and reservations (NAT IPs, HaVips) are what the plan says.
 * The tenant's probe service sits at host 3 of D[0] (its last address if D[0] has
 * fewer than four): inside a stand-in subnet when it falls in one, else in a /24
 * service network behind the tenant fabric router (D[0] of /22 or wider), else as a
 * /32 the tenant fabric routes to. Every collision is an error naming the tenant.
 */
export interface StandIns {
  /** Resolve a Terraform reference such as `aws_network_interface.X.private_ip`. */
  resolve(ref: string): string;
  readonly functionCidr: string;
  /** Stand-in subnet the emulator puts its nodes in. */
  readonly nodeSubnet: string;
  /** The subnet router (VPC router, host .1) of a stand-in subnet. */
  router(subnet: string): string;
  /** Where a tenant's probe service lives. */
  probe(tenant: string): ProbePlacement;
  /** Stand-in CIDR of a subnet id of the plan. */
  subnet(id: string): string;
  /** What a later plan of the same run must keep: a subnet's CIDR and an ENI's address never change once created. */
  readonly placed: PlacedStandIns;
}

/** Subnet id -> CIDR, ENI logical id -> private IP, as a running emulation has them. */
export interface PlacedStandIns {
  readonly subnets: ReadonlyMap<string, string>;
  readonly eniIps: ReadonlyMap<string, string>;
}

export interface ProbePlacement {
  /** The service address: an address of the tenant's first allowed destination. */
  readonly ip: string;
  /** Network whose router (host 1) the tenant fabric carries; the service's default gateway. */
  readonly net: string;
  /** Prefix length of the service's address: the net's, or 32 (on-link default route, host route in the fabric). */
  readonly prefix: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

interface Block { base: number; len: number; size: number }
const ipInt = requireIpv4;
const intIp = intToIpv4;
function block(cidr: string): Block {
  const [ip, l] = cidr.split('/');
  const len = Number(l ?? 32);
  const size = 2 ** (32 - len);
  return { base: Math.floor(ipInt(ip) / size) * size, len, size };
}
const text = (b: { base: number; len: number }) => `${intIp(b.base)}/${b.len}`;
const sub = (b: Block, len: number, i: number): Block => ({ base: b.base + i * 2 ** (32 - len), len, size: 2 ** (32 - len) });
const overlap = (a: Block, b: Block) => a.base < b.base + b.size && b.base < a.base + a.size;
const contains = (b: Block, ip: number) => ip >= b.base && ip < b.base + b.size;

/** The i-th /24 from the top of a /22-or-wider range. */
function lastSlash24(cidr: string, fromTop: number, what: string): string {
  const b = block(cidr);
  if (b.len > 22) throw new Error(`${what}: stand-in subnets need a /22 or larger range, got ${cidr}`);
  if (fromTop >= b.size / 256) throw new Error(`${what}: ${cidr} has no room for ${fromTop + 1} stand-in /24 subnets`);
  return text(sub(b, 24, b.size / 256 - 1 - fromTop));
}

function firstSlash24(cidr: string, n: number): string {
  const o = cidr.split('/')[0].split('.').map(Number);
  return `${o[0]}.${o[1]}.${o[2] + n}.0/24`;
}

/** The k stand-in subnets of a tenant whose first allowed destination is dests[0]. */
export function tenantSubnets(tenant: string, dests: string[], k: number): string[] {
  const d0 = block(dests[0]);
  if (d0.len < 16) throw new Error(`tenant ${tenant}: destination ${dests[0]} is wider than a VPC (/16); the stand-ins place subnets inside one VPC range`);
  if (d0.len <= 22) return Array.from({ length: k }, (_, i) => lastSlash24(dests[0], i, `tenant ${tenant}`));
  const bits = Math.ceil(Math.log2(Math.max(k, 1)));
  if (d0.len + bits <= 28) return Array.from({ length: k }, (_, i) => text(sub(d0, d0.len + bits, 2 ** bits - 1 - i)));
  const outer = block(`${intIp(d0.base)}/16`);
  const taken = dests.map(block);
  const out: string[] = [];
  for (let i = 255; i >= 0 && out.length < k; i--) {
    const c = sub(outer, 24, i);
    if (!taken.some((d) => overlap(d, c))) out.push(text(c));
  }
  if (out.length < k) throw new Error(`tenant ${tenant}: ${dests[0]} is too narrow for ${k} stand-in subnet(s) and the enclosing ${text(outer)} has only ${out.length} /24s free of its destinations ${dests.join(', ')}`);
  return out;
}

/**
 * `previous`: the stand-ins of the plan already running. Subnets and ENIs both plans hold keep
 * their CIDR and address (in AWS neither changes after creation, whatever the new plan's
 * tenant destinations say); only new ones are placed by the rules above, around them.
 */
export function buildStandIns(plan: Plan, tenantCidrs: Record<string, string[]>, previous?: PlacedStandIns): StandIns {
  const json = plan.json;
  const enis: Record<string, any> = json.resource?.aws_network_interface ?? {};
  const subnets: Record<string, any> = json.data?.aws_subnet ?? {};
  const reservations: Record<string, any> = json.resource?.aws_ec2_subnet_cidr_reservation ?? {};
  const nodeCidrsMatch = /NODE_CIDRS='([^']*)'/.exec(plan.members[0].userData);
  if (!nodeCidrsMatch) throw new Error('user data has no NODE_CIDRS');
  const functionCidr = nodeCidrsMatch[1].split(' ')[0];
  const destsOf = (tenant: string): string[] => {
    const cidrs = tenantCidrs[tenant];
    if (!cidrs?.length) throw new Error(`tenant ${tenant} has ENIs but no CIDRs in the agent tenant table`);
    return cidrs;
  };

  // Subnet id -> stand-in CIDR (rules above); function-side subnets take the top /24s of
  // the function range, nodes get the first /24 + 1.
  const subnetCidr = new Map<string, string>();
  const subnetTenant = new Map<string, string>();
  const tenantSubnetIds = new Map<string, string[]>(); // every subnet wired into a tenant's fabric
  let fnTop = 0;
  const subnetIds = [...new Set(Object.values(enis).map((e) => String(e.subnet_id)))].sort();
  for (const id of subnetIds) {
    const users = Object.values(enis).filter((e) => e.subnet_id === id);
    const tags = [...new Set(users.map((e) => e.tags?.['crossvpc:tenant']).filter(Boolean))] as string[];
    for (const t of tags) tenantSubnetIds.set(t, [...(tenantSubnetIds.get(t) ?? []), id]);
    if (tags.length) subnetTenant.set(id, tags[0]);
  }
  // Subnets the running emulation already has keep their CIDR.
  for (const id of subnetIds) {
    const kept = previous?.subnets.get(id);
    if (kept) subnetCidr.set(id, kept);
  }
  // Each VPC has its own address space: tenants' subnets may coincide, a VPC's own may not.
  const takenIn = (tenant: string | undefined) => new Set(subnetIds.filter((s) => subnetTenant.get(s) === tenant && subnetCidr.has(s)).map((s) => subnetCidr.get(s)!));
  for (const id of subnetIds) {
    if (subnetTenant.has(id) || subnetCidr.has(id)) continue;
    let c = lastSlash24(functionCidr, fnTop++, `function VPC range ${functionCidr}`);
    while (takenIn(undefined).has(c)) c = lastSlash24(functionCidr, fnTop++, `function VPC range ${functionCidr}`);
    subnetCidr.set(id, c);
  }
  const placedFor = new Set<string>();
  for (const id of subnetIds) {
    const tenant = subnetTenant.get(id);
    if (!tenant || placedFor.has(tenant)) continue;
    placedFor.add(tenant);
    const fresh = subnetIds.filter((s) => subnetTenant.get(s) === tenant && !subnetCidr.has(s));
    if (!fresh.length) continue;
    const own = subnetIds.filter((s) => subnetTenant.get(s) === tenant);
    const candidates = tenantSubnets(tenant, destsOf(tenant), own.length).filter((c) => !takenIn(tenant).has(c));
    if (candidates.length < fresh.length) throw new Error(`tenant ${tenant}: no room for ${fresh.length} new stand-in subnet(s) beside the ones it already has (${own.filter((s) => subnetCidr.has(s)).map((s) => subnetCidr.get(s)).join(', ')})`);
    fresh.forEach((s, i) => subnetCidr.set(s, candidates[i]));
  }
  const nodeSubnet = firstSlash24(functionCidr, 1);

  const eniBase = (cidr: string) => (block(cidr).len <= 24 ? 10 : 4);
  // ENI addresses: kept ones stay, new ones take the lowest free host from the base up, in logical-id order.
  const eniIp = new Map<string, string>();
  for (const id of subnetIds) {
    const cidr = subnetCidr.get(id)!;
    const keys = Object.keys(enis).filter((k) => enis[k].subnet_id === id).sort();
    for (const k of keys) {
      const kept = previous?.eniIps.get(k);
      if (kept && contains(block(cidr), ipInt(kept))) eniIp.set(k, kept);
    }
    const used = new Set(keys.map((k) => eniIp.get(k)).filter(Boolean));
    let host = eniBase(cidr);
    for (const k of keys.filter((x) => !eniIp.has(x))) {
      while (used.has(cidrhost(cidr, host))) host++;
      if (host >= block(cidr).size - 1) throw new Error(`${subnetTenant.has(id) ? `tenant ${subnetTenant.get(id)}` : 'function VPC'}: the stand-in subnet ${cidr} of ${id} is too small for its ENIs`);
      eniIp.set(k, cidrhost(cidr, host));
      used.add(cidrhost(cidr, host));
    }
  }

  const resolve = (ref: string): string => {
    const parts = ref.split('.');
    if (parts[0] === 'data' && parts[1] === 'aws_subnet' && parts[3] === 'cidr_block') {
      const ds = subnets[parts[2]];
      if (!ds) throw new Error(`unknown data source ${ref}`);
      const c = subnetCidr.get(String(ds.id));
      if (!c) throw new Error(`subnet ${ds.id} of ${ref} holds no ENI of this plan; the emulator cannot place it`);
      return c;
    }
    if (parts[0] === 'aws_network_interface') {
      const eni = enis[parts[1]];
      if (!eni) throw new Error(`unknown resource ${ref}`);
      const h = digest(parts[1]);
      switch (parts[2]) {
        case 'private_ip':
          return eniIp.get(parts[1])!;
        case 'id':
          return `eni-${h.toString('hex').slice(0, 17)}`;
        case 'arn':
          return eniArn(`eni-${h.toString('hex').slice(0, 17)}`);
        case 'mac_address':
          return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
        default:
          break;
      }
    }
    if (parts[0] === 'aws_ssm_parameter' && parts.length === 3) {
      const p = json.resource?.aws_ssm_parameter?.[parts[1]];
      if (!p) throw new Error(`unknown resource ${ref}`);
      if (typeof p.name !== 'string' || p.name.includes('${')) throw new Error(`${ref}: the parameter name is not a literal`);
      if (parts[2] === 'name' || parts[2] === 'id') return p.name;
      if (parts[2] === 'arn') return ssmParameterArn(p.name);
    }
    // The emulated account: its region, account id and partition.
    if (parts[0] === 'data' && parts.length === 4) {
      const known: Record<string, Record<string, string>> = {
        aws_region: { name: REGION, region: REGION, id: REGION },
        aws_caller_identity: { account_id: ACCOUNT, id: ACCOUNT },
        aws_partition: { partition: 'aws', dns_suffix: 'amazonaws.com', id: 'aws' },
      };
      const v = known[parts[1]]?.[parts[3]];
      if (v !== undefined && json.data?.[parts[1]]?.[parts[2]] !== undefined) return v;
    }
    throw new Error(`the emulator has no stand-in for ${ref}`);
  };

  // Every address the plan puts in each stand-in subnet must fit and be distinct.
  const used = new Map<string, Map<number, string>>(); // subnet id -> address -> what
  const owner = (id: string) => (subnetTenant.has(id) ? `tenant ${subnetTenant.get(id)}` : 'function VPC');
  const claim = (id: string, ip: string, what: string) => {
    const cidr = subnetCidr.get(id)!;
    const b = block(cidr);
    const v = ipInt(ip);
    if (!contains(b, v)) throw new Error(`${owner(id)}: ${what} ${ip} lies outside the stand-in subnet ${cidr} of ${id}; the emulator cannot place it`);
    if (v === b.base || v === b.base + b.size - 1) throw new Error(`${owner(id)}: ${what} ${ip} is the network or broadcast address of the stand-in subnet ${cidr} of ${id}`);
    const m = used.get(id) ?? new Map<number, string>();
    used.set(id, m);
    if (m.has(v)) throw new Error(`${owner(id)}: ${what} ${ip} collides with ${m.get(v)} in the stand-in subnet ${cidr} of ${id}`);
    m.set(v, what);
  };
  const ranged = (id: string, n: number, what: string) => {
    const cidr = subnetCidr.get(id)!;
    if (n >= block(cidr).size) throw new Error(`${owner(id)}: the stand-in subnet ${cidr} of ${id} is too small for its ${what}`);
    return cidrhost(cidr, n);
  };
  for (const id of subnetIds) {
    claim(id, ranged(id, 1, 'router (host 1)'), 'router');
    for (const k of Object.keys(enis).filter((e) => enis[e].subnet_id === id).sort()) claim(id, eniIp.get(k)!, `ENI ${k}`);
  }
  for (const [k, r] of Object.entries(reservations)) {
    const id = String(r.subnet_id);
    if (!subnetCidr.has(id)) continue;
    const cidr = evaluate(String(r.cidr_block), resolve);
    if (!cidr.endsWith('/32')) continue;
    claim(id, cidr.slice(0, -3), `reserved IP ${k}`);
  }

  const probes = new Map<string, ProbePlacement>();
  for (const [tenant, dests] of Object.entries(tenantCidrs)) {
    if (!dests.length) continue;
    const d0 = block(dests[0]);
    const ip = intIp(d0.base + Math.min(3, d0.size - 1));
    const mine = tenantSubnetIds.get(tenant) ?? [];
    const home = mine.find((id) => contains(block(subnetCidr.get(id)!), ipInt(ip)));
    if (home) {
      claim(home, ip, `Redis probe of tenant ${tenant} (on destination ${dests[0]})`);
      probes.set(tenant, { ip, net: subnetCidr.get(home)!, prefix: 32 });
    } else if (d0.len <= 22) {
      const net = `${ip.split('.').slice(0, 3).join('.')}.0/24`;
      const clash = mine.find((id) => overlap(block(net), block(subnetCidr.get(id)!)));
      if (clash) throw new Error(`tenant ${tenant}: the probe network ${net} on destination ${dests[0]} overlaps its stand-in subnet ${subnetCidr.get(clash)} (${clash})`);
      probes.set(tenant, { ip, net, prefix: 24 });
    } else if (mine.length) {
      probes.set(tenant, { ip, net: subnetCidr.get(mine[0])!, prefix: 32 });
    } else {
      probes.set(tenant, { ip: '', net: '', prefix: 0 });
    }
  }
  const probe = (tenant: string): ProbePlacement => {
    const p = probes.get(tenant);
    if (!p) throw new Error(`tenant ${tenant} is not in the agent tenant table`);
    if (!p.ip) throw new Error(`tenant ${tenant}: destination ${tenantCidrs[tenant][0]} is narrower than a /22 and the tenant has no NAT ENI subnet, so its probe has no VPC router`);
    return p;
  };
  const subnet = (id: string): string => {
    const c = subnetCidr.get(id);
    if (!c) throw new Error(`subnet ${id} holds no ENI of this plan`);
    return c;
  };
  const placed: PlacedStandIns = { subnets: new Map(subnetCidr), eniIps: new Map(eniIp) };
  return { resolve, functionCidr, nodeSubnet, router: (s) => cidrhost(s, 1), probe, subnet, placed };
}
