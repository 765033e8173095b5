import { Construct } from 'constructs';
import { TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { CrossVpcNat, FunctionVpcLink, FunctionVpcProps, GatewayProps, TenantProps } from '../../lib';

export interface OverlappingTenantsOptions {
  /** Extra tenants beyond alpha and beta (the stability test and the emulator's variants use this). */
  readonly extraTenants?: TenantProps[];
  /** Replace the tenant list entirely. */
  readonly tenants?: TenantProps[];
  readonly agentImage?: string;
  /** Gateway options on top of the example's (tests use this for limits). */
  readonly gateway?: Partial<GatewayProps>;
  /** CrossVpcNatProps.outputs (the example keeps the default, false). */
  readonly outputs?: boolean;
  /** CrossVpcNatProps.tags. */
  readonly tags?: Record<string, string>;
  /** Function VPC options on top of the example's (doctor's tests use this for node, pod and Service CIDRs). */
  readonly functionVpc?: Partial<FunctionVpcProps>;
}

/**
 * The seed scenario: one function VPC, tenants alpha and beta that both use
 * 172.16.0.0/16 and both run Redis at 172.16.0.3, one proxy pair.
 */
export class OverlappingTenantsStack extends TerraformStack {
  public readonly nat: CrossVpcNat;
  public readonly link: FunctionVpcLink;

  constructor(scope: Construct, id: string, opts: OverlappingTenantsOptions = {}) {
    super(scope, id);
    new AwsProvider(this, 'aws', { region: 'eu-west-1' });
    new KubernetesProvider(this, 'kubernetes', { configPath: '~/.kube/config' });

    this.nat = new CrossVpcNat(this, 'CrossVpc', {
      functionVpc: {
        vpcId: 'vpc-0f00000000000f00f',
        nodeSubnetIds: ['subnet-0f00000000000a001', 'subnet-0f00000000000b001'],
        vpcCidr: '10.0.0.0/16',
        nodeSecurityGroupId: 'sg-0f00000000000e0de',
        ...opts.functionVpc,
      },
      gateway: { subnetId: 'subnet-0f00000000000a0f0', instanceType: 'c6in.xlarge', availabilityZone: 'eu-west-1a', ...opts.gateway },
      tenants: opts.tenants ?? [
        { name: 'alpha', vpcId: 'vpc-0a1a1a1a1a1a1a1a1', subnetId: 'subnet-0a1a1a1a1a1a1a1a1', cidrs: ['172.16.0.0/16'], vni: 1001, availabilityZone: 'eu-west-1a' },
        { name: 'beta', vpcId: 'vpc-0b2b2b2b2b2b2b2b2', subnetId: 'subnet-0b2b2b2b2b2b2b2b2', cidrs: ['172.16.0.0/16'], vni: 1002, availabilityZone: 'eu-west-1a' },
        ...(opts.extraTenants ?? []),
      ],
      outputs: opts.outputs,
      tags: opts.tags,
    });

    this.link = new FunctionVpcLink(this, 'Cluster', {
      nat: this.nat,
      // Build and push agent/Dockerfile first (README, "Node agent image").
      agentImage: opts.agentImage ?? process.env.CROSSVPC_AGENT_IMAGE ?? 'crossvpc-agent:0.1.0',
    });
  }
}
