import { integerOption, parseCommandLine, UsageError } from '../lib/cli/args';

export const FAILOVER_USAGE = `usage: failover.js [--runs 5] [--advert 0.3,0.1] [--quiet-secs 20] [--no-load] [-h|--help]
  --runs        rounds per advert interval; each round runs hard kill, failback, graceful
                stop and split brain once (1 to 100)
  --advert      keepalived advert intervals to compare, seconds, comma-separated (0.01 to 40)
  --quiet-secs  seconds of load without any fault, counting VRRP changes (flaps) (1 to 3600)
  --no-load     no iperf3 load through the gateway (default: load saturating both vCPUs)
exit codes: 0 report printed, 2 bad command line`;

export interface FailoverParams {
  readonly runs: number;
  readonly adverts: number[];
  readonly quietSecs: number;
  readonly load: boolean;
}

/** Every value checked before the host is; 'help' for -h/--help. */
export function parseFailoverArgs(argv: readonly string[]): FailoverParams | 'help' {
  const { values } = parseCommandLine(argv, {
    'runs': { type: 'string' },
    'advert': { type: 'string' },
    'quiet-secs': { type: 'string' },
    'no-load': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
  }, 0);
  if (values.help) return 'help';
  const list = values.advert ?? '0.3,0.1';
  const adverts = list.split(',').map((a) => {
    // Strict: what keepalived's advert_int takes, written as a plain decimal.
    if (!/^\d+(\.\d+)?$/.test(a) || Number(a) < 0.01 || Number(a) > 40) throw new UsageError(`--advert: got '${list}', expected comma-separated seconds from 0.01 to 40`);
    return Number(a);
  });
  return {
    runs: values.runs === undefined ? 5 : integerOption('--runs', values.runs, 1, 100),
    adverts,
    quietSecs: values['quiet-secs'] === undefined ? 20 : integerOption('--quiet-secs', values['quiet-secs'], 1, 3600),
    load: !values['no-load'],
  };
}
