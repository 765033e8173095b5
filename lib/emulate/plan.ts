import { readFileSync } from 'fs';
import { parse } from 'yaml';
import { AGENT_CONFIG_KEY } from '../contract/agent-config';
import { cidrContains, cidrHost as cidrhost, intToIpv4, splitCidr } from '../contract/ipv4';
import { unpackBase64Gzip, unpackUserData } from '../render/user-data';

export { cidrhost };

/**
 * Reads a synthesized cdk.tf.json. The emulator knows nothing of the model or the
 * renderers: everything it runs comes out of this file.
 */
export interface PlanMember {
  readonly logicalId: string;
  readonly pair: number;
  readonly member: string;
  /** The member's cloud-config as Terraform holds it (escaped, with interpolations): see unpackUserData. */
  readonly userData: string;
}

/** A pair's configuration document as the plan holds it: one aws_ssm_parameter tagged with the pair. */
export interface PlanParameter {
  readonly logicalId: string;
  readonly pair: number;
  /** The parameter name: a literal in a crossvpc plan. */
  readonly name: string;
  readonly type: string;
  readonly tier: string;
  /** The document as Terraform holds it (interpolations and `$${` escapes intact): see unpackBase64Gzip. */
  readonly template: string;
}

export interface Plan {
  readonly json: any;
  readonly members: PlanMember[];
  /** The pairs' configuration documents, by pair index order. */
  readonly parameters: PlanParameter[];
  /** Raw tenants.json of the FunctionVpcLink ConfigMap. */
  readonly agentConfigRaw: string;
}

export function readPlan(file: string): Plan {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  const instances = json.resource?.aws_instance ?? {};
  const members: PlanMember[] = Object.entries<any>(instances).map(([logicalId, inst]) => ({
    logicalId,
    pair: Number(inst.tags?.['crossvpc:pair']),
    member: String(inst.tags?.['crossvpc:member']),
    userData: userDataOf(inst, logicalId, json.locals),
  }));
  if (members.length === 0) throw new Error(`${file}: no aws_instance with crossvpc user data; is this a synthesized cdktf-crossvpc stack?`);
  for (const m of members) {
    if (!Number.isInteger(m.pair) || !m.member) throw new Error(`${file}: aws_instance.${m.logicalId} lacks crossvpc:pair/crossvpc:member tags`);
  }
  members.sort((a, b) => a.pair - b.pair || a.member.localeCompare(b.member));
  const cms = Object.values<any>(json.resource?.kubernetes_config_map_v1 ?? {}).filter((c) => c.data?.[AGENT_CONFIG_KEY]);
  if (cms.length !== 1) throw new Error(`${file}: expected one ConfigMap with tenants.json (FunctionVpcLink), found ${cms.length}`);
  return { json, members, parameters: readParameters(json, file), agentConfigRaw: cms[0].data[AGENT_CONFIG_KEY] };
}

/** Every aws_ssm_parameter tagged crossvpc:pair, checked as SSM and the members would check it. */
function readParameters(json: any, file: string): PlanParameter[] {
  const out: PlanParameter[] = [];
  for (const [logicalId, p] of Object.entries<any>(json.resource?.aws_ssm_parameter ?? {})) {
    const tag = p.tags?.['crossvpc:pair'];
    if (tag === undefined) continue;
    const where = `${file}: aws_ssm_parameter.${logicalId}`;
    const pair = Number(tag);
    if (!/^\d+$/.test(String(tag))) throw new Error(`${where}: tag crossvpc:pair ${JSON.stringify(tag)} is not a pair index`);
    if (typeof p.name !== 'string' || !p.name || p.name.includes('${')) throw new Error(`${where}: name ${JSON.stringify(p.name)} is not a literal; members find their document by that name`);
    if (typeof p.insecure_value !== 'string') throw new Error(`${where}: no insecure_value; the document must be readable without decryption (type String)`);
    let template: string;
    try {
      template = unpackBase64Gzip(p.insecure_value);
    } catch (e) {
      throw new Error(`${where}: insecure_value: ${(e as Error).message}`);
    }
    if (out.some((o) => o.pair === pair)) throw new Error(`${where}: pair ${pair} already has a document (aws_ssm_parameter.${out.find((o) => o.pair === pair)!.logicalId})`);
    out.push({ logicalId, pair, name: p.name, type: String(p.type ?? ''), tier: String(p.tier ?? 'Standard'), template });
  }
  return out.sort((a, b) => a.pair - b.pair);
}

