/**
 * Maximum network interfaces per instance type (EC2 "Network specifications").
 * One interface is the member's primary (function-VPC) ENI; every other one can
 * carry one tenant. The plan also checks the real figure at plan time through the
 * aws_ec2_instance_type data source, so a wrong row here cannot ship a broken pair.
 */
export const MAX_ENIS_BY_INSTANCE_TYPE: Readonly<Record<string, number>> = {
  't3.micro': 2, 't3.small': 3, 't3.medium': 3, 't3.large': 3, 't3.xlarge': 4, 't3.2xlarge': 4,
  'm5.large': 3, 'm5.xlarge': 4, 'm5.2xlarge': 4, 'm5.4xlarge': 8, 'm5.8xlarge': 8, 'm5.12xlarge': 8, 'm5.16xlarge': 15, 'm5.24xlarge': 15,
  'm6i.large': 3, 'm6i.xlarge': 4, 'm6i.2xlarge': 4, 'm6i.4xlarge': 8, 'm6i.8xlarge': 8, 'm6i.16xlarge': 15,
  'c5n.large': 3, 'c5n.xlarge': 4, 'c5n.2xlarge': 4, 'c5n.4xlarge': 8, 'c5n.9xlarge': 8, 'c5n.18xlarge': 15,
  'c6i.large': 3, 'c6i.xlarge': 4, 'c6i.2xlarge': 4, 'c6i.4xlarge': 8, 'c6i.8xlarge': 8, 'c6i.16xlarge': 15,
  'c6in.large': 3, 'c6in.xlarge': 4, 'c6in.2xlarge': 4, 'c6in.4xlarge': 8, 'c6in.8xlarge': 8, 'c6in.12xlarge': 8, 'c6in.16xlarge': 15,
  'c6gn.medium': 2, 'c6gn.large': 3, 'c6gn.xlarge': 4, 'c6gn.2xlarge': 4, 'c6gn.4xlarge': 8, 'c6gn.8xlarge': 8, 'c6gn.16xlarge': 15,
  'c7gn.medium': 2, 'c7gn.large': 3, 'c7gn.xlarge': 4, 'c7gn.2xlarge': 4, 'c7gn.4xlarge': 8, 'c7gn.8xlarge': 8, 'c7gn.16xlarge': 15,
};

/** Tenants one member can hold: every interface but the primary. */
export function tenantCapacity(instanceType: string): number | undefined {
  const enis = MAX_ENIS_BY_INSTANCE_TYPE[instanceType];
  return enis === undefined ? undefined : enis - 1;
}
