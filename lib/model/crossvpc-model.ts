import { Cidr, cidrContains, cidrContainsIp, cidrsOverlap, parseCidr, parseIp, rejectToken, Where } from './cidr';
import { CrossVpcError, isUnresolvedToken } from './errors';
import { tenantCapacity } from './eni-capacity';
import { AUTO_VNI_FLOOR, conntrackZone, derivedVni, gatewayMac, tenantTable, VNI_MAX, VNI_MIN } from './identity';
import { FunctionVpcInput, GatewayInput, TenantInput, TunnelType } from './inputs';

export * from './inputs';

/** Bytes each tunnel adds: VXLAN = IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14; keyed GRE = IPv4 20 + GRE 4 + key 4. */
export const TUNNEL_OVERHEAD: Readonly<Record<TunnelType, number>> = { vxlan: 50, gre: 28 };
/** Smallest inner MTU we accept: the IPv6 minimum, below which real stacks misbehave. */
export const MIN_INNER_MTU = 1280;
/** The AWS in-VPC jumbo MTU. */
export const AWS_VPC_MTU = 9001;
export { VXLAN_PORT } from '../contract/names';
/** Link-local next hop that nodes route tenant traffic to; resolves to the (pair, VNI) MAC. */
export const TUNNEL_NEXT_HOP = '169.254.0.1';

/** How buildCrossVpcModel tells Terraform tokens from literals. */
export interface BuildOptions {
  /**
   * True for an unresolved Terraform token. lib/model has no cdktf import (it is pure data,
   * shared with renderers and the CLI), so the constructs inject cdktf's Token.isUnresolved
   * here instead of the model importing it; injecting keeps the single walk over the props
   * in the model, which is the one place that knows which props need a literal and why.
   * @default isUnresolvedToken (cdktf's encodings, without cdktf)
   */
  readonly isUnresolved?: (value: unknown) => boolean;
}

export interface TenantModel {
  readonly name: string;
  readonly vpcId: string;
  readonly subnetId: string;
  readonly cidrs: string[];
  readonly destinations: string[];
  readonly vni: number;
  readonly vniDerived: boolean;
  readonly zone: number;
  readonly table: number;
  readonly pairIndex: number;
  /** 1-based ENI slot on each member; also the attachment's device index. */
  readonly slot: number;
  readonly gatewayMac: string;
  readonly natIp?: string;
  readonly availabilityZone?: string;
  readonly retired: boolean;
}

export interface PairModel {
  readonly index: number;
  readonly tenants: TenantModel[];
}

/** (source CIDR, VNI, destination CIDR) → SNAT to the tenant's NAT IP. */
export interface NatPolicy {
  readonly tenant: string;
  readonly vni: number;
  readonly sourceCidr: string;
  readonly destinationCidr: string;
}

export interface CrossVpcModel {
  readonly functionVpc: {
    readonly vpcId: string;
    readonly nodeSubnetIds: string[];
    readonly vpcCidr: string;
    readonly podCidrs: string[];
    readonly nodeCidrs: string[];
    readonly nodeSecurityGroupId?: string;
  };
  readonly gatewaySubnetId: string;
  readonly gatewayAvailabilityZone?: string;
  readonly instanceType: string;
  readonly tenantsPerMember: number;
  readonly tunnel: TunnelType;
  readonly underlayMtu: number;
  readonly tunnelMtu: number;
  readonly tcpMss: number;
  /**
   * Pairs by index (pairs[i].index === i). A pair with no active tenants is not built
   * (see pairsInUse); its index stays reserved so no other pair moves.
   */
  readonly pairs: PairModel[];
  /** Active tenants in declaration order. */
  readonly tenants: TenantModel[];
  readonly policies: NatPolicy[];
}

export const DEFAULT_INSTANCE_TYPE = 'c6in.xlarge';
/** nf_conntrack_max on each member unless ProxyNodePairOptions.conntrackMax says otherwise. */
export const DEFAULT_CONNTRACK_MAX = 262144;
export const DEFAULT_CONN_LIMIT_PER_TENANT = 65536;

/**
 * Ranges no tenant service can live in: "this network", loopback, link-local (IMDS and the
 * nodes' tunnel next hop 169.254.0.1), multicast and the reserved class E (with broadcast).
 */
