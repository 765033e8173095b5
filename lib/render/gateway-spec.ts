import { GATEWAY_METRICS_PORT } from '../contract/gateway-metrics';
import type { TenantTableRow } from '../contract/tenant-table';
import { CrossVpcModel, TunnelType, VXLAN_PORT } from '../model/crossvpc-model';
import { egressCells } from './gateway-eip';

/**
 * Everything one gateway member's configuration is rendered from. Values marked
 * "deploy-time" are Terraform references in a real plan (known only after apply);
 * renderers treat them as opaque strings and never parse them.
 */
export interface GatewayMemberSpec {
  readonly pairIndex: number;
  readonly member: 'a' | 'b';
  /** deploy-time: this member's and the peer's primary (function-side) IPs. */
  readonly selfIp: string;
  readonly peerIp: string;
  /** deploy-time: this member's primary ENI id (the HaVip moves onto it). */
  readonly selfEniId: string;
  /** deploy-time: the peer's primary ENI id (a member stepping down hands the HaVip to it). */
  readonly peerEniId: string;
  /** deploy-time or literal: the pair's tunnel endpoint. */
  readonly haVip: string;
  readonly tunnel: TunnelType;
  readonly tunnelMtu: number;
  readonly underlayMtu: number;
  readonly nodeCidrs: string[];
  /** The function VPC's own ranges (VPC, pod, node, Service CIDRs): never the internet, even when they are public space. */
  readonly clusterCidrs: string[];
  /** VRRP router id; unique per pair within the function subnet. */
  readonly vrid: number;
  /** VRRP advert interval in seconds (sub-second needs VRRPv3). */
  readonly advertIntervalSec: number;
  /** Per-tenant ceiling on tracked connections, so one tenant cannot exhaust the table. */
  readonly connLimitPerTenant: number;
  /** The pair document's SSM parameter name (member user data names it; it holds the tenants). */
  readonly configParameter: string;
  /** Seconds between the reconciler's reads of the document. */
  readonly configPollSec: number;
  /** node_exporter's port on selfIp. */
  readonly metricsPort: number;
  /** Whether the member runs crossvpc-metrics and node_exporter (someone may scrape them). */
  readonly metrics: boolean;
  readonly tenants: GatewayTenantSpec[];
}

/** One tenant on one member: exactly a row of the tenant table (tenants.tsv). */
export interface GatewayTenantSpec extends TenantTableRow {
  readonly destinations: string[];
  /** The ENI slot: it picks the tenant's SNAT port range for forwarded flows. */
  readonly slot: number;
}

/** Deploy-time values of one member, supplied by the construct (or the emulator's stand-ins). */
export interface MemberBindings {
  readonly selfIp: string;
  readonly peerIp: string;
  readonly selfEniId: string;
  readonly peerEniId: string;
  readonly haVip: string;
  readonly tenants: Record<string, { natIp: string; eniId: string; eniMac: string; eniIp: string; subnetCidr: string; routerIp: string }>;
}

export interface MemberOptions {
  readonly advertIntervalSec: number;
  readonly connLimitPerTenant: number;
  readonly configParameter: string;
  readonly configPollSec: number;
  /** node_exporter's port on the member's own address (default GATEWAY_METRICS_PORT). */
  readonly metricsPort?: number;
  /** Ship and run the metrics (default false: user data stays small). */
  readonly metrics?: boolean;
}

export function buildGatewayMemberSpec(
  model: CrossVpcModel,
  pairIndex: number,
  member: 'a' | 'b',
  bind: MemberBindings,
  opts: MemberOptions,
): GatewayMemberSpec {
  const pair = model.pairs[pairIndex];
  return {
    pairIndex,
    member,
    selfIp: bind.selfIp,
    peerIp: bind.peerIp,
    selfEniId: bind.selfEniId,
    peerEniId: bind.peerEniId,
    haVip: bind.haVip,
    tunnel: model.tunnel,
    tunnelMtu: model.tunnelMtu,
    underlayMtu: model.underlayMtu,
    nodeCidrs: [...model.functionVpc.nodeCidrs],
    clusterCidrs: [...new Set([model.functionVpc.vpcCidr, ...model.functionVpc.podCidrs, ...model.functionVpc.nodeCidrs, ...(model.functionVpc.serviceCidr ? [model.functionVpc.serviceCidr] : [])])],
    vrid: (pairIndex % 254) + 1,
    advertIntervalSec: opts.advertIntervalSec,
    connLimitPerTenant: opts.connLimitPerTenant,
    configParameter: opts.configParameter,
    configPollSec: opts.configPollSec,
    metricsPort: opts.metricsPort ?? GATEWAY_METRICS_PORT,
    metrics: opts.metrics ?? false,
    tenants: pair.tenants.map((t) => {
      const b = bind.tenants[t.name];
      if (!b) throw new Error(`no deploy-time bindings for tenant ${t.name}`);
      return {
        name: t.name,
        vni: t.vni,
        zone: t.zone,
        table: t.table,
        gatewayMac: t.gatewayMac,
        destinations: [...t.destinations],
        ...egressCells(t),
        inbound: t.inbound.map((f) => ({ ...f })),
        slot: t.slot,
        ...b,
      };
    }),
  };
}

export const VXLAN_UDP_PORT = VXLAN_PORT;
export const CONNTRACKD_SYNC_PORT = 3780;
/**
 * How long a listed tenant may lack its devices before it counts against its member's VRRP
 * priority: EC2 attaches or detaches an ENI within seconds of the document changing, in
 * either order, and neither order may cost a failover.
 */
export const TENANT_GRACE_SEC = 60;
export { CONF_DIR, RUN_DIR, tenantDev, tunnelDev } from '../contract/names';
