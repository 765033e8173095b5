import { cpus } from 'os';
import { integerOption, parseCommandLine, UsageError } from '../lib/cli/args';

export const DATAPLANE_USAGE = `usage: dataplane.js [--tenants 1,16] [--secs 5] [--repeats 3] [--requests 20000] [--pods 5] [--keep] [--no-pin] [-h|--help]
  --tenants   plan sizes to measure, comma-separated, each 1 to 1023 (tenants on one pair)
  --secs      iperf3 seconds per run, 1 to 100000
  --repeats   runs per measurement (the median is reported), 1 to 100000
  --requests  redis-benchmark requests per run, 1 to 100000
  --pods      fresh pods per plan for the pod-ready time, 1 to 100000
  --keep      keep the run files
  --no-pin    do not pin client and server to separate CPUs (default: pin when there are 2+)
exit codes: 0 report printed (PASS/MISS are not failures), 1 the run broke, 2 bad command line`;

export interface DataplaneParams {
  tenants: number[];
  secs: number;
  repeats: number;
  requests: number;
  pods: number;
  keep: boolean;
  pin: boolean;
}

/** Every value checked before the host is; 'help' for -h/--help. */
export function parseDataplaneArgs(argv: readonly string[], cpuCount = cpus().length): DataplaneParams | 'help' {
  const { values } = parseCommandLine(argv, {
    'tenants': { type: 'string' },
    'secs': { type: 'string' },
    'repeats': { type: 'string' },
    'requests': { type: 'string' },
    'pods': { type: 'string' },
    'keep': { type: 'boolean' },
    'no-pin': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) return 'help';
  const count = (option: string, value: string | undefined, fallback: number) => (value === undefined ? fallback : integerOption(option, value, 1, 100000));
  // 16: about the most one pair's document holds within SSM's 8 KB (the emulated SSM refuses more, as SSM would).
  let tenants = [1, 16];
  if (values.tenants !== undefined) {
    const list = values.tenants;
    tenants = list.split(',').map((n) => {
      if (!/^\d+$/.test(n) || Number(n) < 1 || Number(n) > 1023) {
        throw new UsageError(`--tenants: got '${list}', expected comma-separated integers from 1 to 1023`);
      }
      return Number(n);
    });
  }
  return {
    tenants,
    secs: count('--secs', values.secs, 5),
    repeats: count('--repeats', values.repeats, 3),
    requests: count('--requests', values.requests, 20000),
    pods: count('--pods', values.pods, 5),
    keep: values.keep ?? false,
    pin: !values['no-pin'] && cpuCount >= 2,
  };
}
