// `crossvpc doctor --live` on a node: the command line, where its defaults come from, and the report.
// The full CLI (lib/cli/crossvpc.ts) and the agent image's `crossvpc` (this file's main) both run it.
import { readFileSync } from 'fs';
import { parseArgs as nodeParseArgs } from 'util';
import { exitCodeOf, DoctorExitCode, Finding, formatFindings, sortFindings } from '../lib/contract';
import { AgentConfig, AGENT_CONFIG_PATH, loadConfig, tunnelDev } from './config';
import { nodeFindings } from './doctor-checks';
import { gatherNodeFacts } from './doctor-host';
import { HostExec } from './exec';
import { DEFAULT_METRICS_PORT, parseListenAddr } from './http';
import { AgentArgs, parseArgs as parseAgentArgs, shortParseError } from './main';

export const LIVE_DOCTOR_USAGE = `usage: crossvpc doctor --live [--config <tenants.json>] [--node-ip <ip>]
                       [--metrics-addr [ip]:port] [--json] [-h|--help]
  on a node, best inside the agent's container:
    kubectl exec -n crossvpc-system <agent pod on that node> -- crossvpc doctor --live
  checks per tenant of the agent config its tunnel device (present, up, kind, VNI, remote
  HaVip, MTU), the gateway neighbour and fdb entry, the fwmark rule and the table's routes,
  the route and ARP state toward the HaVip; the node nft table and its drop counters; the
  agent's /healthz, pod watch age and errors; connected routes and node addresses (docker0,
  ...) overlapping tenant ranges. Read-only: it changes nothing on the host.
  --config:       the agent config (default: the agent's own --config when run in its
                  container, else ${AGENT_CONFIG_PATH})
  --node-ip:      this node's IPv4 address (default: $NODE_IP, as the DaemonSet sets it)
  --metrics-addr: where the agent serves /metrics and /healthz (default: the agent's own
                  --metrics-addr in its container, else <node-ip>:${DEFAULT_METRICS_PORT})
  --json:         print the report (node, tenants, findings, exit code) as JSON
exit codes: 0 clean, 1 warnings, 2 errors (or a bad command line)`;

export interface LiveDoctorArgs {
  readonly config: string;
  readonly nodeIp?: string;
  /** Base URL of /metrics and /healthz; undefined when no node IP says where. */
  readonly agentUrl?: string;
  readonly json: boolean;
}

export interface LiveDoctorReport {
  readonly node: string | null;
  readonly config: string;
  readonly agent: string | null;
  readonly tenants: Array<{ readonly name: string; readonly vni: number; readonly device: string }>;
  /** Per tenant (config order), then node-wide; errors first within a group. */
  readonly findings: Finding[];
  readonly exitCode: DoctorExitCode;
  readonly elapsedMs: number;
}

/** Bad command line: printed with the usage, exit 2. */
export class LiveDoctorUsageError extends Error {
  override readonly name = 'LiveDoctorUsageError';
}

/**
 * The agent's own arguments when PID 1 is the agent (doctor runs inside its container), so
 * that `crossvpc doctor --live` needs no flags there; undefined anywhere else.
 */
export function agentArgsOfPid1(cmdline: string | undefined, env: NodeJS.ProcessEnv): AgentArgs | undefined {
  const argv = (cmdline ?? '').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  if (!/(^|\/)dist\/agent\/main\.js$/.test(argv[1] ?? '')) return undefined;
  try {
    const a = parseAgentArgs(argv.slice(2), env);
    return a === 'help' ? undefined : a;
  } catch {
    return undefined;
  }
}

