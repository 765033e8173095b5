/**
 * `terraform apply` of plan B over a running emulation of plan A, in the order Terraform
 * may take: the instance check first (a member may be disrupted only if rollingUpdate names
 * it), then new tenant VPCs, IAM policies, NAT ENI attachments and the pairs' documents in SSM
 * (the write is t0), detachments of retired ENIs, replaced members, the agents' ConfigMap and
 * the new tenants' pods. Nothing is rerun on the members: their reconcilers fetch the
 * document. Then it waits, bounded, until every live member reports the new version.
 */
import type { Cluster } from './cluster';
import type { Gateways } from './gateways';
import type { GatewayMember } from './member';
import type { EmulatedPlan } from './member-image';
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

export interface TenantChanges {
  readonly added: string[];
  readonly retired: string[];
  /** In both plans, with a different agent entry or member row (destinations, CIDRs, ENIs). */
  readonly edited: string[];
  readonly unchanged: string[];
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
}

/** Plan B may not be applied as it is: nothing was changed. */
export class TransitionRefused extends Error {
  override readonly name = 'TransitionRefused';
}

const rowKey = (rows: readonly TenantTableRow[], name: string) => JSON.stringify(rows.find((r) => r.name === name) ?? null);

export function tenantChanges(before: EmulatedPlan, after: EmulatedPlan, members: readonly GatewayMember[], nextRows: (m: GatewayMember) => readonly TenantTableRow[]): TenantChanges {
  const a = new Map(before.agentConfig.tenants.map((t) => [t.name, JSON.stringify(t)]));
  const b = new Map(after.agentConfig.tenants.map((t) => [t.name, JSON.stringify(t)]));
  const edited = [...b.keys()].filter((n) => a.has(n) && (a.get(n) !== b.get(n) || members.some((m) => rowKey(m.tenants, n) !== rowKey(nextRows(m), n))));
  return {
    added: [...b.keys()].filter((n) => !a.has(n)),
    retired: [...a.keys()].filter((n) => !b.has(n)),
    edited,
    unchanged: [...b.keys()].filter((n) => a.has(n) && !edited.includes(n)),
  };
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
  progress(`tenants: added ${tenants.added.join(', ') || '-'}; retired ${tenants.retired.join(', ') || '-'}; edited ${tenants.edited.join(', ') || '-'}`);

  // Tenant VPCs exist before anything points at them; the role's new policy before the members need it.
  ctx.wireTenants(next.agentConfig.tenants.filter((t) => tenants.added.includes(t.name) || tenants.edited.includes(t.name)));
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

  cluster.updateAgentConfig(next.agentConfigText);
  await cluster.addPodsForTenants(tenants.added.filter((t) => ctx.isActive(t)), false, false);
  await late;

  const members = await settle(ctx, next, [...replaced, ...restarted], documents, t0, opts.settleMs ?? 20_000);
  const settled = members.every((m) => !m.live || m.settledMs !== undefined);
  progress(`members: ${members.map((m) => `${m.id} ${!m.live ? 'down' : m.settledMs !== undefined ? `version ${m.want} after ${(m.settledMs / 1000).toFixed(1)} s` : `NOT at version ${m.want} (status: ${m.status ? `version ${m.status.version} ${m.status.result} pending ${m.status.pending.join(',') || '-'} ${m.status.error}` : m.statusError ?? 'none'})`}`).join('; ')}`);
  return { instances, tenants, documents, t0, enis, members, settled };
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

