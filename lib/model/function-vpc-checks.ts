import { Cidr, parseCidr } from './cidr';
import { Checker } from './checker';
import { FunctionVpcInput } from './inputs';

/** A cluster-side range with the words an error uses for it. */
export interface LabelledCidr {
  readonly cidr: Cidr;
  readonly label: string;
}

export interface CheckedFunctionVpc {
  readonly vpcCidr: Cidr;
  readonly podCidrs: Cidr[];
  /** The given nodeCidrs, or [vpcCidr] when none are given. */
  readonly nodeCidrs: Cidr[];
  /** Every range the cluster owns: tenant CIDRs and NAT IPs must stay out of them. */
  readonly clusterSide: LabelledCidr[];
}

/** The function VPC's CIDRs: parsed, free of overlaps within each list, and at least one node subnet. */
export function checkFunctionVpc(fv: FunctionVpcInput, c: Checker): CheckedFunctionVpc {
  const vpcCidr = parseCidr(fv.vpcCidr, c.at('functionVpc.vpcCidr'));
  const podCidrs = c.cidrList(fv.podCidrs, 'functionVpc.podCidrs');
  const nodeCidrs = fv.nodeCidrs === undefined ? [vpcCidr] : c.cidrList(fv.nodeCidrs, 'functionVpc.nodeCidrs');
  c.noOverlapWithin(podCidrs, 'functionVpc.podCidrs', fv.podCidrs ?? [], 'overlapping pod CIDRs make the masquerade and routing lists ambiguous');
  c.noOverlapWithin(nodeCidrs, 'functionVpc.nodeCidrs', fv.nodeCidrs ?? [], 'the nodeCidrs feed the gateway\'s NAT policy set, where overlapping intervals fail to load');
  if (!fv.nodeSubnetIds || fv.nodeSubnetIds.length === 0) {
    throw c.err('functionVpc.nodeSubnetIds', fv.nodeSubnetIds, 'no node subnets given', 'list the subnet ids the cluster nodes run in');
  }
  const clusterSide: LabelledCidr[] = [
    { cidr: vpcCidr, label: `functionVpc.vpcCidr ${vpcCidr.text}` },
    ...podCidrs.map((p, i) => ({ cidr: p, label: `functionVpc.podCidrs[${i}] ${p.text}` })),
    ...(fv.nodeCidrs === undefined ? [] : nodeCidrs.map((n, i) => ({ cidr: n, label: `functionVpc.nodeCidrs[${i}] ${n.text}` }))),
  ];
  return { vpcCidr, podCidrs, nodeCidrs, clusterSide };
}
