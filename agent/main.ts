import { readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import { dirname, resolve } from 'path';
import { parseArgs as nodeParseArgs } from 'util';
import { AgentConfig, ipv4ToInt, parseConfig } from './config';
import { Exec, HostExec, RecordingExec, cmdLine } from './exec';
import { DEFAULT_METRICS_PORT, parseListenAddr, serveMetrics } from './http';
import { inClusterOptions, KubePodSource } from './kube';
import { jsonLog, Log } from './log';
import { AgentMetrics } from './metrics';
import { FilePodSource, PodSource } from './pods';
import { Reconciler } from './reconciler';

export interface AgentArgs {
  readonly config: string;
  readonly nodeIp: string;
  readonly nodeName?: string;
  /** 'kube' or 'file:<path>'. */
  readonly pods: string;
  readonly readyFile?: string;
  readonly dryRun: boolean;
  /** Where /metrics and /healthz listen; undefined: not served (--dry-run without --metrics-addr). */
  readonly metrics?: { readonly host: string; readonly port: number };
}

export const USAGE = `usage: main.js --config <tenants.json> [--node-ip <ip>] [--node-name <name>]
               [--pods kube|file:<path>] [--ready-file <path>] [--metrics-addr [ip]:port]
               [--dry-run] [-h|--help]
  --config      the tenant table (the ConfigMap's tenants.json); required, must exist
  --node-ip     this node's IPv4 address (default: $NODE_IP)
  --node-name   this node's name, needed by --pods kube (default: $NODE_NAME)
  --pods        kube (default): watch this node's pods through the in-cluster API;
                file:<path>: tail watch-event lines from a file
  --ready-file  written once the data plane is in place; its directory must exist
  --metrics-addr  where GET /metrics and /healthz listen (default: <node-ip>:${DEFAULT_METRICS_PORT};
                  ':port' = the node IP; not served with --dry-run unless given)
  --dry-run     touch nothing; log the full from-scratch plan
exit codes: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 bad command line`;

/** Bad command line: main prints the one-line message, then USAGE, and exits 2. */
export class AgentUsageError extends Error {
  override readonly name = 'AgentUsageError';
}

/** Own copy of node's error texts, shortened: agent/ may not import lib/ at run time. */
export function shortParseError(e: Error & { code?: string }): string {
  const quoted = /'([^' ]+)/.exec(e.message)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option '${quoted}'`;
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument '${quoted}'`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return /does not take an argument/.test(e.message) ? `${quoted}: takes no value` : `${quoted}: missing value`;
  }
  return e.message.split('\n')[0];
}

