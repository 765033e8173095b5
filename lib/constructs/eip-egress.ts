import { Construct } from 'constructs';
import { Op, TerraformProvider } from 'cdktf';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition';
import { DataAwsRegion } from '@cdktf/provider-aws/lib/data-aws-region';
import { Ec2SubnetCidrReservation } from '@cdktf/provider-aws/lib/ec2-subnet-cidr-reservation';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { isEipEgress } from '../model/eip-egress';
import { PairModel } from '../model/model-types';

export interface EipEgressProps {
  readonly provider?: TerraformProvider;
  readonly pair: PairModel;
  readonly gatewaySubnetId: string;
  readonly gatewaySubnetCidr: string;
  /** The pair's HaVip (deploy-time unless given): an egress IP may not be it. */
  readonly haVip: string;
  readonly role: IamRole;
  /** ARNs of the members' primary ENIs, where the egress IPs and EIPs go. */
  readonly primaryEniArns: string[];
  /** Plan-time test that an address is a usable host of a CIDR (ProxyNodePair's). */
  readonly usableHostOf: (ip: string, cidr: string) => unknown;
}

/**
 * A pair's EIP egress tenants, in AWS: each egress IP reserved in the gateway subnet (so EC2
 * hands it to no other ENI) and checked against the subnet and the HaVip at plan time, and the
 * member role's permission to associate exactly these EIPs with the pair's primary ENIs.
 * No aws_eip_association: the active member owns the association (it moves at every failover,
 * and a Terraform-managed one would be re-created onto member a by the next apply).
 * Nothing here reaches user data, so adding or retiring an EIP tenant leaves the members alone.
 */
export class EipEgress extends Construct {
  constructor(scope: Construct, id: string, props: EipEgressProps) {
    super(scope, id);
    const { provider, pair } = props;
    const tenants = pair.tenants.flatMap((t) => (isEipEgress(t.internetEgress) ? [{ name: t.name, ...t.internetEgress }] : []));
    for (const { name, privateIp, eipAllocationId } of tenants) {
      new Ec2SubnetCidrReservation(this, `Tenant-${name}-EgressIpReservation`, {
        provider, subnetId: props.gatewaySubnetId, cidrBlock: `${privateIp}/32`, reservationType: 'explicit', description: `crossvpc pair ${pair.index} EIP egress of tenant ${name} (${eipAllocationId})`,
        lifecycle: {
          precondition: [{
            condition: Op.and(props.usableHostOf(privateIp, props.gatewaySubnetCidr), Op.neq(privateIp, props.haVip)),
            errorMessage: `crossvpc tenant ${name}: internetEgress.privateIp ${privateIp} must be a usable host of the gateway subnet ${props.gatewaySubnetId} (inside its CIDR, not its network, broadcast or the three AWS-reserved addresses after the network) and not pair ${pair.index}'s HaVip. Pick a free address of that subnet.`,
          }],
        },
      });
    }
    if (!tenants.length) return;
    const partition = new DataAwsPartition(this, 'Partition', { provider }).partition;
    const region = new DataAwsRegion(this, 'Region', { provider }).region;
    const account = new DataAwsCallerIdentity(this, 'Account', { provider }).accountId;
    const eipArns = tenants.map((t) => `arn:${partition}:ec2:${region}:${account}:elastic-ip/${t.eipAllocationId}`);
    new IamRolePolicy(this, 'AssociateEips', {
      provider, role: props.role.id,
      policy: new DataAwsIamPolicyDocument(this, 'AssociateEipsPolicy', {
        provider, statement: [{ sid: 'AssociateEgressEips', actions: ['ec2:AssociateAddress'], resources: [...eipArns, ...props.primaryEniArns] }],
      }).json,
    });
  }
}
