import { App } from 'cdktf';
import { join } from 'path';
import { TenantProps } from '../lib';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';

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
  // The example stack with all N tenants on ONE pair: an emulation-only plan (no instance
  // has 256 ENIs), so the EC2 user data ceiling is lifted too.
  new OverlappingTenantsStack(app, id, { tenants: benchTenants(n), gateway: { tenantsPerMember: n, maxConfigDocumentBytes: 1 << 20 } });
  app.synth();
  return join(outdir, 'stacks', id);
}
