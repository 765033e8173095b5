/**
 * `terraform apply` of plan B over a running emulation of plan A, in the order Terraform
 * may take: the instance check first (a member may be disrupted only if rollingUpdate names
 * it), then new tenant VPCs (NAT or peered) and egress tenants' NAT gateway stand-ins, IAM
 * policies, NAT ENI attachments and the pairs' documents in SSM (the write is t0), detachments
 * of retired ENIs, replaced members, peerings that go, the agents' ConfigMap, peerings that
 * come, and the new tenants' pods. A tenant may switch between the NAT and peering paths
 * (same name and VNI): its ENIs come or go with its rows, its peering with the plan. Nothing is rerun on the members: their reconcilers fetch the
 * document. Then it waits, bounded, until every live member reports the new version.
 */
import type { Cluster } from './cluster';
import type { Gateways } from './gateways';
import type { GatewayMember } from './member';
import type { EmulatedPlan } from './member-image';
import { egressTenantsOf } from './egress';
import { checkInstanceChanges, formatInstanceChanges, ReplacementReport } from './replacements';
import { sleep } from './sys';
import type { Wiring } from './wiring';
import { AgentTenant, MemberStatus, TenantTableRow } from '../contract';

export interface ApplyOptions {
  /**
   * Attach new NAT ENIs before the document write. The document references the ENIs, not
   * their attachments, so Terraform may do either first: false writes the document, then
   * attaches the ENIs `eniDelayMs` later (members must wait for them).
   * @default true
   */
  readonly eniFirst?: boolean;
  /** With eniFirst false: the ENIs arrive this long after the document write. @default 3000 */
  readonly eniDelayMs?: number;
  /** Run right after the document write (t0, ms since the epoch): e.g. fail the master mid-transition. */
  readonly afterDocumentWrite?: (t0: number) => void | Promise<void>;
  /** Bound on waiting for members to report the new version, after the last action. @default 20000 */
  readonly settleMs?: number;
}

export type TenantPath = 'nat' | 'peering';

/** Tenants of either path, by name (a tenant keeps its name, and its VNI, across a path switch). */
export interface TenantChanges {
  readonly added: string[];
  readonly retired: string[];
  /** In both plans on the same path, with a different agent entry, member row (destinations, CIDRs, ENIs) or peering. */
  readonly edited: string[];
  /** In both plans on different paths (NAT ENIs go or come, the peering appears or goes). */
  readonly switched: Array<{ readonly tenant: string; readonly to: TenantPath }>;
  readonly unchanged: string[];
  /** Each tenant of either plan: its path in plan B, or in plan A for a retired one. */
  readonly paths: Record<string, TenantPath>;
}

/** Tenants whose internet egress ('tenantVpc') plan B turns on or off. */
export interface EgressChanges {
  readonly on: string[];
  readonly off: string[];
}

export interface MemberApplied {
  readonly id: string;
  /** False when the member was down (failed) while the apply settled. */
  readonly live: boolean;
  readonly replaced: boolean;
  /** The SSM version the member must report. */
  readonly want?: number;
  /** From t0 until its status first reported `want` (any result). */
  readonly appliedMs?: number;
  /** From t0 until it reported `want` with no tenant pending (every ENI found). */
  readonly settledMs?: number;
  readonly status?: MemberStatus;
  /** A status file the member wrote but the contract parser refused. */
  readonly statusError?: string;
}

export interface ApplyReport {
  readonly instances: ReplacementReport;
  readonly tenants: TenantChanges;
  /** pair -> the version written to SSM (pairs whose document changed). */
  readonly documents: Record<number, number>;
  /** The document write (ms since the epoch); undefined when no document changed. */
  readonly t0?: number;
  /** The agents' ConfigMap write (ms since the epoch): t0 of a change no document carries (peered tenants). */
  readonly agentsAt: number;
  readonly egress: EgressChanges;
  /** ENIs hot-plugged and unplugged, per member. */
  readonly enis: Record<string, { attached: string[]; detached: string[] }>;
  readonly members: MemberApplied[];
  /** Every live member reported the version it must, with nothing pending, within the bound. */
  readonly settled: boolean;
}