/** Pure: checks every value but not the file system (see checkArgPaths). 'help' for -h/--help. */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentArgs | 'help' {
  let values;
  try {
    ({ values } = nodeParseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'config': { type: 'string' },
        'node-ip': { type: 'string' },
        'node-name': { type: 'string' },
        'pods': { type: 'string' },
        'ready-file': { type: 'string' },
        'metrics-addr': { type: 'string' },
        'dry-run': { type: 'boolean' },
        'help': { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new AgentUsageError(shortParseError(e as Error & { code?: string }));
  }
  if (values.help) return 'help';
  const { config } = values;
  const nodeIp = values['node-ip'] ?? env.NODE_IP;
  const nodeName = values['node-name'] ?? env.NODE_NAME;
  const pods = values.pods ?? 'kube';
  if (!config) throw new AgentUsageError('--config: missing, expected the path of tenants.json');
  if (nodeIp === undefined) throw new AgentUsageError('--node-ip: missing, expected an IPv4 address (--node-ip or $NODE_IP)');
  if (ipv4ToInt(nodeIp) === undefined) throw new AgentUsageError(`--node-ip: got '${nodeIp}', expected an IPv4 address (--node-ip or $NODE_IP)`);
  if (pods !== 'kube' && !(pods.startsWith('file:') && pods.length > 'file:'.length)) {
    throw new AgentUsageError(`--pods: got '${pods}', expected kube or file:<path>`);
  }
  if (pods === 'kube' && !nodeName) throw new AgentUsageError("--pods kube: needs this node's name, from --node-name or $NODE_NAME");
  const dryRun = values['dry-run'] ?? false;
  const addr = values['metrics-addr'];
  const metrics = addr === undefined ? (dryRun ? undefined : { host: nodeIp, port: DEFAULT_METRICS_PORT }) : parseListenAddr(addr, nodeIp);
  if (addr !== undefined && !metrics) throw new AgentUsageError(`--metrics-addr: got '${addr}', expected [ipv4]:port with port 1..65535, e.g. ':${DEFAULT_METRICS_PORT}'`);
  return { config, nodeIp, nodeName, pods, readyFile: values['ready-file'], dryRun, metrics };
}

/** The paths the agent needs at start: the config file, and the ready file's directory. */
export function checkArgPaths(args: AgentArgs): void {
  if (!isFile(args.config)) throw new AgentUsageError(`--config: got '${args.config}', expected an existing file`);
  if (args.readyFile && !isDirectory(dirname(resolve(args.readyFile)))) {
    throw new AgentUsageError(`--ready-file: got '${args.readyFile}', expected a path in an existing directory`);
  }
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const isFile = (path: string) => statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
const isDirectory = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;

function podSource(args: AgentArgs, log: Log): PodSource {
  if (args.pods.startsWith('file:')) return new FilePodSource(args.pods.slice('file:'.length), log);
  return new KubePodSource(inClusterOptions(args.nodeName!), log);
}

/** CAP_NET_ADMIN's bit in /proc/<pid>/status CapEff (linux/capability.h). */
const CAP_NET_ADMIN = 12n;

/**
 * Undefined when the effective capabilities hold NET_ADMIN (or cannot be read: not Linux),
 * else the reason, naming the fix. Checked before anything touches the host, so a pod
 * without it says why in one line instead of failing on its first ip/nft command.
 */
export function netAdminMissing(statusText: string | undefined): string | undefined {
  const hex = statusText && /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText)?.[1];
  if (!hex) return undefined;
  if ((BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n) return undefined;
  return `capability NET_ADMIN missing (CapEff ${hex}): the agent creates tunnels, routes, rules and the nft table; grant it in the container's securityContext.capabilities.add`;
}

/** Runs until SIGTERM/SIGINT; the data plane stays in place so pods keep working across agent upgrades. */
export async function runAgent(args: AgentArgs, log: Log = jsonLog()): Promise<void> {
  let configText = readFileSync(args.config, 'utf8');
  let config: AgentConfig = parseConfig(configText);
  if (args.readyFile) rmSync(args.readyFile, { force: true });
  log('info', 'agent starting', { nodeIp: args.nodeIp, pods: args.pods, tenants: config.tenants.length, tunnel: config.tunnel });

  if (!args.dryRun) {
    const missing = netAdminMissing(readIfExists('/proc/self/status'));
    if (missing) throw new Error(missing);
  }
  // nft -f - started ahead: an element update then costs nft's work, not a process start.
  const host = args.dryRun ? undefined : new HostExec({ prestart: [['nft', '-f', '-']] });
  const exec: Exec = host ?? new DryRunExec(log);
  const metrics = new AgentMetrics();
  const rec = new Reconciler(config, args.nodeIp, exec, log, {
    onReady: () => args.readyFile && writeFileSync(args.readyFile, `${new Date().toISOString()}\n`),
    observer: metrics,
  });
  metrics.attach({ config: () => config, boundPerTenant: () => rec.boundPerTenant(), ready: () => rec.isReady() }, exec);
  // Before anything touches the host: a taken port fails the start (the probes could not pass anyway).
  const server = args.metrics && (await serveMetrics(args.metrics.host, args.metrics.port, {
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.text() }),
    health: () => rec.health(),
  }));
  if (server) log('info', 'serving /metrics and /healthz', { url: server.url });
  let tunnelsOk = await rec.ensureTunnels();
  const source = podSource(args, log);
  source.start(metrics.timedSink(rec));

  // ConfigMap updates (kubelet swaps the file) are checked every tick; tunnel repair and
  // nft drift every 6th, or every tick while a tunnel step is failing.
  let ticks = 0;
  const tick = setInterval(() => {
    void (async () => {
      try {
        const text = readFileSync(args.config, 'utf8');
        if (text !== configText) {
          configText = text;
          config = parseConfig(text);
          log('info', 'config changed, reloading', { tenants: config.tenants.length });
          tunnelsOk = await rec.reload(config);
        } else if (!tunnelsOk || ++ticks % 6 === 0) {
          tunnelsOk = await rec.ensureTunnels();
          await rec.verify();
        }
      } catch (e) {
        metrics.error('periodic_check');
        log('error', 'periodic check failed', { error: (e as Error).message });
      }
    })();
  }, 5000);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'agent stopping, data plane left in place', { signal });
      clearInterval(tick);
      source.stop();
      server?.close();
      void rec.stop().then(() => {
        host?.stop();
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * --dry-run: nothing touches the host; the host reads as empty, so the reconciler's own
 * "exec" lines are the full from-scratch plan. nft scripts are logged here since those lines omit them.
 */
class DryRunExec extends RecordingExec {
  constructor(private readonly log: Log) {
    super([{ prefix: 'nft -j list', code: 1 }]);
  }
  override async run(argv: readonly string[], opts: { input?: string; okCodes?: readonly number[] } = {}) {
    if (opts.input) this.log('info', 'dry-run nft script', { cmd: cmdLine(argv), input: opts.input });
    return super.run(argv, opts);
  }
}

if (require.main === module) {
  let args: AgentArgs | 'help';
  try {
    args = parseArgs(process.argv.slice(2));
    if (args !== 'help') checkArgPaths(args);
  } catch (e) {
    if (!(e instanceof AgentUsageError)) throw e;
    process.stderr.write(`main.js: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  runAgent(args).then(
    () => process.exit(0),
    (e) => {
      jsonLog()('error', 'agent failed', { error: (e as Error).message });
      process.exit(1);
    },
  );
}
