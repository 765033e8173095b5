/**
 * What `terraform apply` would do to the gateway instances when a stack goes from plan A to
 * plan B, read from the two synthesized cdk.tf.json documents alone (pure; no state, no
 * provider). Which attributes force a new instance comes from the aws provider's
 * `aws_instance` schema (internal/service/ec2/ec2_instance.go): every `ForceNew: true`
 * attribute, plus `user_data`/`user_data_base64` through `customdiff.ForceNewIf` when
 * `user_data_replace_on_change` is true. Without it, a user data change is applied in place by
 * `modifyInstanceAttributeWithStopStart`, as is an `instance_type` change: the instance stops
 * and starts, which for a gateway member is as disruptive as a reboot. `lifecycle.ignore_changes`
 * hides an attribute's change from the plan entirely.
 *
 * Known limits: an ignore_changes entry with a sub-path (`root_block_device[0].iops`) is only
 * honoured for the whole attribute when it names it alone; a ForceNew attribute whose text is
 * unchanged but whose reference resolves to a new value (a data source such as the default
 * AMI, or a replaced resource other than the ENIs and placement groups checked below) is
 * reported as a note, not as a change.
 */
import { unpackUserData } from '../render/user-data';

/** aws_instance arguments whose change replaces the instance (ForceNew in the provider schema). */
export const INSTANCE_FORCE_NEW = [
  'ami', 'associate_public_ip_address', 'availability_zone', 'cpu_core_count', 'cpu_threads_per_core', 'cpu_options',
  'ebs_block_device', 'ebs_optimized', 'enclave_options', 'ephemeral_block_device', 'hibernation', 'host_id',
  'ipv6_address_count', 'ipv6_addresses', 'key_name', 'launch_template', 'network_interface', 'primary_network_interface',
  'placement_group', 'placement_partition_number', 'private_dns_name_options', 'private_ip', 'security_groups',
  'subnet_id', 'tenancy',
] as const;

/** Applied in place by stopping and starting the instance. */
export const INSTANCE_STOP_START = ['instance_type', 'user_data', 'user_data_base64'] as const;

/** Replaced when user_data_replace_on_change is true (customdiff.ForceNewIf). */
const USER_DATA = ['user_data', 'user_data_base64'];

/** root_block_device sub-arguments that are ForceNew (the others are modified in place). */
const ROOT_BLOCK_FORCE_NEW = ['encrypted', 'kms_key_id'];

/**
 * Resources an instance's ForceNew arguments reference, and their own ForceNew arguments: when
 * one of those is replaced, the reference is unknown until apply and the instance is replaced too.
 */
const REFERENCED_FORCE_NEW: Record<string, string[]> = {
  aws_network_interface: ['subnet_id', 'interface_type'],
  aws_placement_group: ['name', 'strategy', 'partition_count', 'spread_level'],
};

export type InstanceChangeKind = 'replace' | 'stop-start' | 'create' | 'destroy';

export interface InstanceChange {
  readonly logicalId: string;
  /** g<pair><member> from the crossvpc:pair / crossvpc:member tags (of B, or of A for a destroyed one). */
  readonly member: string;
  readonly kind: InstanceChangeKind;
  /** The arguments that cause it, each with why (`user_data_base64 (user_data_replace_on_change)`). */
  readonly because: string[];
}

export interface InstanceDiff {
  readonly logicalId: string;
  readonly member: string;
  /** Every argument whose text differs between A and B (lifecycle and the replace flag excluded). */
  readonly changed: string[];
  /** Of those, the ones lifecycle.ignore_changes hides in B: Terraform does nothing about them now. */
  readonly ignored: string[];
}

export interface ReplacementReport {
  /** Disruptive changes only: replacements, stop/starts, members created or destroyed. */
  readonly changes: InstanceChange[];
  /** Every instance present in both plans and what differs in it. */
  readonly diffs: InstanceDiff[];
  /** Members B rolls: user_data_replace_on_change true and no ignore_changes. */
  readonly rolling: string[];
  /** Why the transition is refused; empty when every disruptive change hits a rolling member. */
  readonly violations: string[];
  /** Facts worth knowing that change nothing in this plan. */
  readonly notes: string[];
  readonly ok: boolean;
}

