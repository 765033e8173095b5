/**
 * Every validation failure in the library is a CrossVpcError: it names the
 * construct path, the prop, the bad value and the fix, so a broken plan is
 * never synthesized and the user never has to guess.
 */
export class CrossVpcError extends Error {
  public readonly constructPath: string;
  public readonly prop: string;
  public readonly value: unknown;
  public readonly fix: string;

  constructor(args: { path: string; prop: string; value: unknown; problem: string; fix: string }) {
    super(
      `${args.path}: invalid ${args.prop} = ${formatValue(args.value)}: ${args.problem}. Fix: ${args.fix}`,
    );
    this.name = 'CrossVpcError';
    this.constructPath = args.path;
    this.prop = args.prop;
    this.value = args.value;
    this.fix = args.fix;
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** cdktf encodes unresolved values as `${TfToken[...]}` strings, lists as `#{TfToken[...]}` and numbers as huge negatives. */
export function isUnresolvedToken(v: unknown): boolean {
  if (typeof v === 'string') return /\$\{TfToken\[|#\{TfToken\[/.test(v);
  if (typeof v === 'number') return v <= -1.8881545897087e289 && v >= -1.8881545897087626e289 * 1.001;
  return false;
}
