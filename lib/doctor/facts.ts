import { AgentConfig, GatewayEnvKey, parseGatewayEnv, parsePairDocument, PairMemberName, TenantTableRow, VXLAN_PORT } from '../contract';
import { parseCloudConfig, Plan, PlanMember } from '../emulate/plan';
import { unpackBase64Gzip } from '../render/user-data';

/**
 * What doctor knows, read from a synthesized plan through the contract (gateway.env, the
 * tenant table by column name, the agent config) and a few resource attributes. Values that
 * Terraform fills in at apply (NAT IPs, subnet CIDRs) stay expressions: see describeAddress.
 */
export interface MemberFacts {
  readonly pair: number;
  readonly member: string;
  readonly logicalId: string;
  readonly env: Record<GatewayEnvKey, string>;
  readonly tenants: TenantTableRow[];
  /** `user_data_replace_on_change`: this member is the one `rollingUpdate` opens for replacement. */
  readonly openForReplacement: boolean;
  /** The per-tenant limit in the member's nftables ruleset (`ct count over N`), when found. */
  readonly connLimitPerTenant?: number;
  /** The cloud-config as Terraform holds it (interpolations unresolved). */
  readonly userData: string;
}

/** A pair's configuration document (the SSM parameter), as Terraform holds it. */
export interface PairDocumentFacts {
  readonly pair: number;
  readonly logicalId: string;
  /** The JSON text with its interpolations unresolved. */
  readonly text: string;
}

export interface TunnelSource {
  readonly pair: number;
  /** `security-group` when the gateway group admits tunnels from the node group, `cidr` otherwise. */
  readonly kind: 'security-group' | 'cidr';
  readonly value: string;
}

export interface DoctorFacts {
  readonly json: any;
  readonly members: MemberFacts[];
  readonly agent: AgentConfig;
  readonly tunnelSources: TunnelSource[];
  readonly documents: PairDocumentFacts[];
}

export function gatherFacts(plan: Plan): DoctorFacts {
  const json = plan.json;
  const documents = pairDocuments(json);
  const members = plan.members.map((m) => memberFacts(m, json, documents));
  // Interpolations sit inside JSON strings, so the raw text parses as it is.
  const agent = JSON.parse(plan.agentConfigRaw) as AgentConfig;
  return { json, members, agent, tunnelSources: tunnelSources(json), documents };
}

/** Each pair's aws_ssm_parameter (tagged crossvpc:pair), unpacked; interpolations stay inside JSON strings. */
function pairDocuments(json: any): PairDocumentFacts[] {
  return Object.entries<any>(json.resource?.aws_ssm_parameter ?? {})
    .filter(([, p]) => p.tags?.['crossvpc:pair'] !== undefined)
    .map(([logicalId, p]) => {
      try {
        return { pair: Number(p.tags['crossvpc:pair']), logicalId, text: unpackBase64Gzip(String(p.insecure_value ?? '')) };
      } catch (e) {
        throw new Error(`aws_ssm_parameter.${logicalId}: ${(e as Error).message}; is this a cdktf-crossvpc plan of this release?`);
      }
    });
}

function memberFacts(m: PlanMember, json: any, documents: PairDocumentFacts[]): MemberFacts {
  const where = `aws_instance.${m.logicalId}`;
  const files = parseCloudConfig(m.userData).writeFiles;
  const file = (name: string) => {
    const f = files.find((w) => w.path.endsWith(`/${name}`));
    if (!f) throw new Error(`${where}: user data writes no ${name}; is this a cdktf-crossvpc plan of this release?`);
    return f.content;
  };
  const doc = documents.find((d) => d.pair === m.pair);
  if (!doc) throw new Error(`${where}: no aws_ssm_parameter holds pair ${m.pair}'s configuration document; is this a cdktf-crossvpc plan of this release?`);
  const parsed = parsePairDocument(doc.text, m.pair);
  const mine = parsed.members[m.member as PairMemberName];
  if (!mine) throw new Error(`${where}: pair ${m.pair}'s document has no member ${m.member}`);
  const limit = /ct count over (\d+)/.exec(mine.ruleset);
  return {
    pair: m.pair,
    member: m.member,
    logicalId: m.logicalId,
    env: parseGatewayEnv(file('gateway.env')),
    tenants: parsed.rows[m.member as PairMemberName],
    openForReplacement: json.resource.aws_instance[m.logicalId].user_data_replace_on_change === true,
    connLimitPerTenant: limit ? Number(limit[1]) : undefined,
    userData: m.userData,
  };
}

