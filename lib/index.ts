// The public API: the constructs, their props, the model's types and the error class.
// Renderers, the agent's contract and the emulator are internal; deep imports of them are not a stable API.
export type { AwsConstructProps } from './constructs/aws-construct-props';
export { CrossVpcNat } from './constructs/cross-vpc-nat';
export type { CrossVpcNatProps, CrossVpcLinkSpec, FunctionVpcProps, TenantProps, GatewayProps } from './constructs/cross-vpc-nat';
export { ProxyNodePair, MAX_USER_DATA_BYTES } from './constructs/proxy-node-pair';
export type { ProxyNodePairProps, ProxyMember } from './constructs/proxy-node-pair';
export { NatEni } from './constructs/nat-eni';
export { TenantPeering } from './constructs/tenant-peering';
export type { TenantPeeringProps } from './constructs/tenant-peering';
export type { NatEniProps } from './constructs/nat-eni';
export { FunctionVpcLink, DEFAULT_POD_LABEL_KEY } from './constructs/function-vpc-link';
export type { FunctionVpcLinkProps } from './constructs/function-vpc-link';
export { buildCrossVpcModel, pairsInUse } from './model/crossvpc-model';
export type {
  BuildOptions, CrossVpcModel, FunctionVpcInput, GatewayInput, NatPolicy, PairModel, ProxyNodePairOptions, RollingUpdate, TenantInput, TenantModel, TunnelType, TenantPath, PeeringInput, PeeringModel, PeeringPort, PeeredTenantModel, EipEgress, InternetEgress, InboundInput,
} from './model/crossvpc-model';
export type { InboundForward } from './contract/ingress';
export { CrossVpcError } from './model/errors';