/** What the applier drives: the run's parts and a few of the Emulation's views. */
export interface ApplyContext {
  readonly wiring: Wiring;
  readonly gateways: Gateways;
  readonly cluster: Cluster;
  readonly progress: (msg: string) => void;
  readonly isActive: (tenant: string) => boolean;
  /** VPC (and Redis for active tenants) of new tenants; a second service for tenants whose probe moved. */
  readonly wireTenants: (tenants: readonly AgentTenant[]) => void;
  /** VPC fabric and Redis of new peered tenants of plan B (not linked yet). */
  readonly wirePeered: (plan: EmulatedPlan, tenants: readonly string[]) => void;
  /** Plan B's peering connections (and routes, rules) of these tenants. */
  readonly linkPeerings: (plan: EmulatedPlan, tenants: readonly string[]) => void;
  /** Destroy these tenants' peering connections with their routes and rules. */
  readonly unlinkPeerings: (tenants: readonly string[]) => void;
  /** Plan B's egress tenants' NAT gateway stand-ins toward the emulated internet (idempotent). */
  readonly wireInternet: (plan: EmulatedPlan) => void;
}

/** Plan B may not be applied as it is: nothing was changed. */
export class TransitionRefused extends Error {
  override readonly name = 'TransitionRefused';
}

const rowKey = (rows: readonly TenantTableRow[], name: string) => JSON.stringify(rows.find((r) => r.name === name) ?? null);

/** Each tenant of a plan: its path and what the plan holds for it (agent entry; a peered tenant's peering too). */
function tenantEntries(p: EmulatedPlan): Map<string, { path: TenantPath; key: string }> {
  const out = new Map<string, { path: TenantPath; key: string }>();
  for (const t of p.agentConfig.tenants) out.set(t.name, { path: 'nat', key: JSON.stringify(t) });
  for (const t of p.agentConfig.peered ?? []) out.set(t.name, { path: 'peering', key: JSON.stringify([t, p.peerings.find((x) => x.tenant === t.name) ?? null]) });
  return out;
}

/** What plan B does to each tenant of either path; `members`' rows (plan A's) against `nextRows` (plan B's) for NAT tenants. */
export function tenantChanges(before: EmulatedPlan, after: EmulatedPlan, members: readonly GatewayMember[], nextRows: (m: GatewayMember) => readonly TenantTableRow[]): TenantChanges {
  const a = tenantEntries(before);
  const b = tenantEntries(after);
  const both = [...b.keys()].filter((n) => a.has(n));
  const switched = both.filter((n) => a.get(n)!.path !== b.get(n)!.path).map((tenant) => ({ tenant, to: b.get(tenant)!.path }));
  const edited = both.filter((n) => a.get(n)!.path === b.get(n)!.path && (a.get(n)!.key !== b.get(n)!.key || (b.get(n)!.path === 'nat' && members.some((m) => rowKey(m.tenants, n) !== rowKey(nextRows(m), n)))));
  return {
    added: [...b.keys()].filter((n) => !a.has(n)),
    retired: [...a.keys()].filter((n) => !b.has(n)),
    edited,
    switched,
    unchanged: both.filter((n) => !edited.includes(n) && !switched.some((s) => s.tenant === n)),
    paths: Object.fromEntries([...a, ...b].map(([n, e]) => [n, e.path])),
  };
}

/** Egress tenants of plan B that plan A lacked (on), and the other way round (off). */
export function egressChanges(before: EmulatedPlan, after: EmulatedPlan): EgressChanges {
  const a = egressTenantsOf(before).map((t) => t.name);
  const b = egressTenantsOf(after).map((t) => t.name);
  return { on: b.filter((n) => !a.includes(n)), off: a.filter((n) => !b.includes(n)) };
}

