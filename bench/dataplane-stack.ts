import { Construct } from 'constructs';
import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { join } from 'path';
import { CrossVpcNat, FunctionVpcLink, TenantProps } from '../lib';

/**
 * examples/overlapping-tenants/stack.ts with the gateway's tenantsPerMember set, so
 * N tenants land on ONE proxy pair (the example does not expose gateway options).
 */
export class DataplaneBenchStack extends TerraformStack {
  constructor(scope: Construct, id: string, tenants: TenantProps[], tenantsPerMember: number) {
    super(scope, id);
    new AwsProvider(this, 'aws', { region: 'eu-west-1' });
    new KubernetesProvider(this, 'kubernetes', { configPath: '~/.kube/config' });
    const nat = new CrossVpcNat(this, 'CrossVpc', {
      functionVpc: {
        vpcId: 'vpc-0f00000000000f00f',
        nodeSubnetIds: ['subnet-0f00000000000a001', 'subnet-0f00000000000b001'],
        vpcCidr: '10.0.0.0/16',
        nodeSecurityGroupId: 'sg-0f00000000000e0de',
      },
      // An emulation-only plan (no instance has 256 ENIs): lift the EC2 user data ceiling.
      gateway: { subnetId: 'subnet-0f00000000000a0f0', instanceType: 'c6in.xlarge', availabilityZone: 'eu-west-1a', tenantsPerMember, maxUserDataBytes: 1 << 20 },
      tenants,
    });
    new FunctionVpcLink(this, 'Cluster', { nat, agentImage: 'crossvpc-agent:0.1.0' });
  }
}

/** t1..tN, all 172.16.0.0/16, VNI i, distinct VPC and subnet ids. */
export function benchTenants(n: number): TenantProps[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const hex = i.toString(16).padStart(16, '0');
    return { name: `t${i}`, vpcId: `vpc-1${hex}`, subnetId: `subnet-1${hex}`, cidrs: ['172.16.0.0/16'], vni: i, availabilityZone: 'eu-west-1a' };
  });
}

/** Synthesizes an N-tenant, one-pair plan under outdir; returns the stack directory holding cdk.tf.json. */
export function synthBenchPlan(outdir: string, n: number): string {
  const id = `dataplane-${n}`;
  const app = new App({ outdir, stackTraces: false });
  new DataplaneBenchStack(app, id, benchTenants(n), n);
  app.synth();
  return join(outdir, 'stacks', id);
}
