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

/**
 * The model's own token test, for callers of buildCrossVpcModel that pass no
 * `isUnresolved` (the constructs pass cdktf's Token.isUnresolved and this together).
 * cdktf encodes unresolved strings as `${TfToken[...]}`, list elements as `#{TfToken[...]}`,
 * numbers as doubles whose top 16 bits are 0xfdff (0xfbff for number lists), and
 * references such as `variable.value` are objects with a resolve() method.
 */
export function isUnresolvedToken(v: unknown): boolean {
  if (typeof v === 'string') return /[$#]\{TfToken\[/.test(v);
  if (typeof v === 'number') {
    const buf = new ArrayBuffer(8);
    new Float64Array(buf)[0] = v;
    const top = new Uint32Array(buf)[1] >>> 16;
    return top === 0xfdff || top === 0xfbff;
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return typeof (v as { resolve?: unknown }).resolve === 'function';
  return false;
}
