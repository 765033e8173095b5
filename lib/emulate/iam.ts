/**
 * The instance role a gateway member runs with, read from the plan: instance -> instance
 * profile -> role -> its inline policies (aws_iam_role_policy) and attached managed policies
 * (aws_iam_role_policy_attachment of an aws_iam_policy), each either an
 * aws_iam_policy_document data source or a JSON string. The emulated cloud serves each member
 * its own credentials and answers an API call only when these statements allow it, so the
 * emulation runs with the plan's least privilege: a call the role would not allow in AWS
 * fails here too. Conditions, principals and NotAction/NotResource are not modelled: a
 * statement that uses them is refused with an error rather than guessed.
 */
import { evaluate } from './plan';

export interface PolicyStatement {
  readonly effect: 'Allow' | 'Deny';
  /** Action patterns (`ssm:GetParameter`, `ssm:Get*`, `*`): matched case-insensitively. */
  readonly actions: string[];
  /** Resource ARN patterns with `*` and `?`, interpolations already resolved. */
  readonly resources: string[];
}

export interface RolePermissions {
  /** The role's logical id in the plan (what the assumed-role ARN names). */
  readonly role: string;
  readonly statements: PolicyStatement[];
}

type Json = any;

/** The logical id a `${type.id.attr}` reference (or a whole-string reference) points at. */
function refTo(type: string, value: unknown, what: string): string {
  const m = new RegExp(`^\\$\\{${type.replace(/\./g, '\\.')}\\.([A-Za-z0-9_-]+)\\.[a-z_]+\\}$`).exec(String(value ?? ''));
  if (!m) throw new Error(`${what}: expected a reference to a ${type}, got ${JSON.stringify(value)}`);
  return m[1];
}

const list = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** Statements of one policy: an aws_iam_policy_document reference or a JSON policy text. */
function policyStatements(json: Json, policy: unknown, resolve: (ref: string) => string, what: string): PolicyStatement[] {
  const ref = /^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$/.exec(String(policy ?? ''));
  if (ref) {
    const doc = json.data?.aws_iam_policy_document?.[ref[1]];
    if (!doc) throw new Error(`${what}: data.aws_iam_policy_document.${ref[1]} is not in the plan`);
    const raw = doc.statement ?? [];
    return (Array.isArray(raw) ? raw : [raw]).map((s: Json, i: number) => {
      const where = `${what} (data.aws_iam_policy_document.${ref[1]} statement ${i})`;
      for (const k of ['condition', 'not_actions', 'not_resources']) {
        if (s[k] !== undefined) throw new Error(`${where}: ${k} is not modelled by the emulator`);
      }
      return statement(s.effect ?? 'Allow', list(s.actions), list(s.resources), resolve, where);
    });
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(evaluate(String(policy ?? ''), resolve));
  } catch (e) {
    throw new Error(`${what}: the policy is neither an aws_iam_policy_document reference nor JSON the emulator can evaluate: ${(e as Error).message}`);
  }
  const stmts = Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
  return stmts.filter(Boolean).map((s: Json, i: number) => {
    for (const k of ['Condition', 'NotAction', 'NotResource', 'NotPrincipal']) {
      if (s[k] !== undefined) throw new Error(`${what} statement ${i}: ${k} is not modelled by the emulator`);
    }
    return statement(s.Effect, list(s.Action), list(s.Resource), (r) => r, `${what} statement ${i}`);
  });
}

function statement(effect: unknown, actions: string[], resources: string[], resolve: (ref: string) => string, where: string): PolicyStatement {
  if (effect !== 'Allow' && effect !== 'Deny') throw new Error(`${where}: effect ${JSON.stringify(effect)} is neither Allow nor Deny`);
  return { effect, actions, resources: resources.map((r) => evaluate(r, resolve)) };
}

/** The permissions of the role an aws_instance of the plan runs with. */
export function instancePermissions(json: Json, instanceId: string, resolve: (ref: string) => string): RolePermissions {
  const inst = json.resource?.aws_instance?.[instanceId];
  if (!inst) throw new Error(`aws_instance.${instanceId} is not in the plan`);
  if (inst.iam_instance_profile === undefined) return { role: '', statements: [] };
  const profileId = refTo('aws_iam_instance_profile', inst.iam_instance_profile, `aws_instance.${instanceId}.iam_instance_profile`);
  const profile = json.resource?.aws_iam_instance_profile?.[profileId];
  if (!profile) throw new Error(`aws_iam_instance_profile.${profileId} (of aws_instance.${instanceId}) is not in the plan`);
  const role = refTo('aws_iam_role', profile.role, `aws_iam_instance_profile.${profileId}.role`);
  const ofRole = (v: unknown) => { try { return refTo('aws_iam_role', v, '') === role; } catch { return false; } };
  const statements: PolicyStatement[] = [];
  for (const [id, rp] of Object.entries<Json>(json.resource?.aws_iam_role_policy ?? {})) {
    if (ofRole(rp.role)) statements.push(...policyStatements(json, rp.policy, resolve, `aws_iam_role_policy.${id}`));
  }
  for (const [id, att] of Object.entries<Json>(json.resource?.aws_iam_role_policy_attachment ?? {})) {
    if (!ofRole(att.role)) continue;
    const policyId = refTo('aws_iam_policy', att.policy_arn, `aws_iam_role_policy_attachment.${id}.policy_arn`);
    const p = json.resource?.aws_iam_policy?.[policyId];
    if (!p) throw new Error(`aws_iam_policy.${policyId} (attached to ${role}) is not in the plan`);
    statements.push(...policyStatements(json, p.policy, resolve, `aws_iam_policy.${policyId}`));
  }
  return { role, statements };
}

/** IAM's wildcard match: `*` any run of characters, `?` one. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const re = new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, ignoreCase ? 'i' : '');
  return re.test(value);
}

/** Explicit deny wins, then an allow, else the implicit deny. */
export function isAllowed(statements: readonly PolicyStatement[], action: string, resourceArn: string): boolean {
  const hits = statements.filter((s) => s.actions.some((a) => wildcardMatch(a, action, true)) && s.resources.some((r) => wildcardMatch(r, resourceArn)));
  return !hits.some((s) => s.effect === 'Deny') && hits.some((s) => s.effect === 'Allow');
}