/** Whether an ingress rule opens the VXLAN port (a metrics rule opens TCP metricsPort only). */
const opensTunnel = (r: any) => r.ip_protocol === '-1' || (r.ip_protocol === 'udp' && Number(r.from_port) <= VXLAN_PORT && VXLAN_PORT <= Number(r.to_port));

/** Ingress rules on a pair's own security group that open the tunnel port to a source other than that group. */
function tunnelSources(json: any): TunnelSource[] {
  const groups = Object.entries<any>(json.resource?.aws_security_group ?? {}).filter(([, g]) => g.tags?.['crossvpc:pair'] !== undefined && g.tags?.['crossvpc:tenant'] === undefined);
  const out: TunnelSource[] = [];
  for (const [id, g] of groups) {
    const ref = `\${aws_security_group.${id}.id}`;
    for (const r of Object.values<any>(json.resource?.aws_vpc_security_group_ingress_rule ?? {})) {
      if (r.security_group_id !== ref || r.referenced_security_group_id === ref || !opensTunnel(r)) continue;
      const pair = Number(g.tags['crossvpc:pair']);
      if (r.referenced_security_group_id) out.push({ pair, kind: 'security-group', value: r.referenced_security_group_id });
      else if (r.cidr_ipv4) out.push({ pair, kind: 'cidr', value: r.cidr_ipv4 });
    }
  }
  return out;
}

/** The Terraform reference inside a `${...}` string, or undefined for a literal. */
export function interpolation(text: string): string | undefined {
  return /^\$\{(.+)\}$/.exec(text)?.[1];
}

/**
 * An address as a user must allow it: the literal when the plan has one, else what Terraform
 * will compute, in words and as written: `host -2 of subnet subnet-0a1a… (cidrhost(…, -2))`.
 */
export function describeAddress(text: string, json: any): { words: string; literal?: string; subnetId?: string; hostIndex?: number } {
  const expr = interpolation(text);
  if (expr === undefined) return { words: text, literal: text };
  const m = /^cidrhost\(data\.aws_subnet\.([A-Za-z0-9_-]+)\.cidr_block,\s*(-?\d+)\)$/.exec(expr);
  if (!m) return { words: `the value of ${expr} (known after apply)` };
  const subnetId = json.data?.aws_subnet?.[m[1]]?.id as string | undefined;
  const hostIndex = Number(m[2]);
  return { words: `host ${hostIndex} of subnet ${subnetId ?? m[1]} (${expr}), known after apply`, subnetId, hostIndex };
}

/** The NAT ENI subnet of a tenant, from its NAT ENIs (tagged crossvpc:tenant). */
export function tenantSubnetId(tenant: string, json: any): string | undefined {
  const eni = Object.values<any>(json.resource?.aws_network_interface ?? {}).find((e) => e.tags?.['crossvpc:tenant'] === tenant);
  return eni?.subnet_id;
}

/** True when an explicit subnet CIDR reservation holds exactly this address. */
export function isReserved(address: string, subnetId: string | undefined, json: any): boolean {
  return Object.values<any>(json.resource?.aws_ec2_subnet_cidr_reservation ?? {}).some(
    (r) => r.cidr_block === `${address}/32` && r.reservation_type === 'explicit' && (subnetId === undefined || r.subnet_id === subnetId),
  );
}