function userDataOf(inst: any, logicalId: string, locals: Record<string, unknown> | undefined): string {
  try {
    return unpackUserData(String(inst.user_data_base64 ?? ''), locals);
  } catch (e) {
    throw new Error(`aws_instance.${logicalId}: ${(e as Error).message}; the emulator reads only user data packed by cdktf-crossvpc`);
  }
}

export interface CloudConfig {
  packages: string[];
  writeFiles: Array<{ path: string; permissions: string; content: string }>;
  runcmd: string[][];
}

/** Parse user data after Terraform has interpolated it (`evaluate` does that). */
export function parseCloudConfig(userData: string): CloudConfig {
  if (!userData.startsWith('#cloud-config\n')) throw new Error('user data is not a #cloud-config document');
  const doc = parse(userData);
  return {
    packages: doc.packages ?? [],
    writeFiles: (doc.write_files ?? []).map((w: any) => ({ path: w.path, permissions: String(w.permissions ?? '0644'), content: String(w.content ?? '') })),
    runcmd: (doc.runcmd ?? []).map((c: any) => (Array.isArray(c) ? c.map(String) : ['sh', '-c', String(c)])),
  };
}

/**
 * Terraform's interpolation of a string attribute, for the expression forms a crossvpc
 * plan uses: resource and data attribute references and cidrhost(). Anything else is
 * an error, never a guess.
 */
export function evaluate(text: string, resolve: (ref: string) => string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) { out += '${'; i += 3; continue; }
    if (text.startsWith('%%{', i)) { out += '%{'; i += 3; continue; }
    if (text.startsWith('%{', i)) throw new Error(`template directive at offset ${i} is not supported by the emulator`);
    if (text.startsWith('${', i)) {
      const end = text.indexOf('}', i);
      if (end < 0) throw new Error(`unterminated interpolation at offset ${i}`);
      out += evalExpr(text.slice(i + 2, end).trim(), resolve);
      i = end + 1;
      continue;
    }
    out += text[i];
    i += 1;
  }
  return out;
}

function evalExpr(expr: string, resolve: (ref: string) => string): string {
  const call = /^cidrhost\((.+),\s*(-?\d+)\)$/.exec(expr);
  if (call) return cidrhost(evalExpr(call[1].trim(), resolve), Number(call[2]));
  if (/^(data\.)?[a-z0-9_]+\.[A-Za-z0-9_-]+\.[a-z_]+$/.test(expr)) return resolve(expr);
  throw new Error(`unsupported Terraform expression \${${expr}}`);
}



/** Who a member's primary ENI admits on one TCP port: the plan's ingress rules on its security groups. */
export interface PortIngress {
  /** Source CIDRs (cidr_ipv4) of the rules that cover the port. */
  readonly cidrs: string[];
  /** Source security groups (referenced_security_group_id) of those rules, as the plan writes them. */
  readonly groups: string[];
}

/**
 * The aws_vpc_security_group_ingress_rule entries that open TCP `port` on the security groups of
 * a member's primary ENI (the aws_network_interface tagged with its pair and member, no tenant).
 */
export function primaryEniIngress(json: any, pair: number, member: string, port: number): PortIngress {
  const enis = Object.entries<any>(json.resource?.aws_network_interface ?? {}).filter(([, e]) => e.tags?.['crossvpc:pair'] === String(pair) && e.tags?.['crossvpc:member'] === member && !e.tags?.['crossvpc:tenant']);
  if (enis.length !== 1) throw new Error(`cdk.tf.json: expected one primary aws_network_interface for pair ${pair} member ${member}, found ${enis.length}`);
  const groups = new Set<string>((enis[0][1].security_groups ?? []).map(String));
  const rules = Object.values<any>(json.resource?.aws_vpc_security_group_ingress_rule ?? {}).filter((r) => groups.has(String(r.security_group_id))
    && (r.ip_protocol === '-1' || (r.ip_protocol === 'tcp' && Number(r.from_port) <= port && port <= Number(r.to_port))));
  return {
    cidrs: rules.filter((r) => r.cidr_ipv4).map((r) => String(r.cidr_ipv4)),
    groups: rules.filter((r) => r.referenced_security_group_id).map((r) => String(r.referenced_security_group_id)),
  };
}

