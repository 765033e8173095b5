// Internet egress through a platform Elastic IP, gateway side: the tenant table's cells and the
// ruleset's pieces. Kept apart from the NAT-policy ruleset so other modes change it independently.
import { NO_EIP } from '../contract/egress';
import type { TenantTableRow } from '../contract/tenant-table';
import { tunnelDev } from '../contract/names';
import { isEipEgress } from '../model/eip-egress';
import type { TenantModel } from '../model/model-types';
import { list, NOT_FROM_TENANT, q } from './nft-syntax';

/** The egress cells of a tenant's row. */
export function egressCells(t: TenantModel): Pick<TenantTableRow, 'egress' | 'egressIp' | 'eipAllocationId'> {
  if (isEipEgress(t.internetEgress)) return { egress: 'eip', egressIp: t.internetEgress.privateIp, eipAllocationId: t.internetEgress.eipAllocationId };
  return { egress: t.internetEgress === 'tenantVpc' ? 'tenant_vpc' : 'none', egressIp: NO_EIP, eipAllocationId: NO_EIP };
}

/** What the ruleset needs of each EIP tenant. */
export interface EipRulesetTenant {
  readonly vni: number;
  readonly zone: number;
  readonly table: number;
  readonly egress: string;
  readonly egressIp: string;
}

/**
 * The ruleset's EIP egress pieces, per place. Outbound: a tenant's tunnel to anything but a
 * tenant ENI or tunnel (that is, the underlay, the tenant table's default), public destinations
 * only, SNATed to the tenant's egress IP. Inbound: a packet to an egress IP from outside the
 * tenant devices takes the tenant's conntrack zone (so a reply finds its connection) and fwmark
 * (so the de-NATed reply routes into the tunnel by the tenant table); what is not a reply stays
 * addressed to the gateway itself and is dropped at input.
 */
export function eipRulesetParts(tenants: readonly EipRulesetTenant[], connLimitPerTenant: number) {
  const eip = tenants.filter((t) => t.egress === 'eip');
  const toUnderlay = 'iifname @eip_tunnels oifname != @tenant_ifs oifname != @tunnel_ifs ip saddr @node_cidrs ip daddr != @non_public';
  return {
    declarations: [
      `  set eip_tunnels { type ifname;${list(eip.map((t) => q(tunnelDev(t.vni))))} }`,
      `  map egress_ip_of_if { typeof iifname : ip saddr;${list(eip.map((t) => `${q(tunnelDev(t.vni))} : ${t.egressIp}`))} }`,
      `  set egress_ips { type ipv4_addr;${list(eip.map((t) => t.egressIp))} }`,
      `  map zone_of_egress_ip { typeof ip daddr : ct zone;${list(eip.map((t) => `${t.egressIp} : ${t.zone}`))} }`,
      `  map mark_of_egress_ip { typeof ip daddr : meta mark;${list(eip.map((t) => `${t.egressIp} : ${t.table}`))} }`,
    ].join('\n'),
    preRaw: `    ${NOT_FROM_TENANT} ip daddr @egress_ips ct zone set ip daddr map @zone_of_egress_ip`,
    preMangle: `    ${NOT_FROM_TENANT} ip daddr @egress_ips meta mark set ip daddr map @mark_of_egress_ip`,
    // After the de-NAT of replies (dstnat), only new traffic to an egress IP is still addressed to it.
    input: '    ip daddr @egress_ips counter name to_gateway drop',
    forward: [
      '    # Internet egress through an EIP: public destinations only, out the underlay, SNATed in post_nat.',
      `    ${toUnderlay} add @tenant_conns { ct zone ct count over ${connLimitPerTenant} } counter name over_limit drop`,
      `    ${toUnderlay} goto accepted`,
    ].join('\n'),
    postNat: `    ${toUnderlay} snat ip to iifname map @egress_ip_of_if`,
  };
}