type Json = any;

const memberOf = (inst: Json, logicalId: string): string => {
  const pair = inst?.tags?.['crossvpc:pair'];
  const member = inst?.tags?.['crossvpc:member'];
  return pair !== undefined && member !== undefined ? `g${pair}${member}` : logicalId;
};

/** lifecycle.ignore_changes as Terraform reads it: 'all', or attribute names (sub-paths honoured only for the whole attribute). */
function ignores(inst: Json): (attr: string) => boolean {
  const raw = inst?.lifecycle?.ignore_changes;
  if (raw === undefined || raw === null) return () => false;
  const list: string[] = Array.isArray(raw) ? raw.map(String) : [String(raw)];
  if (list.includes('all')) return () => true;
  return (attr) => list.includes(attr);
}

/** The member B rolls: it takes a new user data by replacement and ignores nothing. */
export function isRollingInstance(inst: Json): boolean {
  const ic = inst?.lifecycle?.ignore_changes;
  const ignoresNothing = ic === undefined || ic === null || (Array.isArray(ic) && ic.length === 0);
  return inst?.user_data_replace_on_change === true && ignoresNothing;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** `${type.name.attr}` references in a value, as [type, name]. */
function references(value: unknown): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const re = /\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}/g;
  for (const m of JSON.stringify(value ?? null).matchAll(re)) out.push([m[1], m[2]]);
  return out;
}

/** Referenced resources replaced between A and B (their own ForceNew arguments changed, or they are new). */
function replacedReference(a: Json, b: Json, value: unknown): string | undefined {
  for (const [type, name] of references(value)) {
    const forceNew = REFERENCED_FORCE_NEW[type];
    if (!forceNew) continue;
    const ra = a.resource?.[type]?.[name];
    const rb = b.resource?.[type]?.[name];
    if (!ra || !rb) return `${type}.${name} is ${ra ? 'destroyed' : 'created'}`;
    const moved = forceNew.filter((k) => !same(ra[k], rb[k]));
    if (moved.length) return `${type}.${name} is replaced (${moved.join(', ')})`;
  }
  return undefined;
}

/**
 * An argument's value for comparison. User data compares by the template Terraform will
 * evaluate, the shared parts put back from the plan's locals: a library upgrade that moves
 * the scripts into a local (or a plan of any other shape of the same text) changes no
 * member, and a changed local changes the template. Anything not packed by
 * cdktf-crossvpc (hand-made plans) compares as written.
 */
function comparable(plan: Json, key: string, value: unknown): unknown {
  if (!USER_DATA.includes(key) || typeof value !== 'string') return value;
  try {
    return unpackUserData(value, plan?.locals);
  } catch {
    return value;
  }
}

function changedArguments(a: Json, ia: Json, b: Json, ib: Json): string[] {
  const keys = [...new Set([...Object.keys(ia ?? {}), ...Object.keys(ib ?? {})])].filter((k) => k !== 'lifecycle' && k !== 'user_data_replace_on_change');
  return keys.filter((k) => !same(comparable(a, k, ia?.[k]), comparable(b, k, ib?.[k]))).sort();
}

/**
 * Compare plan A's and plan B's aws_instance resources as Terraform would plan B over A's state.
 * Disruptive changes are allowed only on members B rolls (ProxyNodePair rollingUpdate).
 */
