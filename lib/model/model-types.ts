import type { InboundForward } from '../contract/ingress';
import { InternetEgress, TunnelType } from './inputs';

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
  /** Public destinations through the tenant VPC (seed 000's default policy). */
  readonly internetEgress: InternetEgress;
  /** Port forwards on the NAT IP into the function VPC (seed 001), in declaration order. */
  readonly inbound: InboundForward[];
}

/** One security-group rule's protocol and ports on the peering path. */
export type PeeringPort = { readonly protocol: 'all' } | { readonly protocol: 'icmp' } | { readonly protocol: 'tcp' | 'udp'; readonly fromPort: number; readonly toPort: number };

export interface PeeringModel {
  readonly functionRouteTableIds: string[];
  readonly tenantRouteTableIds: string[];
  readonly tenantSecurityGroupIds: string[];
  readonly ports: PeeringPort[];
  readonly peerOwnerId?: string;
  readonly peerRegion?: string;
}

/** A tenant reached through VPC peering: no pair, slot, NAT ENI or tunnel. */
export interface PeeredTenantModel {
  readonly name: string;
  readonly vpcId: string;
  readonly cidrs: string[];
  readonly destinations: string[];
  /** Identity only (the tenant keeps it if its path changes): keys the node mark, never a tunnel. */
  readonly vni: number;
  /** The node's fwmark for the tenant's pods (tenantTable(vni)); no routing table uses it. */
  readonly mark: number;
  readonly peering: PeeringModel;
  /** What the tenant sees as the source: functionVpc.podCidrs when given, else nodeCidrs. */
  readonly sources: string[];
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
    readonly serviceCidr?: string;
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
  /** Active NAT-path tenants in declaration order. */
  readonly tenants: TenantModel[];
  /** Active peering-path tenants in declaration order. */
  readonly peered: PeeredTenantModel[];
  readonly policies: NatPolicy[];
}

/** The pairs a model builds: those holding at least one active tenant, by index. */
export function pairsInUse(model: CrossVpcModel): PairModel[] {
  return model.pairs.filter((p) => p.tenants.length > 0);
}
