import { Cidr, cidrsOverlap, parseCidr } from './cidr';
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
  /** The Service CIDR when given: tenant CIDRs must stay out of it (NAT IPs live in the tenant VPC, which never sees it). */
  readonly serviceCidr?: LabelledCidr;
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
  const serviceCidr = checkServiceCidr(fv, vpcCidr, podCidrs, c);
  const clusterSide: LabelledCidr[] = [
    { cidr: vpcCidr, label: `functionVpc.vpcCidr ${vpcCidr.text}` },
    ...podCidrs.map((p, i) => ({ cidr: p, label: `functionVpc.podCidrs[${i}] ${p.text}` })),
    ...(fv.nodeCidrs === undefined ? [] : nodeCidrs.map((n, i) => ({ cidr: n, label: `functionVpc.nodeCidrs[${i}] ${n.text}` }))),
  ];
  return { vpcCidr, podCidrs, nodeCidrs, clusterSide, serviceCidr };
}

/** Kubernetes (and EKS) refuse a Service CIDR overlapping the node network or the pod CIDRs: so do we. */
function checkServiceCidr(fv: FunctionVpcInput, vpcCidr: Cidr, podCidrs: Cidr[], c: Checker): LabelledCidr | undefined {
  if (fv.serviceCidr === undefined) return undefined;
  const cidr = parseCidr(fv.serviceCidr, c.at('functionVpc.serviceCidr'));
  const others = [{ cidr: vpcCidr, label: `functionVpc.vpcCidr ${vpcCidr.text}` }, ...podCidrs.map((p, i) => ({ cidr: p, label: `functionVpc.podCidrs[${i}] ${p.text}` }))];
  for (const o of others) {
    if (cidrsOverlap(cidr, o.cidr)) {
      throw c.err('functionVpc.serviceCidr', fv.serviceCidr, `${cidr.text} overlaps ${o.label}; kube-proxy would capture those addresses on every node, and Kubernetes (EKS too) refuses such a Service CIDR`, 'give the cluster\'s real Service CIDR (kubectl cluster-info dump | grep service-cluster-ip-range), which never overlaps the VPC or pod CIDRs');
    }
  }
  return { cidr, label: `functionVpc.serviceCidr ${cidr.text} (the Kubernetes Service CIDR: kube-proxy answers for it on every node)` };
}
