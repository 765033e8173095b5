import { Construct } from 'constructs';
import { TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { CrossVpcNat, FunctionVpcLink, TenantProps } from '../../lib';

/** The example's tenants: one per path, next to a plain NAT tenant. */
export const ALL_PATHS_TENANTS: readonly TenantProps[] = [
  // Plain NAT: reaches its own VPC's 172.16.0.0/16 as the NAT IP, and nothing else.
  { name: 'alpha', vpcId: 'vpc-0a1a1a1a1a1a1a1a1', subnetId: 'subnet-0a1a1a1a1a1a1a1a1', cidrs: ['172.16.0.0/16'], vni: 1001, availabilityZone: 'eu-west-1a' },
  // NAT with internet egress through its own VPC (seed 000's default policy): public destinations
  // leave through its NAT ENI to its VPC router, and its own NAT gateway gives them its EIP.
  { name: 'beta', vpcId: 'vpc-0b2b2b2b2b2b2b2b2', subnetId: 'subnet-0b2b2b2b2b2b2b2b2', cidrs: ['172.16.0.0/16'], vni: 1002, availabilityZone: 'eu-west-1a', internetEgress: 'tenantVpc' },
  // NAT with a port forward into the cluster (seed 001): delta's clients connect to its NAT IP on
  // tcp/6379 and reach 10.0.200.10:6379 in the function VPC (say, a Service's internal load
  // balancer); every other port of the NAT IP stays closed. Its functions reach the internet
  // through the gateway pair with the platform's Elastic IP, associated with 10.0.255.20 in the
  // gateway subnet (whose route table must send 0.0.0.0/0 to an internet gateway).
  {
    name: 'delta', vpcId: 'vpc-0d4d4d4d4d4d4d4d4', subnetId: 'subnet-0d4d4d4d4d4d4d4d4', cidrs: ['172.16.0.0/16'], vni: 1004, availabilityZone: 'eu-west-1a',
    inbound: [{ protocol: 'tcp', port: 6379, target: '10.0.200.10:6379' }],
    internetEgress: { eipAllocationId: 'eipalloc-0d4d4d4d4d4d4d4d4', privateIp: '10.0.255.20' },
  },
  // VPC peering (seed 003): its range overlaps nothing routed in the function VPC, so no gateway is
  // involved; the plan adds the routes on both sides and a Redis rule to its security group.
  {
    name: 'gamma', vpcId: 'vpc-0c3c3c3c3c3c3c3c3', cidrs: ['10.20.0.0/16'], vni: 1003, path: 'peering',
    peering: { functionRouteTableIds: ['rtb-0f00000000000a001'], tenantRouteTableIds: ['rtb-0c3c3c3c3c3c3c3c3'], tenantSecurityGroupIds: ['sg-0c3c3c3c3c3c3c3c3'], ports: ['tcp:6379'] },
  },
];

/**
 * Every path side by side: a function VPC whose pods reach four tenants, each the way its
 * network allows. Node and pod ranges as on EKS with the VPC CNI (pods on VPC addresses).
 */
export class AllPathsStack extends TerraformStack {
  public readonly nat: CrossVpcNat;
  public readonly link: FunctionVpcLink;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    new AwsProvider(this, 'aws', { region: 'eu-west-1' });
    new KubernetesProvider(this, 'kubernetes', { configPath: '~/.kube/config' });

    this.nat = new CrossVpcNat(this, 'CrossVpc', {
      functionVpc: {
        vpcId: 'vpc-0f00000000000f00f',
        nodeSubnetIds: ['subnet-0f00000000000a001', 'subnet-0f00000000000b001'],
        vpcCidr: '10.0.0.0/16',
        nodeSecurityGroupId: 'sg-0f00000000000e0de',
      },
      gateway: { subnetId: 'subnet-0f00000000000a0f0', instanceType: 'c6in.xlarge', availabilityZone: 'eu-west-1a' },
      tenants: [...ALL_PATHS_TENANTS],
      outputs: true,
    });

    this.link = new FunctionVpcLink(this, 'Cluster', {
      nat: this.nat,
      agentImage: process.env.CROSSVPC_AGENT_IMAGE ?? 'crossvpc-agent:0.1.0',
    });
  }
}