export const RESERVED_TENANT_RANGES: ReadonlyArray<{ readonly cidr: string; readonly label: string }> = [
  { cidr: '0.0.0.0/8', label: '"this network" (0.0.0.0/8)' },
  { cidr: '127.0.0.0/8', label: 'loopback (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', label: 'link-local (169.254.0.0/16: instance metadata and the tunnel next hop)' },
  { cidr: '224.0.0.0/4', label: 'multicast (224.0.0.0/4)' },
  { cidr: '240.0.0.0/4', label: 'reserved class E and broadcast (240.0.0.0/4)' },
];

/** The pairs a model builds: those holding at least one active tenant, by index. */
export function pairsInUse(model: CrossVpcModel): PairModel[] {
  return model.pairs.filter((p) => p.tenants.length > 0);
}

/** nf_conntrack_max on a member: a positive integer. */
export function checkConntrackMax(value: unknown, where: Where): number {
  rejectToken(value, where, 'the conntrack table size', 'to render it into the members\' sysctl settings', String(DEFAULT_CONNTRACK_MAX));
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new CrossVpcError({ path: where.path, prop: where.prop, value, problem: 'nf_conntrack_max is a positive whole number', fix: `use e.g. ${DEFAULT_CONNTRACK_MAX} (the default)` });
  }
  return value;
}

/**
 * Tracked connections one tenant may hold on a member: an integer from 1 to the member's
 * nf_conntrack_max (a larger limit could never bite).
 */
