import { chmodSync, mkdirSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { PairDocumentValue, readPairDocuments } from './pair-documents';
import { evaluate, parseCloudConfig, Plan, PlanMember, PlanPeering, readPeerings, readPlan } from './plan';
import { buildStandIns, PlacedStandIns, StandIns } from './standins';
import { parseUnit, UnitSpec } from './units';
import { AgentConfig, CONF_DIR, GatewayEnvKey, PairMemberName, parseGatewayEnv, STATE_DIR, TenantTableRow } from '../contract';

const UNIT_DIR = '/etc/systemd/system';

/** A synthesized plan with Terraform's apply-time values stood in: what every step of the emulation reads. */
export interface EmulatedPlan {
  readonly plan: Plan;
  readonly standIns: StandIns;
  /** tenants.json of the agents' ConfigMap, interpolated, and parsed. */
  readonly agentConfigText: string;
  readonly agentConfig: AgentConfig;
  /** Each pair's configuration document (the SSM parameter value), by pair index. */
  readonly documents: ReadonlyMap<number, PairDocumentValue>;
  /** Peered tenants as the plan builds them: connection, routes on both sides, security-group rules. */
  readonly peerings: PlanPeering[];
}

/** `previous`: the stand-ins of the plan the emulation runs now (subnets and ENIs keep their addresses). */
export function loadEmulatedPlan(file: string, previous?: PlacedStandIns): EmulatedPlan {
  const plan = readPlan(file);
  // The tenant table (with stand-in-free literal CIDRs) tells the stand-ins where tenants live.
  const rawTenants = JSON.parse(plan.agentConfigRaw.replace(/\$\{[^}]*\}/g, 'X')) as AgentConfig;
  const allTenants = [...rawTenants.tenants, ...(rawTenants.peered ?? [])];
  const standIns = buildStandIns(plan, Object.fromEntries(allTenants.map((t) => [t.name, t.cidrs])), previous);
  const agentConfigText = evaluate(plan.agentConfigRaw, standIns.resolve);
  const documents = readPairDocuments(plan, standIns.resolve);
  const agentConfig: AgentConfig = JSON.parse(agentConfigText);
  return { plan, standIns, agentConfigText, agentConfig, documents, peerings: peeringsOf(plan, agentConfig) };
}

/** The plan's peerings, one for each peered tenant of the ConfigMap and no other. */
function peeringsOf(plan: Plan, config: AgentConfig): PlanPeering[] {
  const peered = (config.peered ?? []).map((t) => t.name);
  if (!peered.length) return [];
  const { cluster } = config;
  if (!cluster) throw new Error('cdk.tf.json: the ConfigMap has peered tenants but no `cluster` ranges; the emulator tells the tenant-side routes by them');
  // The emulated pods take function-VPC addresses and reach a peering from their node's IP (wiring.vpcCniSnat).
  if (cluster.podCidrs.length) throw new Error(`cdk.tf.json: peered tenants (${peered.join(', ')}) with functionVpc.podCidrs (${cluster.podCidrs.join(', ')}): the tenants see pod addresses there, and the emulator's pods are not in those ranges; emulating this is not supported yet`);
  const peerings = readPeerings(plan.json, [cluster.vpcCidr, ...cluster.podCidrs, ...cluster.nodeCidrs]);
  const names = peerings.map((p) => p.tenant);
  if (names.join(',') !== [...peered].sort().join(',')) throw new Error(`cdk.tf.json: the ConfigMap's peered tenants (${peered.join(', ')}) are not the tenants of the aws_vpc_peering_connection resources (${names.join(', ') || 'none'})`);
  return peerings;
}

/** A member's tenant rows: its half of its pair's document (what its reconciler applies, and which NAT ENIs are attached to it). */
export function memberRows(p: EmulatedPlan, m: { pair: number; member: string; logicalId?: string }): TenantTableRow[] {
  const doc = p.documents.get(m.pair);
  if (!doc) throw new Error(`pair ${m.pair} has no configuration document (an aws_ssm_parameter tagged crossvpc:pair=${m.pair}) in the plan`);
  const rows = doc.rows[m.member as PairMemberName];
  if (!rows) throw new Error(`pair ${m.pair}'s document has no member ${m.member}`);
  return rows;
}

