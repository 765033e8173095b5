#!/usr/bin/env node
import { existsSync } from 'fs';
import { join, resolve } from 'path';
import { LIVE_DOCTOR_USAGE, runLiveDoctor } from '../../agent/doctor';
import { doctorPlanFile, formatReport } from '../doctor/doctor';
import { Emulation } from '../emulate/emulator';
import { holdEgressConnections } from '../emulate/egress';
import { FailoverRunner, formatFailover } from '../emulate/failover';
import { Check, formatCheck } from '../emulate/report';
import { formatStep, formatSteps, StepReport, TransitionRunner } from '../emulate/transitions';
import { integerOption, packageVersion, parseCommandLine, UsageError } from './args';

const MAIN_USAGE = `usage: crossvpc [-h|--help] [--version] <command> [options]
commands:
  emulate   run a synthesized stack in network namespaces (needs root), and its transitions to
            further stacks under load (--then); see crossvpc emulate --help
  doctor    check a synthesized stack statically: what tenants must allow, CIDR and MTU pitfalls;
            or, with --live, this node's tunnels, rules, table and agent; see crossvpc doctor --help
exit codes: 0 success, 1 failure, 2 bad command line (doctor: 0 clean, 1 warnings, 2 errors)`;

// Each node is a namespace plus an agent process, and its pods take a /24 at third octet
// (function CIDR + 100 + node): 64 keeps well inside both.
const MAX_NODES = 64;

const EMULATE_USAGE = `usage: crossvpc emulate [stack dir] [--then <stack dir B> ...] [--nodes N] [--failover]
                       [--agent-image <local image>] [-h|--help]
  stack dir:  a synthesized cdktf stack directory holding cdk.tf.json
              (default: cdktf.out/stacks/overlapping-tenants)
  --then B:   after the matrix, apply stack B to the running emulation as terraform apply
              would (repeat for B, C, ...): new NAT ENIs hot-plugged, the pairs' documents
              written to the emulated SSM, members replaced only where rollingUpdate says
              (refused otherwise), peerings created and destroyed (tenants added, retired,
              or switched between NAT and peering), egress stand-ins for new egress
              tenants. Each active tenant keeps one INCR connection throughout;
              each step reports per tenant the time from the document write to its first
              reply (new or edited tenants), reconnects and failed operations (the others),
              each member's VRRP changes, and the matrix
  --nodes N:  emulated cluster nodes, 1 to ${MAX_NODES} (default 2)
  --failover: after the matrix (and the --then steps), fail the active member under
              load: hard kill, graceful stop, failback, double fault (see README)
  --agent-image I: run each node's agent as a podman container of the local image I (never
              pulled; build it with npm run agent:image) with the DaemonSet's security context
exit codes: 0 every check and step as expected, 1 a check or step failed or the run broke,
            2 bad command line`;

const DOCTOR_USAGE = `usage: crossvpc doctor [stack dir] [--json] [-h|--help]
  stack dir: a synthesized cdktf stack directory holding cdk.tf.json
             (default: cdktf.out/stacks/overlapping-tenants)
  --json:    print the report (tenants, findings, exit code) as JSON
reads only the plan: per tenant the NAT IP its security groups and service whitelists must
allow, tenant ranges against the cluster's and common container ranges, the MTU path, and
what the model accepts but deserves a warning
exit codes: 0 clean, 1 warnings, 2 errors (or a bad command line)

${LIVE_DOCTOR_USAGE}`;

const DEFAULT_STACK_DIR = 'cdktf.out/stacks/overlapping-tenants';

/** A stack dir argument, resolved; a UsageError when it holds no cdk.tf.json. */
function stackDirArg(positional: string | undefined, what = 'stack dir'): string {
  const stackDir = resolve(positional ?? DEFAULT_STACK_DIR);
  if (!existsSync(join(stackDir, 'cdk.tf.json'))) {
    throw new UsageError(`${what}: got '${stackDir}', expected a directory holding cdk.tf.json (synthesize first: npm run synth)`);
  }
  return stackDir;
}