export function checkInstanceChanges(a: Json, b: Json): ReplacementReport {
  const ia: Record<string, Json> = a?.resource?.aws_instance ?? {};
  const ib: Record<string, Json> = b?.resource?.aws_instance ?? {};
  const changes: InstanceChange[] = [];
  const diffs: InstanceDiff[] = [];
  const notes: string[] = [];
  const rolling = Object.entries(ib).filter(([, inst]) => isRollingInstance(inst)).map(([id, inst]) => memberOf(inst, id)).sort();

  for (const id of Object.keys(ia).sort()) {
    if (!ib[id]) changes.push({ logicalId: id, member: memberOf(ia[id], id), kind: 'destroy', because: ['not in plan B'] });
  }
  for (const id of Object.keys(ib).sort()) {
    const before = ia[id];
    const after = ib[id];
    const member = memberOf(after, id);
    if (!before) {
      changes.push({ logicalId: id, member, kind: 'create', because: ['not in plan A'] });
      continue;
    }
    const ignored = ignores(after);
    const changed = changedArguments(a, before, b, after);
    diffs.push({ logicalId: id, member, changed, ignored: changed.filter(ignored) });
    const replace: string[] = [];
    const stopStart: string[] = [];
    for (const attr of changed.filter((k) => !ignored(k))) {
      if ((INSTANCE_FORCE_NEW as readonly string[]).includes(attr)) replace.push(attr);
      else if (USER_DATA.includes(attr) && after.user_data_replace_on_change === true) replace.push(`${attr} (user_data_replace_on_change)`);
      else if (attr === 'root_block_device') {
        const moved = ROOT_BLOCK_FORCE_NEW.filter((k) => !same(blockOf(before[attr])?.[k], blockOf(after[attr])?.[k]));
        if (moved.length) replace.push(`root_block_device (${moved.join(', ')})`);
      } else if ((INSTANCE_STOP_START as readonly string[]).includes(attr)) stopStart.push(attr);
    }
    for (const attr of INSTANCE_FORCE_NEW) {
      if (ignored(attr) || replace.some((r) => r.startsWith(attr)) || after[attr] === undefined) continue;
      const why = replacedReference(a, b, after[attr]);
      if (why) replace.push(`${attr} (${why})`);
    }
    if (!ignored('ami') && /\$\{data\./.test(String(after.ami ?? ''))) {
      notes.push(`${member}: ami comes from a data source (${after.ami}); a new value there replaces this member on any apply`);
    }
    const hidden = changed.filter(ignored);
    if (hidden.length) notes.push(`${member}: ${hidden.join(', ')} changed but lifecycle.ignore_changes keeps the running instance as it is`);
    if (replace.length) changes.push({ logicalId: id, member, kind: 'replace', because: replace });
    else if (stopStart.length) changes.push({ logicalId: id, member, kind: 'stop-start', because: stopStart });
  }

  const violations = changes
    .filter((c) => c.kind !== 'create' && !(rolling.includes(c.member) && (c.kind === 'replace' || c.kind === 'stop-start')))
    .map((c) => `${c.member} (aws_instance.${c.logicalId}) would be ${c.kind === 'destroy' ? 'destroyed' : c.kind === 'replace' ? 'replaced' : 'stopped and started'}: ${c.because.join('; ')}; `
      + (c.kind === 'destroy' ? 'a member is removed only with its pair' : `only the member rollingUpdate names may be ${c.kind === 'replace' ? 'replaced' : 'restarted'} (rolling: ${rolling.join(', ') || 'none'})`));
  return { changes, diffs, rolling, violations, notes, ok: violations.length === 0 };
}

const blockOf = (v: Json) => (Array.isArray(v) ? v[0] : v);

export function formatInstanceChanges(r: ReplacementReport): string {
  const lines = ['gateway instances, plan A -> plan B:'];
  if (!r.changes.length) lines.push('  no member is replaced, restarted, created or destroyed');
  for (const c of r.changes) lines.push(`  ${c.member.padEnd(6)} ${c.kind.padEnd(10)} ${c.because.join('; ')}`);
  lines.push(`  rolling member(s): ${r.rolling.join(', ') || 'none'}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  for (const v of r.violations) lines.push(`  REFUSED: ${v}`);
  return lines.join('\n');
}