/** A member's user data after Terraform's interpolation. */
export function memberUserData(p: EmulatedPlan, m: PlanMember): string {
  return evaluate(m.userData, p.standIns.resolve);
}

/** The MAC of a member's primary ENI: the aws_network_interface whose id gateway.env names. */
export function primaryMac(p: EmulatedPlan, selfEni: string): string {
  const enis = p.plan.json.resource?.aws_network_interface ?? {};
  const key = Object.keys(enis).find((k) => p.standIns.resolve(`aws_network_interface.${k}.id`) === selfEni);
  if (!key) throw new Error(`no aws_network_interface has id ${selfEni}`);
  return p.standIns.resolve(`aws_network_interface.${key}.mac_address`);
}

/** What cloud-init leaves on a member's disk, read back: its config and enabled units; and its rows of the pair's document. */
export interface MemberImage {
  readonly id: string; // g0a
  readonly pair: number;
  readonly member: string;
  /** The member's "disk": its /etc/crossvpc, /var/lib/crossvpc and /run/crossvpc live under here. */
  readonly root: string;
  readonly env: Readonly<Record<GatewayEnvKey, string>>;
  /** The member's rows of its pair's document when the image was made (the attached NAT ENIs). */
  readonly tenants: readonly TenantTableRow[];
  /** The units runcmd enables, in its order. */
  readonly units: readonly UnitSpec[];
}

export const memberId = (m: { pair: number; member: string }) => `g${m.pair}${m.member}`;

/** Evaluate a member's user data, write its files under runDir/<id>, and read them back by name. */
export function loadMemberImage(p: EmulatedPlan, m: PlanMember, runDir: string): MemberImage {
  const id = memberId(m);
  const cc = parseCloudConfig(memberUserData(p, m));
  const root = join(runDir, id);
  const files = writeMemberFiles(root, cc.writeFiles);
  const file = (path: string) => {
    const text = files.get(path);
    if (text === undefined) throw new Error(`${m.logicalId}: user data writes no ${path}`);
    return text;
  };
  const enable = cc.runcmd.find((c) => c[0] === 'systemctl' && c[1] === 'enable');
  if (!enable) throw new Error(`${m.logicalId}: runcmd enables no units`);
  const units = enable.filter((u) => u.endsWith('.service')).map((name) => {
    if (!files.has(`${UNIT_DIR}/${name}`)) throw new Error(`${m.logicalId}: unit ${name} is enabled but not written`);
    return parseUnit(name, file(`${UNIT_DIR}/${name}`));
  });
  return {
    id,
    pair: m.pair,
    member: m.member,
    root,
    env: parseGatewayEnv(file(`${CONF_DIR}/gateway.env`)),
    tenants: memberRows(p, m),
    units,
  };
}

/** Write the /etc/crossvpc files under root (units stay in memory); refuse any other host path. */
function writeMemberFiles(root: string, writeFiles: Array<{ path: string; permissions: string; content: string }>): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of writeFiles) {
    files.set(f.path, f.content);
    if (f.path.startsWith(`${UNIT_DIR}/`)) continue;
    if (!f.path.startsWith(`${CONF_DIR}/`)) throw new Error(`user data writes ${f.path}, outside ${CONF_DIR}; the emulator would have to touch the host`);
    const dest = join(root, f.path);
    mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
    writeFileSync(dest, f.content, { mode: parseInt(f.permissions, 8) });
    chmodSync(dest, parseInt(f.permissions, 8));
  }
  mkdirSync(join(root, 'run/crossvpc'), { recursive: true, mode: 0o755 });
  mkdirSync(join(root, STATE_DIR), { recursive: true, mode: 0o755 });
  return files;
}
