import { Cidr, cidrContainsIp, cidrsOverlap, parseCidr, parseIp } from './cidr';
import { CrossVpcError, isUnresolvedToken } from './errors';
import { tenantCapacity } from './eni-capacity';
import { AUTO_VNI_FLOOR, conntrackZone, derivedVni, gatewayMac, tenantTable, VNI_MAX, VNI_MIN } from './identity';

/** Tunnel encapsulation between nodes and gateways. */
export type TunnelType = 'vxlan' | 'gre';

/** Bytes each tunnel adds: VXLAN = IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14; keyed GRE = IPv4 20 + GRE 4 + key 4. */
export const TUNNEL_OVERHEAD: Readonly<Record<TunnelType, number>> = { vxlan: 50, gre: 28 };
/** Smallest inner MTU we accept: the IPv6 minimum, below which real stacks misbehave. */
export const MIN_INNER_MTU = 1280;
/** The AWS in-VPC jumbo MTU. */
export const AWS_VPC_MTU = 9001;
export const VXLAN_PORT = 4789;
/** Link-local next hop that nodes route tenant traffic to; resolves to the (pair, VNI) MAC. */
export const TUNNEL_NEXT_HOP = '169.254.0.1';

export interface FunctionVpcInput {
  readonly vpcId: string;
  readonly nodeSubnetIds: string[];
  readonly vpcCidr: string;
  readonly podCidrs?: string[];
  readonly nodeCidrs?: string[];
  readonly nodeSecurityGroupId?: string;
}

export interface TenantInput {
  readonly name: string;
  readonly vpcId: string;
  readonly subnetId: string;
  readonly cidrs: string[];
  readonly vni?: number;
  readonly allowedDestinations?: string[];
  readonly natIp?: string;
  readonly pair?: number;
  readonly slot?: number;
  readonly availabilityZone?: string;
  readonly retired?: boolean;
}

export interface GatewayInput {
  readonly subnetId: string;
  readonly instanceType?: string;
  readonly tenantsPerMember?: number;
  readonly pairCount?: number;
  readonly tunnel?: TunnelType;
  readonly mtu?: number;
  readonly availabilityZone?: string;
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
  readonly pairs: PairModel[];
  /** Active tenants in declaration order. */
  readonly tenants: TenantModel[];
  readonly policies: NatPolicy[];
}

export const DEFAULT_INSTANCE_TYPE = 'c6in.xlarge';
/** Pairs one CrossVpcNat manages; the default NAT IP and HaVip count down from the top of a subnet per pair. */
export const MAX_PAIRS = 1000;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function buildCrossVpcModel(
  path: string,
  input: { functionVpc: FunctionVpcInput; tenants: TenantInput[]; gateway: GatewayInput },
): CrossVpcModel {
  const fv = input.functionVpc;
  const err = (prop: string, value: unknown, problem: string, fix: string) =>
    new CrossVpcError({ path, prop, value, problem, fix });

  const vpcCidr = parseCidr(fv.vpcCidr, { path, prop: 'functionVpc.vpcCidr' });
  const podCidrs = (fv.podCidrs ?? []).map((c, i) => parseCidr(c, { path, prop: `functionVpc.podCidrs[${i}]` }));
  const nodeCidrs = (fv.nodeCidrs ?? [fv.vpcCidr]).map((c, i) => parseCidr(c, { path, prop: `functionVpc.nodeCidrs[${i}]` }));
  if (!fv.nodeSubnetIds || fv.nodeSubnetIds.length === 0) {
    throw err('functionVpc.nodeSubnetIds', fv.nodeSubnetIds, 'no node subnets given', 'list the subnet ids the cluster nodes run in');
  }
  const clusterSide: Array<{ cidr: Cidr; label: string }> = [
    { cidr: vpcCidr, label: `functionVpc.vpcCidr ${vpcCidr.text}` },
    ...podCidrs.map((c, i) => ({ cidr: c, label: `functionVpc.podCidrs[${i}] ${c.text}` })),
  ];

  const gw = input.gateway;
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

  // Validate each tenant on its own.
  const names = new Map<string, number>();
  const vnis = new Map<number, string>();
  interface Draft { t: TenantInput; i: number; cidrs: Cidr[]; dests: Cidr[]; vni: number; vniDerived: boolean }
  const drafts: Draft[] = input.tenants.map((t, i) => {
    const p = `tenants[${i}]`;
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
    const cidrs = t.cidrs.map((c, k) => parseCidr(c, { path, prop: `${p}.cidrs[${k}]` }));
    cidrs.forEach((c, k) => {
      for (const side of clusterSide) {
        if (cidrsOverlap(c, side.cidr)) {
          throw err(
            `${p}.cidrs[${k}]`,
            t.cidrs[k],
            `tenant "${t.name}" CIDR ${c.text} overlaps ${side.label}; pods could not route to it, because the cluster's own addresses win`,
            'renumber one side, or list only the tenant ranges that do not overlap the function VPC and pod CIDRs',
          );
        }
      }
    });
    const dests = (t.allowedDestinations ?? t.cidrs).map((c, k) => {
      const d = parseCidr(c, { path, prop: `${p}.allowedDestinations[${k}]` });
      if (!cidrs.some((tc) => tc.network <= d.network && d.network + 2 ** (32 - d.prefix) <= tc.network + 2 ** (32 - tc.prefix))) {
        throw err(`${p}.allowedDestinations[${k}]`, c, `not inside tenant "${t.name}" CIDRs ${cidrs.map((x) => x.text).join(', ')}`, 'list destinations inside the tenant CIDRs, or add the range to cidrs');
      }
      return d;
    });
    if (t.natIp !== undefined) parseIp(t.natIp, { path, prop: `${p}.natIp` });
    let vni: number;
    let vniDerived = false;
    if (t.vni !== undefined) {
      if (isUnresolvedToken(t.vni) || !Number.isInteger(t.vni) || t.vni < VNI_MIN || t.vni > VNI_MAX) {
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
  for (const d of drafts) {
    const p = `tenants[${d.i}]`;
    const t = d.t;
    let pairIndex: number;
    let slot: number;
    if (t.pair !== undefined && (!Number.isInteger(t.pair) || t.pair < 0 || t.pair >= maxPairs)) {
      throw err(`${p}.pair`, t.pair, `pairs are numbered 0..${maxPairs - 1}`, 'pin an existing pair index or leave pair unset');
    }
    if (t.slot !== undefined && (!Number.isInteger(t.slot) || t.slot < 1 || t.slot > tenantsPerMember)) {
      throw err(`${p}.slot`, t.slot, `slots on a ${instanceType} member are 1..${tenantsPerMember}`, 'pin a slot in range or leave slot unset');
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
            ? `pair ${t.pair} is full (${tenantsPerMember} tenants per member on ${instanceType})`
            : `${maxPairs} pair(s) of ${instanceType} hold ${maxPairs * tenantsPerMember} tenants (${tenantsPerMember} per member); tenant "${t.name}" does not fit`,
          gw.pairCount !== undefined && gw.pairCount < MAX_PAIRS
            ? 'raise gateway.pairCount, pick an instance type with more network interfaces, or retire tenants'
            : 'pick an instance type with more network interfaces, or split the tenants over several CrossVpcNat constructs',
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
    if (t.availabilityZone && gw.availabilityZone && t.availabilityZone !== gw.availabilityZone) {
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
