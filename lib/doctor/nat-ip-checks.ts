import { TenantTableRow } from '../contract';
import { describeAddress, DoctorFacts, isReserved, tenantSubnetId } from './facts';
import { Finding } from './findings';

/** One tenant as the gateways serve it: its row on the pair's first member, and the pair. */
export interface ServedTenant {
  readonly row: TenantTableRow;
  readonly pair: number;
}

/** Tenants in plan order (pair, then table order), once each. */
export function servedTenants(facts: DoctorFacts): ServedTenant[] {
  const seen = new Map<string, ServedTenant>();
  for (const m of facts.members) for (const row of m.tenants) if (!seen.has(row.name)) seen.set(row.name, { row, pair: m.pair });
  return [...seen.values()];
}

/**
 * Seed 003's first two steps, made concrete: the one address a tenant's security groups and
 * service whitelists must allow (never the pod or node CIDRs, which the tenant VPC never sees).
 */
export function natIpFindings(facts: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const tenants = servedTenants(facts);
  for (const { row, pair } of tenants) {
    const tenant = row.name;
    const rows = facts.members.filter((m) => m.pair === pair).map((m) => m.tenants.find((r) => r.name === tenant));
    if (rows.some((r) => r?.natIp !== row.natIp)) {
      out.push({ severity: 'error', check: 'nat-ip', tenant, what: `the members of pair ${pair} disagree on the NAT IP (${rows.map((r) => r?.natIp ?? 'missing').join(' vs ')}): it floats between them, so after a failover the tenant would see another source.`, fix: 'synthesize the plan again with one cdktf-crossvpc release; never edit cdk.tf.json by hand.' });
      continue;
    }
    const subnetId = tenantSubnetId(tenant, facts.json);
    const nat = describeAddress(row.natIp, facts.json);
    const reserved = isReserved(row.natIp, subnetId, facts.json);
    const dests = row.destinations.join(', ');
    out.push({
      severity: 'info', check: 'nat-ip', tenant,
      what: `allow the NAT IP of tenant ${tenant}: ${nat.words}${reserved ? ', reserved' : ''}. Every connection from ${tenant}'s functions to ${dests} comes from this one address.`,
      fix: `allow ${nat.literal ? `${nat.literal}/32` : 'that address /32 (terraform output or the EC2 console after apply)'} in the security groups, network ACLs and service whitelists (managed Redis, RDS, …) of ${dests}; not the pod or node CIDRs, which the tenant VPC never sees.`,
    });
    if (!reserved) {
      out.push({ severity: 'warning', check: 'nat-ip-reservation', tenant, what: `no explicit subnet CIDR reservation holds the NAT IP ${nat.words}: another ENI in subnet ${subnetId ?? 'unknown'} may take it first.`, fix: 'synthesize with this release (it reserves every NAT IP), or reserve the address yourself.' });
    }
  }
  out.push(...sharedSubnetFindings(tenants, facts));
  return out;
}

/**
 * A default NAT IP is host -(2 + pair index) of the tenant subnet. Two tenants of different
 * pairs in one subnet get neighbouring hosts: correct, but each tenant's address is then
 * fixed only by its pair index, and a rule that allows the subnet allows both.
 */
function sharedSubnetFindings(tenants: ServedTenant[], facts: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const bySubnet = new Map<string, ServedTenant[]>();
  for (const t of tenants) {
    const s = tenantSubnetId(t.row.name, facts.json);
    if (s) bySubnet.set(s, [...(bySubnet.get(s) ?? []), t]);
  }
  for (const [subnet, list] of bySubnet) {
    for (const t of list) {
      const nat = describeAddress(t.row.natIp, facts.json);
      if (nat.literal) continue;
      const others = list.filter((o) => o !== t && o.pair !== t.pair);
      if (others.length === 0) continue;
      const names = others.map((o) => `${o.row.name} (pair ${o.pair}${describeAddress(o.row.natIp, facts.json).literal ? `, natIp ${o.row.natIp}` : ''})`).join(', ');
      out.push({
        severity: 'warning', check: 'shared-subnet', tenant: t.row.name,
        what: `default NAT IP (host ${nat.hostIndex} of ${subnet}, from pair index ${t.pair}) in a subnet shared with ${names}: the address follows the pair index, so re-pairing moves it (and may land on another tenant's), a given natIp of another tenant may equal it (the reservations then clash at apply), and an allow rule for the subnet admits every tenant in it.`,
        fix: `set natIp explicitly for tenant ${t.row.name} (a free host of ${subnet}), pin it with pair, and allow only the /32 in the tenant's groups and whitelists.`,
      });
    }
  }
  return out;
}
