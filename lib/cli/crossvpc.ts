#!/usr/bin/env node
import { existsSync } from 'fs';
import { join, resolve } from 'path';
import { Emulation } from '../emulate/emulator';
import { FailoverRunner, formatFailover } from '../emulate/failover';

const USAGE = `usage: crossvpc emulate [stack dir] [--nodes N] [--failover]
  --failover: after the matrix, fail the active member under load: hard kill,
              graceful stop, failback, double fault (see README)
  stack dir: a synthesized cdktf stack directory holding cdk.tf.json
             (default: cdktf.out/stacks/overlapping-tenants)`;

async function emulate(args: string[]): Promise<number> {
  let stackDir = 'cdktf.out/stacks/overlapping-tenants';
  let nodes = 2;
  let failover = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nodes') nodes = Number(args[++i]);
    else if (args[i] === '--failover') failover = true;
    else if (args[i].startsWith('-')) throw new Error(`unknown option ${args[i]}\n${USAGE}`);
    else stackDir = args[i];
  }
  stackDir = resolve(stackDir);
  if (!existsSync(join(stackDir, 'cdk.tf.json'))) throw new Error(`${stackDir}/cdk.tf.json not found: synthesize first (npm run synth)\n${USAGE}`);
  const emu = new Emulation({ stackDir, nodes });
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: removing namespaces and processes of run ${emu.topo.prefix}`);
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
      console.log(`[emulate ${emu.topo.prefix}] removed every namespace and process of this run (logs kept in ${emu.runDir})`);
    }
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'emulate') return emulate(rest);
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`crossvpc: ${(err as Error).message}`);
    process.exit(1);
  },
);
