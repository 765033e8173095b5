import { Cidr, cidrContainsIp, parseCidr, parseIp, rejectToken, Where } from './cidr';
import { Checker } from './checker';
import { CrossVpcError } from './errors';
import { tenantCapacity } from './eni-capacity';
import { GatewayInput, TunnelType } from './inputs';

/** Bytes each tunnel adds: VXLAN = IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14; keyed GRE = IPv4 20 + GRE 4 + key 4. */
export const TUNNEL_OVERHEAD: Readonly<Record<TunnelType, number>> = { vxlan: 50, gre: 28 };
/** Smallest inner MTU we accept: the IPv6 minimum, below which real stacks misbehave. */
export const MIN_INNER_MTU = 1280;
/** The AWS in-VPC jumbo MTU. */
export const AWS_VPC_MTU = 9001;

export const DEFAULT_INSTANCE_TYPE = 'c6in.xlarge';
/** nf_conntrack_max on each member unless ProxyNodePairOptions.conntrackMax says otherwise. */
export const DEFAULT_CONNTRACK_MAX = 262144;
export const DEFAULT_CONN_LIMIT_PER_TENANT = 65536;
/** Pairs one CrossVpcNat manages; the default NAT IP and HaVip count down from the top of a subnet per pair. */
export const MAX_PAIRS = 1000;

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

/** What the gateway's shape settles: the tunnel, its MTUs and how many tenants a member holds. */
export interface GatewayShape {
  readonly tunnel: TunnelType;
  readonly underlayMtu: number;
  readonly tunnelMtu: number;
  readonly instanceType: string;
  /** The instance type as errors name it ("the given instance type" for a token). */
  readonly typeLabel: string;
  readonly tenantsPerMember: number;
}

/** Tunnel, MTU, instance type, tenants per member and pair count: everything placement depends on. */
export function checkGatewayShape(gw: GatewayInput, c: Checker): GatewayShape {
  c.literal(gw.tunnel, 'gateway.tunnel', 'the tunnel type', 'to render the node agent and gateway configuration', '"vxlan"');
  c.literal(gw.mtu, 'gateway.mtu', 'the MTU', 'to derive the tunnel MTU and TCP MSS written into the gateway and agent configuration', '9001');
  c.literal(gw.tenantsPerMember, 'gateway.tenantsPerMember', 'the tenants per member', 'to place tenants on pairs and slots', '3');
  c.literal(gw.pairCount, 'gateway.pairCount', 'the pair count', 'to decide which pairs exist', '2');
  const tunnel: TunnelType = gw.tunnel ?? 'vxlan';
  if (tunnel !== 'vxlan' && tunnel !== 'gre') {
    throw c.err('gateway.tunnel', gw.tunnel, 'unknown tunnel type', 'use "vxlan" (default) or "gre"');
  }
  const underlayMtu = gw.mtu ?? AWS_VPC_MTU;
  const overhead = TUNNEL_OVERHEAD[tunnel];
  if (!Number.isInteger(underlayMtu) || underlayMtu - overhead < MIN_INNER_MTU || underlayMtu > AWS_VPC_MTU) {
    throw c.err(
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
  const typeIsToken = c.isUnresolved(instanceType);
  const typeLabel = typeIsToken ? 'the given instance type' : instanceType;
  if (typeIsToken && gw.tenantsPerMember === undefined) {
    throw c.err(
      'gateway.instanceType',
      instanceType,
      'it is an unresolved Terraform token, so the built-in ENI table cannot tell how many tenants a member holds',
      'set gateway.tenantsPerMember to (maximum network interfaces of the type - 1); the plan re-checks it against aws_ec2_instance_type, or pass the instance type as a literal',
    );
  }
  const tenantsPerMember = gw.tenantsPerMember ?? tenantCapacity(instanceType);
  if (tenantsPerMember === undefined) {
    throw c.err(
      'gateway.instanceType',
      instanceType,
      'its ENI limit is not in the built-in table',
      'set gateway.tenantsPerMember to (maximum network interfaces of the type - 1); the plan re-checks it against aws_ec2_instance_type',
    );
  }
  if (!Number.isInteger(tenantsPerMember) || tenantsPerMember < 1 || tenantsPerMember > 1023) {
    throw c.err('gateway.tenantsPerMember', tenantsPerMember, 'must be an integer from 1 to 1023', 'use the instance type\'s maximum network interfaces minus one');
  }
  if (gw.pairCount !== undefined && (!Number.isInteger(gw.pairCount) || gw.pairCount < 1 || gw.pairCount > MAX_PAIRS)) {
    throw c.err('gateway.pairCount', gw.pairCount, `must be an integer from 1 to ${MAX_PAIRS}`, 'leave it unset to add pairs as tenants need them');
  }
  return { tunnel, underlayMtu, tunnelMtu, instanceType, typeLabel, tenantsPerMember };
}

/** Gateway addresses and limits (HaVips, SSH CIDRs, conntrack sizes): strict, and never a token. */
export function checkGatewayAddresses(gw: GatewayInput, podCidrs: Cidr[], c: Checker): void {
  const haVipText = new Map<string, number>();
  c.literal(gw.haVips, 'gateway.haVips', 'the HaVip list', 'to check the addresses and render them into the agent and gateway configuration', '["10.0.255.250"]');
  (gw.haVips ?? []).forEach((v, i) => {
    const ip = parseIp(v, c.at(`gateway.haVips[${i}]`));
    const prev = haVipText.get(ip);
    if (prev !== undefined) {
      throw c.err(`gateway.haVips[${i}]`, v, `pair ${i} would share its HaVip with pair ${prev}: each pair's keepalived moves its HaVip on its own`, 'give every pair its own free address of the gateway subnet, or leave haVips unset');
    }
    // In the gateway subnet, not its network/broadcast/AWS-reserved address: a plan-time
    // precondition on the HaVip reservation (the subnet CIDR is a data source).
    podCidrs.forEach((p, k) => {
      if (cidrContainsIp(p, ip)) {
        throw c.err(`gateway.haVips[${i}]`, v, `inside functionVpc.podCidrs[${k}] ${p.text}, an overlay pod range, not a gateway subnet address`, 'use a free address of the gateway subnet');
      }
    });
    haVipText.set(ip, i);
  });
  c.literal(gw.sshCidrs, 'gateway.sshCidrs', 'the SSH CIDR list', 'to validate it and create one security group rule per CIDR', '["203.0.113.0/24"]');
  (gw.sshCidrs ?? []).forEach((s, i) => parseCidr(s, c.at(`gateway.sshCidrs[${i}]`)));
  const conntrackMax = gw.conntrackMax === undefined ? DEFAULT_CONNTRACK_MAX : checkConntrackMax(gw.conntrackMax, c.at('gateway.conntrackMax'));
  if (gw.connLimitPerTenant !== undefined) checkConnLimitPerTenant(gw.connLimitPerTenant, conntrackMax, c.at('gateway.connLimitPerTenant'));
}