/** One ingress rule a peered tenant's security groups get in the plan (aws_vpc_security_group_ingress_rule tagged with the tenant). */
export interface PeeringIngressRule {
  /** 'tcp', 'udp', 'icmp' or '-1' (all), as the plan writes it. */
  readonly protocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly cidr: string;
}

/** A peered tenant as Terraform would build it: the connection, the routes through it on both sides, and the tenant's ingress rules. */
export interface PlanPeering {
  readonly tenant: string;
  /** aws_vpc_peering_connection logical id. */
  readonly connection: string;
  /** Destinations of the function-side aws_route entries through the connection: what the function VPC sends to the tenant. */
  readonly toTenant: string[];
  /** Destinations of the tenant-side aws_route entries: the function side's sources the tenant VPC routes back. */
  readonly toFunction: string[];
  /** The tenant's security-group ingress rules; none when the plan leaves them to the user (tenantSecurityGroupIds not given). */
  readonly ingress: PeeringIngressRule[];
}

/**
 * Every aws_vpc_peering_connection tagged crossvpc:tenant, with the aws_route entries whose
 * vpc_peering_connection_id references it (directly or through its accepter). A route is on the
 * tenant side when its destination lies in the function VPC's ranges (`clusterRanges`: the
 * ConfigMap's vpcCidr, podCidrs, nodeCidrs), on the function side otherwise: the emulation routes
 * exactly these, so a route missing from the plan shows as an unreachable tenant.
 */
export function readPeerings(json: any, clusterRanges: readonly string[]): PlanPeering[] {
  const res = json.resource ?? {};
  const accepters = Object.entries<any>(res.aws_vpc_peering_connection_accepter ?? {});
  const out: PlanPeering[] = [];
  for (const [connection, c] of Object.entries<any>(res.aws_vpc_peering_connection ?? {})) {
    const tenant = c.tags?.['crossvpc:tenant'];
    if (!tenant) continue;
    const refs = new Set([`\${aws_vpc_peering_connection.${connection}.id}`]);
    for (const [id, a] of accepters) {
      if (a.vpc_peering_connection_id === `\${aws_vpc_peering_connection.${connection}.id}`) refs.add(`\${aws_vpc_peering_connection_accepter.${id}.vpc_peering_connection_id}`);
    }
    const dests = Object.values<any>(res.aws_route ?? {}).filter((r) => refs.has(String(r.vpc_peering_connection_id))).map((r) => String(r.destination_cidr_block));
    const functionSide = (cidr: string) => clusterRanges.some((range) => cidrWithin(cidr, range));
    const ingress = Object.values<any>(res.aws_vpc_security_group_ingress_rule ?? {}).filter((r) => r.tags?.['crossvpc:tenant'] === tenant).map((r) => {
      if (!r.cidr_ipv4) throw new Error(`cdk.tf.json: an ingress rule of peered tenant ${tenant} has no cidr_ipv4; the emulator models CIDR sources only`);
      return { protocol: String(r.ip_protocol), fromPort: r.from_port === undefined ? undefined : Number(r.from_port), toPort: r.to_port === undefined ? undefined : Number(r.to_port), cidr: String(r.cidr_ipv4) };
    });
    out.push({ tenant, connection, toTenant: [...new Set(dests.filter((d) => !functionSide(d)))], toFunction: [...new Set(dests.filter(functionSide))], ingress });
  }
  return out.sort((a, b) => a.tenant.localeCompare(b.tenant));
}

/** `inner` lies wholly inside `outer`. */
function cidrWithin(inner: string, outer: string): boolean {
  const a = splitCidr(inner);
  const b = splitCidr(outer);
  return a.prefix >= b.prefix && cidrContains(outer, intToIpv4(a.addr));
}