/** Arguments of aws_network_interface_attachment whose change makes Terraform replace the attachment (detach, attach). */
const ATTACHMENT_FORCE_NEW = ['device_index', 'instance_id', 'network_interface_id', 'network_card_index'] as const;

/**
 * NAT ENI attachments in both plans that Terraform would replace (detach and attach again,
 * cutting the tenant's sessions on that member), e.g. a tenant moved into a freed slot: tenant
 * name -> what changed. Tenants come from the attached ENI's crossvpc:tenant tag.
 */
export function replacedAttachments(before: any, after: any): Record<string, string[]> {
  const a = before.resource?.aws_network_interface_attachment ?? {};
  const b = after.resource?.aws_network_interface_attachment ?? {};
  const out: Record<string, string[]> = {};
  for (const [id, att] of Object.entries<any>(b)) {
    const old = a[id];
    if (!old) continue;
    const changed = ATTACHMENT_FORCE_NEW.filter((k) => JSON.stringify(old[k]) !== JSON.stringify(att[k])).map((k) => `${k} ${JSON.stringify(old[k])} -> ${JSON.stringify(att[k])}`);
    if (!changed.length) continue;
    const eni = /^\$\{aws_network_interface\.([^.]+)\.id\}$/.exec(String(att.network_interface_id))?.[1];
    const tenant = String(after.resource?.aws_network_interface?.[eni ?? '']?.tags?.['crossvpc:tenant'] ?? id);
    (out[tenant] ??= []).push(`${id}: ${changed.join(', ')}`);
  }
  return out;
}

/**
 * The peered tenants plan B changes in a way the emulator does not apply to a running run
 * (a peered tenant's routes, rules, CIDRs or destinations edited in place): the reason, or undefined.
 */
export function unsupportedPeeringEdit(changes: TenantChanges): string | undefined {
  const edited = changes.edited.filter((n) => changes.paths[n] === 'peering');
  if (!edited.length) return undefined;
  return `plan B edits peered tenant(s) ${edited.join(', ')} in place (ConfigMap entry or peering: CIDRs, destinations, routes, rules); the emulator applies peering adds, retirements and NAT <-> peering switches to a running run, not peering edits: emulate plan B on its own`;
}

