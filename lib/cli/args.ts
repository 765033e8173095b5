import { existsSync, readFileSync } from 'fs';
import { dirname, join } from 'path';
import { parseArgs, ParseArgsConfig } from 'util';

/** Bad command line: the caller prints the one-line message, then the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;
/** Named through parseArgs itself: node's result types are not exported. */
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: true }>>;

/**
 * `util.parseArgs` with `strict: true`, whose errors become one short UsageError line
 * (node's own text adds advice about `--` that does not fit here).
 */
export function parseCommandLine<O extends Options>(args: readonly string[], options: O, maxPositionals: number): Parsed<O> {
  let parsed: Parsed<O>;
  try {
    // Positionals are counted below, so that the error can say which one is extra.
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(shortParseError(e as Error & { code?: string }));
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument '${parsed.positionals[maxPositionals]}'`);
  }
  return parsed;
}

function shortParseError(e: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = quoted?.split(' ')[0];
      if (/does not take an argument/.test(e.message)) return `${option}: takes no value`;
      // "argument missing", or "ambiguous" when the next word starts with '-'.
      return `${option}: missing value (write ${option}=VALUE for one that starts with '-')`;
    }
    default:
      return e.message.split('\n')[0];
  }
}

/** An integer option's value, or a UsageError naming the option, the value and the range. */
export function integerOption(option: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${option}: got '${value}', expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * This package's version, from the nearest package.json named cdktf-crossvpc above this
 * file: dist/lib/cli/ when compiled, lib/cli/ under ts-jest.
 */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cdktf-crossvpc' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error('package.json of cdktf-crossvpc not found above ' + __dirname);
  }
}
