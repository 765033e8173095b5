import { describeAddress, DoctorFacts, tenantSubnetId } from './facts';
import { Finding } from './findings';
import { servedTenants } from './nat-ip-checks';

/**
 * Internet egress (seed 000's default policy): what the tenant's own VPC must provide for it.
 * The plan cannot check it: the route table of the NAT ENI's subnet belongs to the tenant.
 */
export function egressFindings(facts: DoctorFacts): Finding[] {
  return servedTenants(facts)
    .filter(({ row }) => row.egress === 'tenant_vpc')
    .map(({ row }) => {
      const tenant = row.name;
      const subnet = tenantSubnetId(tenant, facts.json) ?? 'of its NAT ENI';
      const nat = describeAddress(row.natIp, facts.json);
      return {
        severity: 'info' as const, check: 'egress', tenant,
        what: `tenant ${tenant} has internet egress through its own VPC: its functions' public destinations (everything outside the private and reserved ranges and the function VPC's own) leave its NAT ENI for its VPC router with the NAT IP (${nat.words}) as source; the internet sees whatever the tenant's NAT gateway gives them.`,
        fix: `in tenant ${tenant}'s VPC, route 0.0.0.0/0 from subnet ${subnet} to a NAT gateway (not an internet gateway: the NAT IP is private) and let its network ACLs pass the NAT IP out and the replies in; without that route the packets die in the tenant's VPC.`,
      };
    });
}