export async function applyPlan(ctx: ApplyContext, before: EmulatedPlan, next: EmulatedPlan, opts: ApplyOptions = {}): Promise<ApplyReport> {
  const { wiring, gateways, cluster, progress } = ctx;
  const instances = checkInstanceChanges(before.plan.json, next.plan.json);
  progress(formatInstanceChanges(instances));
  if (!instances.ok) throw new TransitionRefused(`the transition is refused: ${instances.violations.join('; ')}`);
  const created = instances.changes.filter((c) => c.kind === 'create');
  if (created.length) throw new TransitionRefused(`plan B adds gateway members (${created.map((c) => c.member).join(', ')}); a new pair in a running emulation is not supported yet`);
  const replaced = instances.changes.filter((c) => c.kind === 'replace').map((c) => c.member);
  // A stop/start keeps the instance and its disk (cloud-init does not run new user data again): a reboot.
  const restarted = instances.changes.filter((c) => c.kind === 'stop-start').map((c) => c.member);
  const running = gateways.all();
  const tenants = tenantChanges(before, next, running, (m) => gateways.nextRows(next, m));
  const refused = unsupportedPeeringEdit(tenants);
  if (refused) throw new TransitionRefused(refused);
  const reattached = Object.entries(replacedAttachments(before.plan.json, next.plan.json));
  if (reattached.length) {
    throw new TransitionRefused(`plan B replaces NAT ENI attachments of tenant(s) ${reattached.map(([t]) => t).join(', ')} (${reattached.flatMap(([, w]) => w).join('; ')}): Terraform would detach and attach their ENIs again, cutting their sessions, and the emulator does not apply that to a running run; keep every tenant's slot (a tenant moved off the NAT path keeps its pair and slot, README "The peering path")`);
  }
  const egress = egressChanges(before, next);
  const peered = (names: readonly string[]) => names.filter((n) => tenants.paths[n] === 'peering');
  const switchedTo = (to: TenantPath) => tenants.switched.filter((s) => s.to === to).map((s) => s.tenant);
  progress(`tenants: added ${tenants.added.map((n) => `${n}${tenants.paths[n] === 'peering' ? ' (peered)' : ''}`).join(', ') || '-'}; retired ${tenants.retired.map((n) => `${n}${tenants.paths[n] === 'peering' ? ' (peered)' : ''}`).join(', ') || '-'}; edited ${tenants.edited.join(', ') || '-'}; switched ${tenants.switched.map((s) => `${s.tenant} to ${s.to === 'nat' ? 'NAT' : 'peering'}`).join(', ') || '-'}; internet egress on ${egress.on.join(', ') || '-'}, off ${egress.off.join(', ') || '-'}`);

  // Tenant VPCs (and their own NAT gateways) exist before anything points at them; the role's new policy before the members need it.
  ctx.wireTenants(next.agentConfig.tenants.filter((t) => tenants.added.includes(t.name) || tenants.edited.includes(t.name) || switchedTo('nat').includes(t.name)));
  ctx.wirePeered(next, peered(tenants.added));
  ctx.wireInternet(next);
  gateways.updateIdentities(next, replaced);

  const eniFirst = opts.eniFirst ?? true;
  const enis: ApplyReport['enis'] = {};
  const keep = running.filter((m) => !replaced.includes(m.id));
  const attachAll = () => {
    for (const m of keep) {
      const r = gateways.syncEnis(next, m, gateways.nextRows(next, m));
      (enis[m.id] ??= { attached: [], detached: [] }).attached.push(...r.attached);
      if (r.attached.length) progress(`${m.id}: NAT ENI(s) of ${r.attached.join(', ')} attached (hot-plug)`);
    }
  };
  if (eniFirst) attachAll();

  // The document write: every pair whose value changed gets the next SSM version.
  const documents: Record<number, number> = {};
  let t0: number | undefined;
  for (const [pair, doc] of next.documents) {
    const put = wiring.putParameter(doc.parameter.name, doc.value);
    if (!put.changed) continue;
    documents[pair] = put.version;
    t0 ??= Date.now();
    progress(`pair ${pair}: document ${doc.parameter.name} version ${put.version} written to SSM (${Buffer.byteLength(doc.value)} bytes stored)`);
  }
  if (t0 !== undefined && opts.afterDocumentWrite) await opts.afterDocumentWrite(t0);

  let late: Promise<void> = Promise.resolve();
  if (!eniFirst) {
    const delay = opts.eniDelayMs ?? 3000;
    late = (async () => {
      await sleep(delay);
      progress(`${delay} ms after the document write:`);
      attachAll();
    })();
  }
  // Retired tenants' attachments and ENIs go (Terraform destroys them beside the document update).
  for (const m of keep) {
    if (!gateways.isRunning(m)) continue;
    const rows = gateways.nextRows(next, m);
    const r = gateways.syncEnis(next, m, eniFirst ? rows : m.tenants.filter((x) => rows.some((y) => y.eniMac === x.eniMac)), { detach: true });
    (enis[m.id] ??= { attached: [], detached: [] }).detached.push(...r.detached);
    if (r.detached.length) progress(`${m.id}: NAT ENI(s) of ${r.detached.join(', ')} detached and deleted`);
  }
  for (const id of replaced) await gateways.replace(running.find((m) => m.id === id)!, next);
  for (const id of restarted) {
    progress(`${id}: stopped and started (the instance keeps its disk; new user data would not run again)`);
    await gateways.reboot(running.find((m) => m.id === id)!, next);
  }

  // The plan does not order peering resources against the ConfigMap; the emulation takes the
  // order that never routes a peered range the agents do not guard (README, "Plan transitions"):
  // a peering goes before the agents forget its tenant, and comes after they know it.
  const unlinked = [...peered(tenants.retired), ...switchedTo('nat')];
  if (unlinked.length) ctx.unlinkPeerings(unlinked);
  const agentsAt = Date.now();
  const linked = [...peered(tenants.added), ...switchedTo('peering')];
  if (linked.length) {
    // A real cluster's kubelet delivers the ConfigMap up to a minute later (README, "Honest
    // limits"): the emulation routes the peering only once every agent guards it.
    const ms = await cluster.updateAgentConfigApplied(next.agentConfigText);
    progress(`every node agent applied the new ConfigMap after ${ms} ms; peering(s) of ${linked.join(', ')} routed now`);
    ctx.linkPeerings(next, linked);
  } else cluster.updateAgentConfig(next.agentConfigText);
  // Pods of new tenants of either path, after the agents got the ConfigMap; a switched tenant keeps its pods.
  await cluster.addPodsForTenants(tenants.added.filter((t) => ctx.isActive(t)), false, false);
  await late;

  const members = await settle(ctx, next, [...replaced, ...restarted], documents, t0, opts.settleMs ?? 20_000);
  const settled = members.every((m) => !m.live || m.settledMs !== undefined);
  progress(`members: ${members.map((m) => `${m.id} ${!m.live ? 'down' : m.settledMs !== undefined ? `version ${m.want} after ${(m.settledMs / 1000).toFixed(1)} s` : `NOT at version ${m.want} (status: ${m.status ? `version ${m.status.version} ${m.status.result} pending ${m.status.pending.join(',') || '-'} ${m.status.error}` : m.statusError ?? 'none'})`}`).join('; ')}`);
  return { instances, tenants, documents, t0, agentsAt, egress, enis, members, settled };
}

