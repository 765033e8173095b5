/**
 * STATE_DIR/status: what a member's reconciler last did, written atomically after every
 * attempt and read by the emulator, `crossvpc doctor --live` and (later) the metrics.
 * Format: `key=value` lines, keys below; values hold no newline.
 */

export const MEMBER_STATUS_FILE = 'status';

export const MEMBER_STATUS_KEYS = [
  /** SSM Parameter.Version of the document applied last (0: none yet). */
  'version',
  /** sha256 of the decoded document applied last. */
  'sha256',
  /** Unix seconds of the last successful apply. */
  'applied_at',
  /** Outcome of the last attempt: applied | unchanged | fetch_failed | invalid | apply_failed. */
  'result',
  /** Tenants of the document whose NAT ENI is not attached yet (comma-separated; `-` for none). */
  'pending',
  /** Why the last attempt failed (`-` when it did not). */
  'error',
] as const;

export type MemberStatusKey = (typeof MEMBER_STATUS_KEYS)[number];
export const MEMBER_STATUS_RESULTS = ['applied', 'unchanged', 'fetch_failed', 'invalid', 'apply_failed'] as const;
export type MemberStatusResult = (typeof MEMBER_STATUS_RESULTS)[number];

export interface MemberStatus {
  readonly version: number;
  readonly sha256: string;
  readonly appliedAt: number;
  readonly result: MemberStatusResult;
  readonly pending: string[];
  readonly error: string;
}

export function parseMemberStatus(text: string): MemberStatus {
  const kv: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1);
  }
  const missing = MEMBER_STATUS_KEYS.filter((k) => kv[k] === undefined);
  if (missing.length) throw new Error(`member status lacks ${missing.join(', ')}`);
  const result = kv.result as MemberStatusResult;
  if (!MEMBER_STATUS_RESULTS.includes(result)) throw new Error(`member status: unknown result ${result}`);
  return {
    version: Number(kv.version),
    sha256: kv.sha256,
    appliedAt: Number(kv.applied_at),
    result,
    pending: kv.pending === '-' ? [] : kv.pending.split(','),
    error: kv.error,
  };
}
