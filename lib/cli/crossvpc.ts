#!/usr/bin/env node
import { existsSync } from 'fs';
import { join, resolve } from 'path';
import { Emulation } from '../emulate/emulator';
import { FailoverRunner, formatFailover } from '../emulate/failover';
import { integerOption, packageVersion, parseCommandLine, UsageError } from './args';

const MAIN_USAGE = `usage: crossvpc [-h|--help] [--version] <command> [options]
commands:
  emulate   run a synthesized stack in network namespaces (needs root); see crossvpc emulate --help
exit codes: 0 success, 1 failure, 2 bad command line`;

// Each node is a namespace plus an agent process, and its pods take a /24 at third octet
// (function CIDR + 100 + node): 64 keeps well inside both.
const MAX_NODES = 64;

const EMULATE_USAGE = `usage: crossvpc emulate [stack dir] [--nodes N] [--failover] [-h|--help]
  stack dir:  a synthesized cdktf stack directory holding cdk.tf.json
              (default: cdktf.out/stacks/overlapping-tenants)
  --nodes N:  emulated cluster nodes, 1 to ${MAX_NODES} (default 2)
  --failover: after the matrix, fail the active member under load: hard kill,
              graceful stop, failback, double fault (see README)
exit codes: 0 every check as expected, 1 a check failed or the run broke, 2 bad command line`;

interface EmulateArgs {
  readonly stackDir: string;
  readonly nodes: number;
  readonly failover: boolean;
}

/** Every value is checked here, before the host is looked at or anything is built. */
function parseEmulateArgs(args: readonly string[]): EmulateArgs | 'help' {
  const { values, positionals } = parseCommandLine(args, {
    nodes: { type: 'string' },
    failover: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return 'help';
  const nodes = values.nodes === undefined ? 2 : integerOption('--nodes', values.nodes, 1, MAX_NODES);
  const stackDir = resolve(positionals[0] ?? 'cdktf.out/stacks/overlapping-tenants');
  if (!existsSync(join(stackDir, 'cdk.tf.json'))) {
    throw new UsageError(`stack dir: got '${stackDir}', expected a directory holding cdk.tf.json (synthesize first: npm run synth)`);
  }
  return { stackDir, nodes, failover: values.failover ?? false };
}

async function emulate({ stackDir, nodes, failover }: EmulateArgs): Promise<number> {
  const emu = new Emulation({ stackDir, nodes });
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
    if (!failover) return result.ok ? 0 : 1;
    const results = await new FailoverRunner(emu).runAll();
    console.log(formatFailover(results));
    const after = await emu.matrix();
    const survived = results.filter((r) => r.fault !== 'double-fault').every((r) => r.survived && r.isolated);
    return result.ok && after.ok && survived ? 0 : 1;
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
  if (command !== 'emulate') throw new UsageError(`unknown command '${command}', expected emulate`);
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