export function checkConnLimitPerTenant(value: unknown, conntrackMax: number, where: Where): number {
  rejectToken(value, where, 'the connection limit', 'to render it into the gateway ruleset (ct count over N)', '65536');
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > conntrackMax) {
    throw new CrossVpcError({
      path: where.path,
      prop: where.prop,
      value,
      problem: `must be a whole number of connections from 1 to the members' nf_conntrack_max (${conntrackMax}); 0 or less would drop every flow, a fraction is not a count`,
      fix: `use e.g. ${DEFAULT_CONN_LIMIT_PER_TENANT} (the default), or leave it unset`,
    });
  }
  return value;
}
/** Pairs one CrossVpcNat manages; the default NAT IP and HaVip count down from the top of a subnet per pair. */
export const MAX_PAIRS = 1000;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function buildCrossVpcModel(
  path: string,
  input: { functionVpc: FunctionVpcInput; tenants: TenantInput[]; gateway: GatewayInput },
  options: BuildOptions = {},
): CrossVpcModel {
  const fv = input.functionVpc;
  const isUnresolved = options.isUnresolved ?? isUnresolvedToken;
  const err = (prop: string, value: unknown, problem: string, fix: string) =>
    new CrossVpcError({ path, prop, value, problem, fix });
  const at = (prop: string): Where => ({ path, prop, isUnresolved });
  /** Props that must be literals: the error says it is a token and why a literal is needed. */
  const literal = (value: unknown, prop: string, what: string, why: string, example: string) => rejectToken(value, at(prop), what, why, example);
  const cidrList = (list: unknown, prop: string): Cidr[] => {
    literal(list, prop, 'the CIDR list', 'to check overlaps and build the nftables sets', '["172.16.0.0/16"]');
    return ((list ?? []) as unknown[]).map((c, i) => parseCidr(c, at(`${prop}[${i}]`)));
  };
  /** Refuses two entries of one list that overlap (a duplicate is the simplest case). */
  const noOverlapWithin = (cidrs: Cidr[], prop: string, raw: readonly unknown[], why: string) => {
    cidrs.forEach((c, j) => {
      const k = cidrs.findIndex((o, i) => i < j && cidrsOverlap(o, c));
      if (k >= 0) {
        throw err(`${prop}[${j}]`, raw[j], `${c.text} overlaps ${prop}[${k}] ${cidrs[k].text}; ${why}`, 'list every range once: drop the narrower one (the wider already covers it) or split them so they do not overlap');
      }
    });
  };

  const vpcCidr = parseCidr(fv.vpcCidr, at('functionVpc.vpcCidr'));
  const podCidrs = cidrList(fv.podCidrs, 'functionVpc.podCidrs');
  const nodeCidrs = fv.nodeCidrs === undefined ? [vpcCidr] : cidrList(fv.nodeCidrs, 'functionVpc.nodeCidrs');
  noOverlapWithin(podCidrs, 'functionVpc.podCidrs', fv.podCidrs ?? [], 'overlapping pod CIDRs make the masquerade and routing lists ambiguous');
  noOverlapWithin(nodeCidrs, 'functionVpc.nodeCidrs', fv.nodeCidrs ?? [], 'the nodeCidrs feed the gateway\'s NAT policy set, where overlapping intervals fail to load');
  if (!fv.nodeSubnetIds || fv.nodeSubnetIds.length === 0) {
    throw err('functionVpc.nodeSubnetIds', fv.nodeSubnetIds, 'no node subnets given', 'list the subnet ids the cluster nodes run in');
  }
  const clusterSide: Array<{ cidr: Cidr; label: string }> = [
    { cidr: vpcCidr, label: `functionVpc.vpcCidr ${vpcCidr.text}` },
    ...podCidrs.map((c, i) => ({ cidr: c, label: `functionVpc.podCidrs[${i}] ${c.text}` })),
    ...(fv.nodeCidrs === undefined ? [] : nodeCidrs.map((c, i) => ({ cidr: c, label: `functionVpc.nodeCidrs[${i}] ${c.text}` }))),
  ];
  const reserved = RESERVED_TENANT_RANGES.map((r) => ({ cidr: parseCidr(r.cidr, at('RESERVED_TENANT_RANGES')), label: r.label }));

  const gw = input.gateway;
  literal(gw.tunnel, 'gateway.tunnel', 'the tunnel type', 'to render the node agent and gateway configuration', '"vxlan"');
  literal(gw.mtu, 'gateway.mtu', 'the MTU', 'to derive the tunnel MTU and TCP MSS written into the gateway and agent configuration', '9001');
  literal(gw.tenantsPerMember, 'gateway.tenantsPerMember', 'the tenants per member', 'to place tenants on pairs and slots', '3');
  literal(gw.pairCount, 'gateway.pairCount', 'the pair count', 'to decide which pairs exist', '2');
  const tunnel: TunnelType = gw.tunnel ?? 'vxlan';
  if (tunnel !== 'vxlan' && tunnel !== 'gre') {
    throw err('gateway.tunnel', gw.tunnel, 'unknown tunnel type', 'use "vxlan" (default) or "gre"');
  }
  const underlayMtu = gw.mtu ?? AWS_VPC_MTU;
  const overhead = TUNNEL_OVERHEAD[tunnel];
  if (!Number.isInteger(underlayMtu) || underlayMtu - overhead < MIN_INNER_MTU || underlayMtu > AWS_VPC_MTU) {
    throw err(
      'gateway.mtu',
      gw.mtu,
      `the ${tunnel} tunnel costs ${overhead} bytes, so the underlay MTU must be an integer from ${MIN_INNER_MTU + overhead} to ${AWS_VPC_MTU}`,
      `set mtu to ${AWS_VPC_MTU} (AWS in-VPC jumbo frames) or at least ${MIN_INNER_MTU + overhead}`,
    );
  }
  const tunnelMtu = underlayMtu - overhead;

  const instanceType = gw.instanceType ?? DEFAULT_INSTANCE_TYPE;
  // An instance-type token works (Terraform resolves it), but the built-in ENI table cannot
  // be read with it: then tenantsPerMember must be given, and the plan checks it.
  const typeIsToken = isUnresolved(instanceType);
  const typeLabel = typeIsToken ? 'the given instance type' : instanceType;
  if (typeIsToken && gw.tenantsPerMember === undefined) {
    throw err(
      'gateway.instanceType',
      instanceType,
      'it is an unresolved Terraform token, so the built-in ENI table cannot tell how many tenants a member holds',
      'set gateway.tenantsPerMember to (maximum network interfaces of the type - 1); the plan re-checks it against aws_ec2_instance_type, or pass the instance type as a literal',
    );
  }
  const tenantsPerMember = gw.tenantsPerMember ?? tenantCapacity(instanceType);
  if (tenantsPerMember === undefined) {
    throw err(
      'gateway.instanceType',
      instanceType,
      'its ENI limit is not in the built-in table',
      'set gateway.tenantsPerMember to (maximum network interfaces of the type - 1); the plan re-checks it against aws_ec2_instance_type',
    );
  }
  if (!Number.isInteger(tenantsPerMember) || tenantsPerMember < 1 || tenantsPerMember > 1023) {
    throw err('gateway.tenantsPerMember', tenantsPerMember, 'must be an integer from 1 to 1023', 'use the instance type\'s maximum network interfaces minus one');
  }
  if (gw.pairCount !== undefined && (!Number.isInteger(gw.pairCount) || gw.pairCount < 1 || gw.pairCount > MAX_PAIRS)) {
    throw err('gateway.pairCount', gw.pairCount, `must be an integer from 1 to ${MAX_PAIRS}`, 'leave it unset to add pairs as tenants need them');
  }

  if (!input.tenants || input.tenants.length === 0) {
    throw err('tenants', input.tenants, 'the tenant list is empty, so there is nothing to connect', 'pass at least one tenant');
  }

  // Gateway addresses and limits: strict, and never a token.
  const haVipText = new Map<string, number>();
  literal(gw.haVips, 'gateway.haVips', 'the HaVip list', 'to check the addresses and render them into the agent and gateway configuration', '["10.0.255.250"]');
  (gw.haVips ?? []).forEach((v, i) => {
    const ip = parseIp(v, at(`gateway.haVips[${i}]`));
    const prev = haVipText.get(ip);
    if (prev !== undefined) {
      throw err(`gateway.haVips[${i}]`, v, `pair ${i} would share its HaVip with pair ${prev}: each pair's keepalived moves its HaVip on its own`, 'give every pair its own free address of the gateway subnet, or leave haVips unset');
    }
    // In the gateway subnet, not its network/broadcast/AWS-reserved address: a plan-time
    // precondition on the HaVip reservation (the subnet CIDR is a data source).
    podCidrs.forEach((c, k) => {
      if (cidrContainsIp(c, ip)) {
        throw err(`gateway.haVips[${i}]`, v, `inside functionVpc.podCidrs[${k}] ${c.text}, an overlay pod range, not a gateway subnet address`, 'use a free address of the gateway subnet');
      }
    });
    haVipText.set(ip, i);
  });
  literal(gw.sshCidrs, 'gateway.sshCidrs', 'the SSH CIDR list', 'to validate it and create one security group rule per CIDR', '["203.0.113.0/24"]');
  (gw.sshCidrs ?? []).forEach((c, i) => parseCidr(c, at(`gateway.sshCidrs[${i}]`)));
  const conntrackMax = gw.conntrackMax === undefined ? DEFAULT_CONNTRACK_MAX : checkConntrackMax(gw.conntrackMax, at('gateway.conntrackMax'));
  if (gw.connLimitPerTenant !== undefined) checkConnLimitPerTenant(gw.connLimitPerTenant, conntrackMax, at('gateway.connLimitPerTenant'));

  // Validate each tenant on its own.
  const names = new Map<string, number>();
  const vnis = new Map<number, string>();
  interface Draft { t: TenantInput; i: number; cidrs: Cidr[]; dests: Cidr[]; vni: number; vniDerived: boolean }
  const drafts: Draft[] = input.tenants.map((t, i) => {
    const p = `tenants[${i}]`;
    literal(t.name, `${p}.name`, 'the tenant name', 'because it becomes Terraform ids, tags and the pod label value', '"alpha"');
    if (typeof t.name !== 'string' || !DNS_LABEL.test(t.name) || t.name.length > 40) {
      throw err(`${p}.name`, t.name, 'tenant names become Kubernetes keys, Terraform ids and tags', 'use a lowercase DNS label: a-z, 0-9 and "-", starting with a letter, at most 40 characters');
    }
    const prev = names.get(t.name);
    if (prev !== undefined) {
      throw err(`${p}.name`, t.name, `duplicate tenant name, also used by tenants[${prev}]`, 'give every tenant a unique name');
    }
    names.set(t.name, i);
    if (!t.cidrs || t.cidrs.length === 0) {
      throw err(`${p}.cidrs`, t.cidrs, `tenant "${t.name}" has no CIDRs`, 'list the tenant VPC CIDR blocks its functions must reach');
    }
    const cidrs = cidrList(t.cidrs, `${p}.cidrs`);
    cidrs.forEach((c, k) => {
      for (const r of reserved) {
        if (cidrsOverlap(c, r.cidr)) {
          throw err(`${p}.cidrs[${k}]`, t.cidrs[k], `tenant "${t.name}" CIDR ${c.text} overlaps ${r.label}, where no tenant service can be reached through a VPC`, 'list only the tenant VPC ranges its functions must reach');
        }
      }
    });
    noOverlapWithin(cidrs, `${p}.cidrs`, t.cidrs, `the gateway loads each tenant's CIDRs into one interval set, where overlapping ranges fail to load ("File exists")`);
    cidrs.forEach((c, k) => {
      for (const side of clusterSide) {
        if (cidrsOverlap(c, side.cidr)) {
          throw err(
            `${p}.cidrs[${k}]`,
            t.cidrs[k],
            `tenant "${t.name}" CIDR ${c.text} overlaps ${side.label}; pods could not route to it, because the cluster's own addresses win`,
            'renumber one side, or list only the tenant ranges that do not overlap the function VPC, pod and node CIDRs',
          );
        }
      }
    });
    const dests = t.allowedDestinations === undefined ? cidrs : cidrList(t.allowedDestinations, `${p}.allowedDestinations`);
    dests.forEach((d, k) => {
      if (!cidrs.some((tc) => cidrContains(tc, d))) {
        throw err(`${p}.allowedDestinations[${k}]`, t.allowedDestinations![k], `not inside tenant "${t.name}" CIDRs ${cidrs.map((x) => x.text).join(', ')}`, 'list destinations inside the tenant CIDRs, or add the range to cidrs');
      }
    });
    if (t.allowedDestinations !== undefined) {
      noOverlapWithin(dests, `${p}.allowedDestinations`, t.allowedDestinations, 'the node agent and the gateway load each tenant\'s destinations into one interval set, where overlapping ranges fail to load');
    }
    if (t.natIp !== undefined) {
      // Inside the tenant subnet, and not its network, broadcast or AWS-reserved address, is
      // checked at plan time (the subnet CIDR is a data source): ProxyNodePair's precondition
      // on the NAT IP reservation. Tenant cidrs may list only the services' ranges, not the
      // NAT ENI subnet, so "natIp inside cidrs" is not required here.
      const ip = parseIp(t.natIp, at(`${p}.natIp`));
      for (const side of clusterSide) {
        if (cidrContainsIp(side.cidr, ip)) {
          throw err(`${p}.natIp`, t.natIp, `tenant "${t.name}" NAT IP is inside ${side.label}, but it must be an address of the tenant's own subnet (it is the functions' source address in the tenant VPC)`, `use a free address of subnet ${t.subnetId}, or leave natIp unset`);
        }
      }
    }
    literal(t.vni, `${p}.vni`, 'the VNI', 'because it keys the tenant\'s tunnel, conntrack zone, routing table and gateway MAC in the rendered configuration', '1001');
    literal(t.pair, `${p}.pair`, 'the pair index', 'to place the tenant and decide which pairs exist', '0');
    literal(t.slot, `${p}.slot`, 'the slot', 'to place the tenant (it is the ENI device index)', '1');
    let vni: number;
    let vniDerived = false;
    if (t.vni !== undefined) {
      if (!Number.isInteger(t.vni) || t.vni < VNI_MIN || t.vni > VNI_MAX) {
        throw err(`${p}.vni`, t.vni, `a VNI is a 24-bit integer from ${VNI_MIN} to ${VNI_MAX}`, `pick an unused VNI in range (auto-derived VNIs are >= ${AUTO_VNI_FLOOR}), or leave vni unset`);
      }
      vni = t.vni;
    } else {
      vni = derivedVni(t.name);
      vniDerived = true;
    }
    const other = vnis.get(vni);
    if (other !== undefined) {
      throw err(`${p}.vni`, vni, `VNI ${vni} is already used by tenant "${other}"${vniDerived ? ' (the name-derived VNIs collide)' : ''}`, `give tenant "${t.name}" a unique vni explicitly`);
    }
    vnis.set(vni, t.name);
    return { t, i, cidrs, dests, vni, vniDerived };
  });

  // Placement: one pass in declaration order. Pinned tenants take their slot; others the
  // first free one. Retired tenants keep their slot so that nobody else moves.
  const occupied = new Map<number, Map<number, string>>(); // pair -> slot -> tenant
  const placed: TenantModel[] = [];
  const maxPairs = gw.pairCount ?? MAX_PAIRS;
  // Pin rule: without gateway.pairCount a pin may name only the pairs the listed tenants
  // (retired ones included) need when packed tightly: 0..ceil(tenants / tenantsPerMember)-1.
  // Anything further (a typo such as pair: 999) needs an explicit pairCount.
  const neededPairs = Math.max(1, Math.ceil(drafts.length / tenantsPerMember));
  for (const d of drafts) {
    const p = `tenants[${d.i}]`;
    const t = d.t;
    let pairIndex: number;
    let slot: number;
    if (t.pair !== undefined && (!Number.isInteger(t.pair) || t.pair < 0 || t.pair >= maxPairs)) {
      throw err(`${p}.pair`, t.pair, `pairs are numbered 0..${maxPairs - 1}`, 'pin an existing pair index or leave pair unset');
    }
    if (t.pair !== undefined && gw.pairCount === undefined && t.pair >= neededPairs) {
      throw err(
        `${p}.pair`,
        t.pair,
        `the ${drafts.length} listed tenant(s) need ${neededPairs} pair(s) at ${tenantsPerMember} per member, so without gateway.pairCount a pin may name pairs 0..${neededPairs - 1}`,
        `fix the pin, or set gateway.pairCount to at least ${t.pair + 1} if you mean to spread tenants over more pairs (only pairs holding tenants are built)`,
      );
    }
    if (t.slot !== undefined && (!Number.isInteger(t.slot) || t.slot < 1 || t.slot > tenantsPerMember)) {
      throw err(`${p}.slot`, t.slot, `slots on a ${typeLabel} member are 1..${tenantsPerMember}`, 'pin a slot in range or leave slot unset');
    }
    const taken = (pi: number, s: number) => occupied.get(pi)?.get(s);
    if (t.pair !== undefined && t.slot !== undefined) {
      const owner = taken(t.pair, t.slot);
      if (owner) throw err(`${p}.slot`, t.slot, `pair ${t.pair} slot ${t.slot} is already held by tenant "${owner}"`, 'pin a free slot or leave slot unset');
      pairIndex = t.pair;
      slot = t.slot;
    } else {
      const pairs = t.pair !== undefined ? [t.pair] : Array.from({ length: maxPairs }, (_, k) => k);
      let found: [number, number] | undefined;
      for (const pi of pairs) {
        const slots = t.slot !== undefined ? [t.slot] : Array.from({ length: tenantsPerMember }, (_, k) => k + 1);
        const free = slots.find((s) => !taken(pi, s));
        if (free !== undefined) {
          found = [pi, free];
          break;
        }
      }
      if (!found) {
        const active = drafts.length;
        throw err(
          t.pair !== undefined ? `${p}.pair` : 'tenants',
          t.pair !== undefined ? t.pair : `${active} tenants`,
          t.pair !== undefined
            ? `pair ${t.pair} is full (${tenantsPerMember} tenants per member on ${typeLabel})`
            : `${maxPairs} pair(s) of ${typeLabel} hold ${maxPairs * tenantsPerMember} tenants (${tenantsPerMember} per member); tenant "${t.name}" does not fit`,
          gw.pairCount !== undefined && gw.pairCount < MAX_PAIRS
            ? 'raise gateway.pairCount, pick an instance type with more network interfaces, or retire tenants'
            : `pick an instance type with more network interfaces, or retire tenants: one CrossVpcNat manages at most ${MAX_PAIRS} pairs, and a second one for the same function VPC or gateway subnet is refused`,
        );
      }
      [pairIndex, slot] = found;
    }
    if (!occupied.has(pairIndex)) occupied.set(pairIndex, new Map());
    occupied.get(pairIndex)!.set(slot, t.name);
    placed.push({
      name: t.name,
      vpcId: t.vpcId,
      subnetId: t.subnetId,
      cidrs: d.cidrs.map((c) => c.text),
      destinations: d.dests.map((c) => c.text),
      vni: d.vni,
      vniDerived: d.vniDerived,
      zone: conntrackZone(d.vni),
      table: tenantTable(d.vni),
      pairIndex,
      slot,
      gatewayMac: gatewayMac(pairIndex, d.vni),
      natIp: t.natIp,
      availabilityZone: t.availabilityZone,
      retired: t.retired === true,
    });
  }

  // Checks that need the placement.
  placed.forEach((t, i) => {
    const p = `tenants[${i}]`;
    // An AZ token is fine: the NAT ENI attachment's precondition compares the real AZs at plan time.
    const azKnown = t.availabilityZone && gw.availabilityZone && !isUnresolved(t.availabilityZone) && !isUnresolved(gw.availabilityZone);
    if (azKnown && t.availabilityZone !== gw.availabilityZone) {
      throw err(
        `${p}.availabilityZone`,
        t.availabilityZone,
        `tenant "${t.name}" subnet is in ${t.availabilityZone} but pair ${t.pairIndex} runs in ${gw.availabilityZone}; EC2 attaches a multi-VPC ENI only within its own AZ`,
        `give a tenant subnet in ${gw.availabilityZone}`,
      );
    }
    for (const o of placed.slice(0, i)) {
      if (o.pairIndex !== t.pairIndex || o.retired || t.retired) continue;
      if (o.zone === t.zone) {
        throw err(`${p}.vni`, t.vni, `its conntrack zone ${t.zone} equals tenant "${o.name}" (VNI ${o.vni}) on the same pair`, `give tenant "${t.name}" another vni explicitly`);
      }
      if (o.subnetId === t.subnetId && !t.natIp) {
        throw err(`${p}.natIp`, t.natIp, `tenant "${t.name}" shares subnet ${t.subnetId} with tenant "${o.name}" on pair ${t.pairIndex}, so the default NAT IP would collide`, 'set natIp explicitly for one of them');
      }
    }
    for (const o of placed.slice(0, i)) {
      if (o.retired || t.retired || !t.natIp || o.natIp !== t.natIp || o.subnetId !== t.subnetId) continue;
      throw err(`${p}.natIp`, t.natIp, `tenant "${o.name}" already uses NAT IP ${t.natIp} in subnet ${t.subnetId}`, 'give each tenant in a shared subnet its own natIp');
    }
  });

  const active = placed.filter((t) => !t.retired);
  const pairCount = gw.pairCount ?? Math.max(1, ...placed.map((t) => t.pairIndex + 1));
  const pairs: PairModel[] = Array.from({ length: pairCount }, (_, index) => ({
    index,
    tenants: active.filter((t) => t.pairIndex === index).sort((a, b) => a.slot - b.slot),
  }));
  const policies: NatPolicy[] = active.flatMap((t) =>
    nodeCidrs.flatMap((src) => t.destinations.map((dst) => ({ tenant: t.name, vni: t.vni, sourceCidr: src.text, destinationCidr: dst }))),
  );
  if (active.length === 0) {
    throw err('tenants', input.tenants.map((t) => t.name), 'every tenant is retired, so there is nothing to connect', 'keep at least one active tenant');
  }

  return {
    functionVpc: {
      vpcId: fv.vpcId,
      nodeSubnetIds: [...fv.nodeSubnetIds],
      vpcCidr: vpcCidr.text,
      podCidrs: podCidrs.map((c) => c.text),
      nodeCidrs: nodeCidrs.map((c) => c.text),
      nodeSecurityGroupId: fv.nodeSecurityGroupId,
    },
    gatewaySubnetId: gw.subnetId,
    gatewayAvailabilityZone: gw.availabilityZone,
    instanceType,
    tenantsPerMember,
    tunnel,
    underlayMtu,
    tunnelMtu,
    tcpMss: tunnelMtu - 40,
    pairs,
    tenants: active,
    policies,
  };
}

export { cidrContainsIp };
