import { AgentPeeredTenant } from '../contract';
import { DoctorFacts } from './facts';
import { Finding } from './findings';

/** A tenant's resources of one type, by its `crossvpc:tenant` tag. */
function tagged(json: any, type: string, tenant: string): any[] {
  return Object.values<any>(json.resource?.[type] ?? {}).filter((r) => r.tags?.['crossvpc:tenant'] === tenant);
}

/** aws_route has no tags: a route belongs to a tenant's peering when it names that peering's accepter. */
function routesOf(json: any, tenant: string): any[] {
  const accepters = Object.entries<any>(json.resource?.aws_vpc_peering_connection_accepter ?? {}).filter(([, a]) => a.tags?.['crossvpc:tenant'] === tenant).map(([id]) => id);
  return Object.values<any>(json.resource?.aws_route ?? {}).filter((r) => accepters.some((id) => String(r.vpc_peering_connection_id ?? '').includes(`aws_vpc_peering_connection_accepter.${id}.`)));
}

const portWords = (r: any) => (r.ip_protocol === '-1' ? 'all traffic' : r.ip_protocol === 'icmp' ? 'ICMP' : `${r.ip_protocol} ${r.from_port === r.to_port ? r.from_port : `${r.from_port}-${r.to_port}`}`);

/**
 * Seed 003's checklist for the peering path: the source the tenant's services see (the pod or
 * node CIDRs, not a NAT IP), the security-group rules the plan adds for it, and routes on both
 * sides for every destination and source.
 */
export function peeringFindings(facts: DoctorFacts): Finding[] {
  return (facts.agent.peered ?? []).flatMap((t) => tenantFindings(facts.json, t));
}

function tenantFindings(json: any, t: AgentPeeredTenant): Finding[] {
  const out: Finding[] = [];
  const tenant = t.name;
  if (tagged(json, 'aws_vpc_peering_connection', tenant).length !== 1 || tagged(json, 'aws_vpc_peering_connection_accepter', tenant).length !== 1) {
    out.push({ severity: 'error', check: 'peering', tenant, what: 'the agent lets its pods through a peering, but the plan has no peering connection and accepter for it.', fix: 'synthesize the plan again with one cdktf-crossvpc release; never edit cdk.tf.json by hand.' });
    return out;
  }
  const routes = routesOf(json, tenant);
  const toTenant = new Set(routes.map((r) => r.destination_cidr_block).filter((d) => t.cidrs.includes(d)));
  const sources = [...new Set(routes.map((r) => String(r.destination_cidr_block)).filter((d) => !t.cidrs.includes(d)))];
  const unrouted = t.cidrs.filter((d) => !toTenant.has(d));
  if (unrouted.length) {
    out.push({ severity: 'error', check: 'peering-route', tenant, what: `no function-VPC route sends ${unrouted.join(', ')} through the peering: pods that may reach it have no path.`, fix: 'synthesize again; peering.functionRouteTableIds gets a route per allowed destination.' });
  }
  if (!sources.length) {
    out.push({ severity: 'error', check: 'peering-route', tenant, what: 'no tenant-VPC route sends replies back through the peering.', fix: 'give peering.tenantRouteTableIds: the route tables of the subnets the services live in.' });
  }
  const rules = tagged(json, 'aws_vpc_security_group_ingress_rule', tenant);
  const from = sources.join(', ') || 'the function side';
  const ruleWords = rules.length
    ? `The plan adds ${rules.length} ingress rule(s): ${[...new Set(rules.map((r) => `${r.security_group_id} ${portWords(r)}`))].join('; ')}.`
    : 'The plan adds no security-group rule for it (peering.tenantSecurityGroupIds is empty).';
  out.push({
    severity: 'info', check: 'peering-sources', tenant,
    what: `tenant ${tenant} is reached through VPC peering: its services see the functions' own addresses in ${from}, not a NAT IP. ${ruleWords}`,
    fix: `allow ${from} in the security groups, network ACLs and service allow-lists (managed Redis, RDS, …) of ${t.cidrs.join(', ')}${rules.length ? ' that the plan does not cover' : ''}; the node agents keep every other tenant's pods away from them.`,
  });
  return out;
}
