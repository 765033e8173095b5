import { describeAddress, DoctorFacts, tenantSubnetId } from './facts';
import { Finding } from './findings';
import { servedTenants } from './nat-ip-checks';

/**
 * Internet egress (seed 000's default policy): what must exist outside the plan for it. Through
 * the tenant's VPC: a route to its NAT gateway (the NAT ENI's subnet belongs to the tenant).
 * Through a platform EIP: the gateway subnet's route to an internet gateway, and the EIP itself.
 */
export function egressFindings(facts: DoctorFacts): Finding[] {
  const served = servedTenants(facts);
  const eip: Finding[] = served
    .filter(({ row }) => row.egress === 'eip')
    .map(({ row, pair }) => ({
      severity: 'info' as const, check: 'egress', tenant: row.name,
      what: `tenant ${row.name} has internet egress through the platform's Elastic IP ${row.eipAllocationId}: pair ${pair}'s active member SNATs its functions' public destinations to ${row.egressIp} in the gateway subnet and associates the EIP with that address on every failover.`,
      fix: `route 0.0.0.0/0 from the gateway subnet to an internet gateway, keep ${row.eipAllocationId} in this account and region, and release neither the EIP nor ${row.egressIp} while the tenant uses them; the internet sees the EIP, so allow-list that on the far side.`,
    }));
  return [...eip, ...served
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
    })];
}