/** Poll every member's status until it reports the version of its pair's document with nothing pending. */
async function settle(ctx: ApplyContext, next: EmulatedPlan, replaced: readonly string[], documents: Record<number, number>, t0: number | undefined, boundMs: number): Promise<MemberApplied[]> {
  const { gateways, wiring } = ctx;
  const want = (m: GatewayMember) => {
    const doc = next.documents.get(m.pair);
    return doc ? wiring.parameter(doc.parameter.name)?.version : undefined;
  };
  const watch = gateways.all().filter((m) => documents[m.pair] !== undefined || replaced.includes(m.id));
  const from = t0 ?? Date.now();
  const seen = new Map<string, { appliedMs?: number; settledMs?: number; status?: MemberStatus; statusError?: string }>();
  const deadline = Date.now() + boundMs;
  for (let round = 0; round < Math.ceil(boundMs / 50) + 1; round++) {
    for (const m of watch) {
      const s = seen.get(m.id) ?? {};
      seen.set(m.id, s);
      if (s.settledMs !== undefined || !gateways.isRunning(m)) continue;
      try {
        s.status = gateways.status(m);
        s.statusError = undefined;
      } catch (e) {
        s.statusError = (e as Error).message;
      }
      const v = want(m);
      if (!s.status || v === undefined || s.status.version < v) continue;
      s.appliedMs ??= Date.now() - from;
      if (!s.status.pending.length && s.status.result !== 'apply_failed' && s.status.result !== 'invalid') s.settledMs = Date.now() - from;
    }
    if (Date.now() > deadline || watch.every((m) => seen.get(m.id)?.settledMs !== undefined || !gateways.isRunning(m))) break;
    await sleep(50);
  }
  return watch.map((m) => ({ id: m.id, live: gateways.isRunning(m), replaced: replaced.includes(m.id), want: want(m), ...seen.get(m.id) }));
}