/** Pure: flags first, then the agent's own command line, then the defaults. `args` includes --live. */
export function parseLiveDoctorArgs(args: readonly string[], env: NodeJS.ProcessEnv, agent: AgentArgs | undefined): LiveDoctorArgs | 'help' {
  let values;
  try {
    ({ values } = nodeParseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        'live': { type: 'boolean' },
        'config': { type: 'string' },
        'node-ip': { type: 'string' },
        'metrics-addr': { type: 'string' },
        'json': { type: 'boolean' },
        'help': { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    const msg = shortParseError(e as Error & { code?: string });
    throw new LiveDoctorUsageError(/unexpected argument/.test(msg) ? `${msg}: --live reads the host, not a stack dir` : msg);
  }
  if (values.help) return 'help';
  if (!values.live) throw new LiveDoctorUsageError('--live missing');
  const nodeIp = values['node-ip'] ?? agent?.nodeIp ?? env.NODE_IP;
  if (nodeIp !== undefined && !/^(\d{1,3}\.){3}\d{1,3}$/.test(nodeIp)) throw new LiveDoctorUsageError(`--node-ip: got '${nodeIp}', expected an IPv4 address`);
  let metrics = agent?.metrics;
  const addr = values['metrics-addr'];
  if (addr !== undefined) {
    metrics = parseListenAddr(addr, nodeIp ?? '');
    if (!metrics || !metrics.host) throw new LiveDoctorUsageError(`--metrics-addr: got '${addr}', expected ip:port${nodeIp ? ' or :port' : ' (no node IP known for :port)'}, e.g. 10.0.1.10:${DEFAULT_METRICS_PORT}`);
  } else if (!metrics && nodeIp) metrics = { host: nodeIp, port: DEFAULT_METRICS_PORT };
  return {
    config: values.config ?? agent?.config ?? AGENT_CONFIG_PATH,
    nodeIp,
    agentUrl: metrics && `http://${metrics.host}:${metrics.port}`,
    json: values.json ?? false,
  };
}

export async function doctorNode(args: LiveDoctorArgs): Promise<LiveDoctorReport> {
  const t0 = Date.now();
  const report = (config: AgentConfig | undefined, findings: Finding[]): LiveDoctorReport => {
    const tenants = (config?.tenants ?? []).map((t) => ({ name: t.name, vni: t.vni, device: tunnelDev(t.vni) }));
    const sorted = sortFindings(findings, tenants.map((t) => t.name));
    return { node: args.nodeIp ?? null, config: args.config, agent: args.agentUrl ?? null, tenants, findings: sorted, exitCode: exitCodeOf(sorted), elapsedMs: Date.now() - t0 };
  };
  let config: AgentConfig;
  try {
    config = loadConfig(args.config);
  } catch (e) {
    return report(undefined, [{ severity: 'error', check: 'agent-config', subject: args.config, what: `cannot read the agent config: ${(e as Error).message.split('\n')[0]}.`, fix: `pass --config <path of tenants.json> (the DaemonSet mounts the ConfigMap at ${AGENT_CONFIG_PATH}), or run doctor inside the agent container.` }]);
  }
  const facts = await gatherNodeFacts(new HostExec(), config, { nodeIp: args.nodeIp, agentUrl: args.agentUrl });
  return report(config, nodeFindings(config, facts));
}

export function formatLiveReport(r: LiveDoctorReport): string {
  const headings = new Map(r.tenants.map((t) => [t.name, `tenant ${t.name} (VNI ${t.vni}, ${t.device})`]));
  const head = `crossvpc doctor --live: node ${r.node ?? '(IP unknown)'}, config ${r.config}, agent ${r.agent ?? '(not checked)'} (${r.elapsedMs} ms)`;
  return `${head}\n${formatFindings(r.findings, headings, { restHeading: 'node', errorVerdict: 'errors: this node is broken' })}`;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** `crossvpc doctor --live ...` (args after `doctor`): prints the report, returns the exit code. */
export async function runLiveDoctor(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: LiveDoctorArgs | 'help';
  try {
    parsed = parseLiveDoctorArgs(args, env, agentArgsOfPid1(readIfExists('/proc/1/cmdline'), env));
  } catch (e) {
    if (!(e instanceof LiveDoctorUsageError)) throw e;
    process.stderr.write(`crossvpc doctor --live: ${e.message}\n${LIVE_DOCTOR_USAGE}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(`${LIVE_DOCTOR_USAGE}\n`);
    return 0;
  }
  const report = await doctorNode(parsed);
  process.stdout.write(`${parsed.json ? JSON.stringify(report, null, 2) : formatLiveReport(report)}\n`);
  return report.exitCode;
}

const IMAGE_USAGE = `usage: crossvpc doctor --live [options]   (the agent image's crossvpc: only the node doctor;
       the static doctor and the emulator are in the npm package's crossvpc)
${LIVE_DOCTOR_USAGE}`;

/** The agent image's `crossvpc` command (/usr/local/bin/crossvpc runs this file). */
export async function imageMain(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(`${IMAGE_USAGE}\n`);
    return argv.length ? 0 : 2;
  }
  if (argv[0] !== 'doctor' || !argv.includes('--live') && !argv.includes('--help') && !argv.includes('-h')) {
    process.stderr.write(`crossvpc: this image runs only 'crossvpc doctor --live' (got '${argv.join(' ')}')\n${IMAGE_USAGE}\n`);
    return 2;
  }
  return runLiveDoctor(argv.slice(1));
}

if (require.main === module) {
  imageMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`crossvpc doctor --live: ${(e as Error).message}\n`);
      process.exit(2);
    },
  );
}
