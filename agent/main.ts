import { readFileSync, rmSync, writeFileSync } from 'fs';
import { AgentConfig, ipv4ToInt, parseConfig } from './config';
import { Exec, HostExec, RecordingExec, cmdLine } from './exec';
import { inClusterOptions, KubePodSource } from './kube';
import { jsonLog, Log } from './log';
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
}

const USAGE = 'usage: main.js --config <tenants.json> [--node-ip <ip>|$NODE_IP] [--node-name <name>|$NODE_NAME] [--pods kube|file:<path>] [--ready-file <path>] [--dry-run]';

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentArgs {
  const flags = new Map<string, string>();
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dry-run') dryRun = true;
    else if (['--config', '--node-ip', '--node-name', '--pods', '--ready-file'].includes(a) && i + 1 < argv.length) flags.set(a, argv[++i]);
    else throw new Error(`unknown or incomplete argument ${a}\n${USAGE}`);
  }
  const config = flags.get('--config');
  const nodeIp = flags.get('--node-ip') ?? env.NODE_IP ?? '';
  const nodeName = flags.get('--node-name') ?? env.NODE_NAME;
  const pods = flags.get('--pods') ?? 'kube';
  if (!config) throw new Error(`--config is required\n${USAGE}`);
  if (ipv4ToInt(nodeIp) === undefined) throw new Error(`node IP must be IPv4 (--node-ip or NODE_IP), got "${nodeIp}"`);
  if (pods === 'kube' && !nodeName) throw new Error('--pods kube needs --node-name or NODE_NAME');
  if (pods !== 'kube' && !pods.startsWith('file:')) throw new Error(`--pods must be kube or file:<path>, got ${pods}`);
  return { config, nodeIp, nodeName, pods, readyFile: flags.get('--ready-file'), dryRun };
}

function podSource(args: AgentArgs, log: Log): PodSource {
  if (args.pods.startsWith('file:')) return new FilePodSource(args.pods.slice('file:'.length), log);
  return new KubePodSource(inClusterOptions(args.nodeName!), log);
}

/** Runs until SIGTERM/SIGINT; the data plane stays in place so pods keep working across agent upgrades. */
export async function runAgent(args: AgentArgs, log: Log = jsonLog()): Promise<void> {
  let configText = readFileSync(args.config, 'utf8');
  let config: AgentConfig = parseConfig(configText);
  const exec: Exec = args.dryRun ? new DryRunExec(log) : new HostExec();
  if (args.readyFile) rmSync(args.readyFile, { force: true });
  log('info', 'agent starting', { nodeIp: args.nodeIp, pods: args.pods, tenants: config.tenants.length, tunnel: config.tunnel });

  const rec = new Reconciler(config, args.nodeIp, exec, log, {
    onReady: () => args.readyFile && writeFileSync(args.readyFile, `${new Date().toISOString()}\n`),
  });
  let tunnelsOk = await rec.ensureTunnels();
  const source = podSource(args, log);
  source.start(rec);

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
        log('error', 'periodic check failed', { error: (e as Error).message });
      }
    })();
  }, 5000);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'agent stopping, data plane left in place', { signal });
      clearInterval(tick);
      source.stop();
      void rec.stop().then(resolve);
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
  let args: AgentArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  runAgent(args).then(
    () => process.exit(0),
    (e) => {
      jsonLog()('error', 'agent failed', { error: (e as Error).message });
      process.exit(1);
    },
  );
}