async function doctor(args: readonly string[]): Promise<number> {
  // --live reads this host, not a plan: its own options (the agent image runs the same code).
  if (args.includes('--live')) return runLiveDoctor(args);
  const { values, positionals } = parseCommandLine(args, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return printed(DOCTOR_USAGE);
  const planFile = join(stackDirArg(positionals[0]), 'cdk.tf.json');
  let report;
  try {
    report = doctorPlanFile(planFile);
  } catch (e) {
    // A plan doctor cannot read is an error about the plan, not a bad command line.
    console.error(`crossvpc doctor: cannot read ${planFile}: ${(e as Error).message}`);
    return 2;
  }
  console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.exitCode;
}

interface EmulateArgs {
  readonly stackDir: string;
  /** Stacks applied in order after the first one (--then). */
  readonly then: string[];
  readonly nodes: number;
  readonly failover: boolean;
  /** Run the agents as podman containers of this local image. */
  readonly agentImage?: string;
}

/** Every value is checked here, before the host is looked at or anything is built. */
function parseEmulateArgs(args: readonly string[]): EmulateArgs | 'help' {
  const { values, positionals } = parseCommandLine(args, {
    nodes: { type: 'string' },
    then: { type: 'string', multiple: true },
    failover: { type: 'boolean' },
    'agent-image': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return 'help';
  const agentImage = values['agent-image'];
  if (agentImage !== undefined && !/^[a-z0-9][\w.:/@-]*$/i.test(agentImage)) {
    throw new UsageError(`--agent-image: got '${agentImage}', expected a local image reference, e.g. localhost/crossvpc-agent:dev`);
  }
  const nodes = values.nodes === undefined ? 2 : integerOption('--nodes', values.nodes, 1, MAX_NODES);
  const then = (values.then ?? []).map((dir) => stackDirArg(dir, '--then'));
  return { stackDir: stackDirArg(positionals[0]), then, nodes, failover: values.failover ?? false, agentImage };
}

async function emulate({ stackDir, then, nodes, failover, agentImage }: EmulateArgs): Promise<number> {
  const emu = new Emulation({ stackDir, nodes, ...(agentImage ? { agentRuntime: 'podman' as const, agentImage } : {}) });
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: removing namespaces and processes of run ${emu.prefix}`);
    emu.stop();
    process.exit(130);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    await emu.start();
    const result = await emu.matrix();
    let stepsOk = true;
    if (then.length) {
      const runner = new TransitionRunner(emu);
      const steps: StepReport[] = [];
      try {
        await runner.connect();
        for (const dir of then) {
          const step = await runner.step(dir);
          console.log(formatStep(step));
          steps.push(step);
        }
      } finally {
        runner.stop();
      }
      console.log(formatSteps(steps));
      stepsOk = steps.every((s) => s.ok);
    }
    if (!failover) return result.ok && stepsOk ? 0 : 1;
    const failoverStart = Date.now();
    // A connection through each egress tenant's egress lives through the survivable faults too.
    const runner = new FailoverRunner(emu);
    const egress = holdEgressConnections(emu);
    let results: Awaited<ReturnType<FailoverRunner['runAll']>>;
    let held: Check[];
    try {
      results = await runner.runAll(['hard-kill', 'failback', 'graceful-stop', 'split-brain']);
    } finally {
      held = egress.finish();
    }
    results.push(...(await runner.runAll(['double-fault'])));
    console.log(formatFailover(results));
    for (const c of held) console.log(formatCheck(c));
    // With gateway metrics: Prometheus saw the MASTER role move.
    const flip = emu.vrrpFlipCheck(0, failoverStart);
    if (flip) console.log(formatCheck(flip));
    const after = await emu.matrix();
    const survived = results.filter((r) => r.fault !== 'double-fault').every((r) => r.survived && r.isolated);
    return result.ok && stepsOk && after.ok && survived && held.every((c) => c.pass) && (flip?.pass ?? true) ? 0 : 1;
  } finally {
    if (!stopping) {
      emu.stop();
      console.log(`[emulate ${emu.prefix}] removed every namespace and process of this run (logs kept in ${emu.runDir})`);
    }
  }
}

/** Global flags come before the command; the command's own flags after it. */
async function main(argv: readonly string[], setUsage: (usage: string) => void): Promise<number> {
  const commandAt = argv.findIndex((a) => !a.startsWith('-'));
  const global = parseCommandLine(commandAt < 0 ? argv : argv.slice(0, commandAt), {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  }, 0).values;
  if (global.help) return printed(MAIN_USAGE);
  if (global.version) return printed(packageVersion());
  if (commandAt < 0) throw new UsageError('missing command');
  const command = argv[commandAt];
  if (command === 'doctor') {
    setUsage(DOCTOR_USAGE);
    return doctor(argv.slice(commandAt + 1));
  }
  if (command !== 'emulate') throw new UsageError(`unknown command '${command}', expected emulate or doctor`);
  setUsage(EMULATE_USAGE);
  const args = parseEmulateArgs(argv.slice(commandAt + 1));
  return args === 'help' ? printed(EMULATE_USAGE) : emulate(args);
}

function printed(text: string): number {
  console.log(text);
  return 0;
}

let usage = MAIN_USAGE;
main(process.argv.slice(2), (u) => (usage = u)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`crossvpc: ${(err as Error).message}`);
    if (err instanceof UsageError) console.error(usage);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
