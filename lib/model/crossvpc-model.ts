// The model's entry: buildCrossVpcModel runs the checks in order (function VPC, gateway
// shape, tenants, placement) and assembles the result; the rest of lib imports the model's
// types and constants from here.
import { cidrContainsIp } from './cidr';
import { checkerAt } from './checker';
import { isUnresolvedToken } from './errors';
import { checkEipEgressAddresses } from './eip-egress';
import { checkFunctionVpc } from './function-vpc-checks';
import { checkGatewayAddresses, checkGatewayShape } from './gateway-checks';
import { FunctionVpcInput, GatewayInput, TenantInput } from './inputs';
import { tenantTable } from './identity';
import { checkInbound, checkInboundSlots } from './ingress-checks';
import { CrossVpcModel, NatPolicy, PairModel, PeeredTenantModel } from './model-types';
import { resolvePaths } from './peering-checks';
import { checkPlacement, placeTenants } from './placement';
import { checkTenants } from './tenant-checks';

export * from './inputs';
export * from './model-types';
export {
  AWS_VPC_MTU, checkConnLimitPerTenant, checkConntrackMax, DEFAULT_CONN_LIMIT_PER_TENANT, DEFAULT_CONNTRACK_MAX, DEFAULT_INSTANCE_TYPE, MAX_PAIRS, MIN_INNER_MTU, TUNNEL_OVERHEAD,
} from './gateway-checks';
export { RESERVED_TENANT_RANGES } from './tenant-checks';
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

export function buildCrossVpcModel(
  path: string,
  input: { functionVpc: FunctionVpcInput; tenants: TenantInput[]; gateway: GatewayInput },
  options: BuildOptions = {},
): CrossVpcModel {
  const fv = input.functionVpc;
  const gw = input.gateway;
  const c = checkerAt(path, options.isUnresolved ?? isUnresolvedToken);

  // The order of the checks is the order of the errors a user meets: keep it.
  const { vpcCidr, podCidrs, nodeCidrs, clusterSide, serviceCidr } = checkFunctionVpc(fv, c);
  const shape = checkGatewayShape(gw, c);
  if (!input.tenants || input.tenants.length === 0) {
    throw c.err('tenants', input.tenants, 'the tenant list is empty, so there is nothing to connect', 'pass at least one tenant');
  }
  checkGatewayAddresses(gw, podCidrs, c);
  const drafts = checkTenants(input.tenants, clusterSide, c, serviceCidr).map((d) => ({ ...d, inbound: checkInbound(d.t, `tenants[${d.i}]`, vpcCidr, gw, c) }));
  const paths = resolvePaths(drafts, c);
  const placed = placeTenants(drafts, paths, gw, shape, c);
  checkPlacement(placed, gw, c);
  checkInboundSlots(placed, input.tenants, c);
  checkEipEgressAddresses(input.tenants, gw, vpcCidr, podCidrs, c);

  const active = placed.filter((t) => !t.retired);
  const sources = (podCidrs.length > 0 ? podCidrs : nodeCidrs).map((x) => x.text);
  const peered: PeeredTenantModel[] = drafts
    .filter((d, k) => paths[k] === 'peering' && !d.t.retired)
    .map((d) => ({
      name: d.t.name, vpcId: d.t.vpcId, cidrs: d.cidrs.map((x) => x.text), destinations: d.dests.map((x) => x.text),
      vni: d.vni, mark: tenantTable(d.vni), peering: d.peering!, sources,
    }));
  const pairCount = gw.pairCount ?? Math.max(1, ...placed.map((t) => t.pairIndex + 1));
  const pairs: PairModel[] = Array.from({ length: pairCount }, (_, index) => ({
    index,
    tenants: active.filter((t) => t.pairIndex === index).sort((a, b) => a.slot - b.slot),
  }));
  const policies: NatPolicy[] = active.flatMap((t) =>
    nodeCidrs.flatMap((src) => t.destinations.map((dst) => ({ tenant: t.name, vni: t.vni, sourceCidr: src.text, destinationCidr: dst }))),
  );
  if (active.length + peered.length === 0) {
    throw c.err('tenants', input.tenants.map((t) => t.name), 'every tenant is retired, so there is nothing to connect', 'keep at least one active tenant');
  }
  if (active.length === 0) {
    throw c.err('tenants', input.tenants.map((t) => t.name), 'no active tenant takes the NAT path, so no gateway pair would be built and the gateway settings would mean nothing', 'keep at least one NAT tenant in this CrossVpcNat, or peer these VPCs without it');
  }

  return {
    functionVpc: {
      vpcId: fv.vpcId,
      nodeSubnetIds: [...fv.nodeSubnetIds],
      vpcCidr: vpcCidr.text,
      podCidrs: podCidrs.map((p) => p.text),
      nodeCidrs: nodeCidrs.map((n) => n.text),
      serviceCidr: serviceCidr?.cidr.text,
      nodeSecurityGroupId: fv.nodeSecurityGroupId,
    },
    gatewaySubnetId: gw.subnetId,
    gatewayAvailabilityZone: gw.availabilityZone,
    instanceType: shape.instanceType,
    tenantsPerMember: shape.tenantsPerMember,
    tunnel: shape.tunnel,
    underlayMtu: shape.underlayMtu,
    tunnelMtu: shape.tunnelMtu,
    tcpMss: shape.tunnelMtu - 40,
    pairs,
    tenants: active,
    peered,
    policies,
  };
}

export { cidrContainsIp };
