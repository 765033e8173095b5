import type { Pod } from './cluster';

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

export interface MatrixResult {
  readonly tenants: string[];
  /** pod name -> tenants whose Redis received the pod's writes. */
  readonly reached: Record<string, string[]>;
  readonly checks: Check[];
  readonly ok: boolean;
}

/** The pod x tenant table, every check, and the verdict line the CLI and CI look for. */
export function formatMatrix(r: MatrixResult, pods: readonly Pod[]): string {
  const w = Math.max(14, ...pods.map((p) => p.name.length)) + 2;
  const cw = Math.max(8, ...r.tenants.map((t) => t.length + 2));
  const lines = ['', `${'pod \\ tenant'.padEnd(w)}${r.tenants.map((t) => t.padEnd(cw)).join('')}expected`];
  for (const p of pods) {
    const got = r.reached[p.name] ?? [];
    const expected = p.tenant && r.tenants.includes(p.tenant) ? p.tenant : p.tenant ? `none (${p.tenant} is not in the plan)` : 'none';
    lines.push(`${p.name.padEnd(w)}${r.tenants.map((t) => (got.includes(t) ? 'REACHED' : '-').padEnd(cw)).join('')}${expected}`);
  }
  lines.push('');
  for (const c of r.checks) lines.push(formatCheck(c));
  lines.push('', r.ok ? 'RESULT: every cell as expected' : `RESULT: ${r.checks.filter((c) => !c.pass).length} wrong cell(s)`);
  return lines.join('\n');
}

/** One check as the CLI prints it: PASS or FAIL, what, and what was seen. */
export function formatCheck(c: Check): string {
  return `${c.pass ? 'PASS' : 'FAIL'}  ${c.name} (${c.detail})`;
}
