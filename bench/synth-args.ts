import { integerOption, parseCommandLine, UsageError } from '../lib/cli/args';
import { MAX_ENIS_BY_INSTANCE_TYPE } from '../lib/model/eni-capacity';

export const SYNTH_USAGE = `usage: synth.js [--child N [--type INSTANCE_TYPE] | --floor COUNTS.json] [-h|--help]
  (no options)  the whole report: each size in its own child process; always exits 0
  --child N     one measurement of N tenants (1 to 100000), JSON on stdout
  --type T      the gateway instance type for --child, one of the built-in ENI table
                (default c6in.xlarge)
  --floor FILE  one measurement of the plain-cdktf floor holding the blocks counted in
                FILE ({"resource.aws_instance": 668, ...}), JSON on stdout
exit codes: 0 report or measurement printed, 2 bad command line`;

export type SynthMode =
  | { readonly kind: 'report' }
  | { readonly kind: 'child'; readonly tenants: number; readonly instanceType: string }
  | { readonly kind: 'floor'; readonly countsFile: string }
  | { readonly kind: 'help' };

export function parseSynthArgs(argv: readonly string[], defaultInstanceType: string): SynthMode {
  const { values } = parseCommandLine(argv, {
    child: { type: 'string' },
    type: { type: 'string' },
    floor: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) return { kind: 'help' };
  if (values.floor !== undefined) {
    if (values.child !== undefined || values.type !== undefined) throw new UsageError(`--floor: got '${values.floor}' together with --child/--type; the floor takes only its counts file`);
    return { kind: 'floor', countsFile: values.floor };
  }
  if (values.child === undefined) {
    if (values.type !== undefined) throw new UsageError(`--type: got '${values.type}', but it only applies with --child N`);
    return { kind: 'report' };
  }
  const tenants = integerOption('--child', values.child, 1, 100000);
  const instanceType = values.type ?? defaultInstanceType;
  if (!(instanceType in MAX_ENIS_BY_INSTANCE_TYPE)) {
    throw new UsageError(`--type: got '${instanceType}', expected an instance type of the built-in ENI table (e.g. c6in.xlarge)`);
  }
  return { kind: 'child', tenants, instanceType };
}
