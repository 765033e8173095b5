import { inboundSnatPorts, inboundTable } from '../contract/ingress';
import { hex, tenantDev } from '../contract/names';
import { GatewayMemberSpec } from './gateway-spec';
import { list, NOT_FROM_TENANT, q } from './nft-syntax';

/** The ruleset's ingress parts, each placed where renderGatewayRuleset says. */
export interface IngressRules {
  readonly declarations: string;
  readonly preRaw: string;
  readonly preMangle: string;
  /** Whole chains of their own (DNAT, and the routing of forwarded flows). */
  readonly chains: string;
  readonly forward: string;
  readonly postNat: string;
}

/**
 * Port forwards on the tenants' NAT IPs (seed 001). The DNAT map, keyed by the tenant ENI,
 * the NAT IP, protocol and port, is the allow-list: a packet it does not match is for the
 * gateway itself and input drops it as to_gateway. A forwarded flow is SNATed to the HaVip
 * with the tenant's port range (by slot): replies reach whichever member holds the HaVip,
 * and their port alone gives the tenant's conntrack zone (overlapping clients stay apart)
 * and its inbound routing table (a default out of the tenant ENI).
 */
export function renderIngressRules(spec: GatewayMemberSpec, connLimit: string): IngressRules {
  const ts = spec.tenants.filter((t) => t.inbound.length > 0);
  const dnat = ts.flatMap((t) => t.inbound.map((f) => `${q(tenantDev(t.vni))} . ${t.natIp} . ${f.protocol} . ${f.port} : ${f.targetIp} . ${f.targetPort}`));
  const range = (slot: number) => {
    const r = inboundSnatPorts(slot);
    return `${r.from}-${r.to}`;
  };
  const snat = ts.map((t) => `${q(tenantDev(t.vni))} : ${spec.haVip}-${spec.haVip} . ${range(t.slot)}`);
  const zoneOf = ts.map((t) => `${range(t.slot)} : ${t.zone}`);
  const markOf = ts.map((t) => `${range(t.slot)} : ${hex(inboundTable(t.table))}`);
  const fromFunctionSide = `${NOT_FROM_TENANT} ip daddr ${spec.haVip} meta l4proto { tcp, udp }`;
  const leavesToFunctionSide = 'iifname @tenant_ifs ct status dnat oifname != @tenant_ifs oifname != @tunnel_ifs';
  return {
    declarations: `  map inbound_dnat { typeof iifname . ip daddr . meta l4proto . th dport : ip daddr . th dport;${list(dnat)} }
  map inbound_snat_of_if { type ifname : interval ipv4_addr . inet_service; flags interval;${list(snat)} }
  map inbound_zone_of_port { typeof th dport : ct zone; flags interval;${list(zoneOf)} }
  map inbound_mark_of_port { typeof th dport : meta mark; flags interval;${list(markOf)} }`,
    preRaw: `    # Replies of port forwards: the SNAT port on the HaVip names the tenant's zone.
    ${fromFunctionSide} ct zone set th dport map @inbound_zone_of_port`,
    preMangle: `    ${fromFunctionSide} ct direction reply meta mark set th dport map @inbound_mark_of_port`,
    chains: `  chain pre_dnat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @tenant_ifs dnat ip to iifname . ip daddr . meta l4proto . th dport map @inbound_dnat
  }

  chain pre_inbound_route {
    type filter hook prerouting priority dstnat + 10; policy accept;
    # A forwarded flow leaves by the main table (the function VPC), not by the tenant's table.
    ct status dnat iifname @tenant_ifs ct direction original meta mark set 0
  }`,
    forward: `    # Port forwards (seed 001): only what the DNAT map forwarded, only to the function side.
    ${leavesToFunctionSide} add @tenant_conns { ct zone ct count over ${connLimit} } counter name over_limit drop
    ${leavesToFunctionSide} goto accepted`,
    postNat: `    iifname @tenant_ifs ct status dnat meta l4proto { tcp, udp } snat ip to iifname map @inbound_snat_of_if`,
  };
}

