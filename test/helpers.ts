import { ChildProcess, execFileSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App, Testing } from 'cdktf';
import { OverlappingTenantsStack, OverlappingTenantsOptions } from '../examples/overlapping-tenants/stack';
import { CrossVpcError } from '../lib';

import { unescapeTerraformLiteral } from '../lib/render/terraform-escape';
import { unpackBase64Gzip, unpackUserData } from '../lib/render/user-data';

export const IN_CI = process.env.CI === 'true';

/** The user data template of a synthesized aws_instance (unwrapped from base64gzip("..."), shared parts from the plan's locals). */
export function userDataOf(inst: any, json: any): string {
  return unpackUserData(inst.user_data_base64, json.locals);
}

/** A pair's configuration document as Terraform holds it: the JSON text, interpolations unresolved. */
export function documentOf(json: any, pair = 0): string {
  const p = Object.values<any>(json.resource.aws_ssm_parameter ?? {}).find((x) => x.tags?.['crossvpc:pair'] === String(pair));
  if (!p) throw new Error(`no configuration document for pair ${pair}`);
  return unpackBase64Gzip(p.insecure_value);
}

/** True when `tool` runs; in CI a missing tool is a failure, never a silent skip. */
export function haveTool(tool: string, args: string[] = ['--version']): boolean {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch {
    if (IN_CI) throw new Error(`${tool} is required in CI (CI=true) but is not installed; .ci/run must install it`);
    return false;
  }
}

export function isRootLinux(): boolean {
  const ok = process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0;
  if (!ok && IN_CI) throw new Error('these tests need root on Linux and CI=true forbids skipping them');
  return ok;
}

export function synthExample(opts: OverlappingTenantsOptions = {}): string {
  const app = Testing.app();
  const stack = new OverlappingTenantsStack(app, 'overlapping-tenants', opts);
  return Testing.synth(stack);
}

/** Synthesize the example into a fresh temp dir, as `cdktf synth` does; returns the stack dir holding cdk.tf.json. */
export function synthStackDir(opts: OverlappingTenantsOptions = {}): string {
  const outdir = mkdtempSync(join(tmpdir(), 'crossvpc-plan-'));
  const app = new App({ outdir });
  new OverlappingTenantsStack(app, 'overlapping-tenants', opts);
  app.synth();
  return join(outdir, 'stacks', 'overlapping-tenants');
}

export function synthJson(opts: OverlappingTenantsOptions = {}): any {
  return JSON.parse(synthExample(opts));
}

/** Replace Terraform interpolations with a literal and undo Terraform's escapes, as apply would. */
export function asDeployed(text: string, standIn = '10.9.9.9'): string {
  return unescapeTerraformLiteral(text.replace(/(?<!\$)\$\{[^}]*\}/g, standIn));
}

/** Runs fn and expects a CrossVpcError whose message holds the fix and every part (and the construct path, when given). */
export function expectCrossVpcError(fn: () => unknown, parts: Array<string | RegExp>, path?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CrossVpcError);
  const msg = (caught as Error).message;
  if (path) expect(msg).toContain(path);
  expect(msg).toContain('Fix:');
  for (const p of parts) expect(msg).toMatch(p);
}

/** A netns test's teardown: its detached processes (by process group), its namespaces and its temp dir, each once, whatever failed. */
export function cleanUpNetnsTest(procs: readonly ChildProcess[], namespaces: readonly string[], dir: string | undefined): void {
  for (const p of procs) {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const ns of namespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* never created */
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}
