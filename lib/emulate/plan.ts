import { readFileSync } from 'fs';
import { parse } from 'yaml';
import { AGENT_CONFIG_KEY } from '../contract/agent-config';
import { cidrHost as cidrhost } from '../contract/ipv4';
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
    userData: userDataOf(inst, logicalId),
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

function userDataOf(inst: any, logicalId: string): string {
  try {
    return unpackUserData(String(inst.user_data_base64 ?? ''));
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
