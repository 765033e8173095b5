/**
 * What `crossvpc doctor` reports, static (lib/doctor, from the plan) or live (agent/doctor-*,
 * on a node): findings with a severity, what was found and the fix, the exit code they add up
 * to, and the one text format. In the contract because the agent image prints it too.
 */

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  readonly severity: Severity;
  /** Stable short id of the check, e.g. `nat-ip`, `docker-range` (for --json consumers and tests). */
  readonly check: string;
  /** The tenant the finding is about; absent for pair- or plan-wide findings. */
  readonly tenant?: string;
  /** What the finding is about when not a tenant: `pair 0`, `pair 0 member a`, `plan`. */
  readonly subject?: string;
  readonly what: string;
  readonly fix: string;
}

/** 0 clean (info only), 1 at least one warning, 2 at least one error. */
export type DoctorExitCode = 0 | 1 | 2;

export function exitCodeOf(findings: readonly Finding[]): DoctorExitCode {
  if (findings.some((f) => f.severity === 'error')) return 2;
  if (findings.some((f) => f.severity === 'warning')) return 1;
  return 0;
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Tenants first (in plan order), then pair- and plan-wide findings; errors before warnings before infos within a group. */
export function sortFindings(findings: readonly Finding[], tenantOrder: readonly string[]): Finding[] {
  const group = (f: Finding) => (f.tenant === undefined ? tenantOrder.length : tenantOrder.indexOf(f.tenant));
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => group(a.f) - group(b.f) || ORDER[a.f.severity] - ORDER[b.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}

/** `errorVerdict`: what the summary says when there are errors. */
export function summaryLine(findings: readonly Finding[], errorVerdict = 'errors: this plan would break'): string {
  const n = (s: Severity) => findings.filter((f) => f.severity === s).length;
  const plural = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const code = exitCodeOf(findings);
  const verdict = code === 2 ? errorVerdict : code === 1 ? 'warnings: review them' : 'clean';
  return `summary: ${plural(n('error'), 'error')}, ${plural(n('warning'), 'warning')}, ${plural(n('info'), 'info')} (${verdict}; exit ${code})`;
}

/** What the static and the live doctor name differently in the text report. */
export interface FindingsWording {
  /** Heading of the findings about no tenant. @default 'gateways and cluster' */
  readonly restHeading?: string;
  /** The summary's verdict when there are errors. @default 'errors: this plan would break' */
  readonly errorVerdict?: string;
}

/** One line per finding, grouped under a heading per tenant, then the rest; a summary line last. */
export function formatFindings(findings: readonly Finding[], headings: ReadonlyMap<string, string>, wording: FindingsWording = {}): string {
  const lines: string[] = [];
  let current: string | undefined | null = null;
  for (const f of findings) {
    if (f.tenant !== current) {
      current = f.tenant;
      lines.push(f.tenant === undefined ? wording.restHeading ?? 'gateways and cluster' : headings.get(f.tenant) ?? `tenant ${f.tenant}`);
    }
    const about = f.subject ? `${f.subject}: ` : '';
    lines.push(`  ${f.severity.padEnd(7)} [${f.check}] ${about}${f.what} Fix: ${f.fix}`);
  }
  lines.push(summaryLine(findings, wording.errorVerdict));
  return lines.join('\n');
}

/** A finding read back from formatFindings' lines: `text` is `subject: what` (the line cannot tell the two apart). */
export interface ParsedFinding {
  readonly severity: Severity;
  readonly check: string;
  readonly tenant?: string;
  readonly text: string;
  readonly fix: string;
}

/**
 * Reads formatFindings' output back: the static doctor's and the gateway members'
 * `crossvpc doctor --live` (lib/render/gateway/crossvpc.sh prints the same lines), so one
 * reader serves both. A `tenant NAME (…)` heading sets the tenant, any other heading clears it.
 */
export function parseFindings(text: string): { findings: ParsedFinding[]; exitCode: DoctorExitCode } {
  const findings: ParsedFinding[] = [];
  let tenant: string | undefined;
  let exitCode: DoctorExitCode | undefined;
  for (const line of text.split('\n')) {
    const f = /^ {2}(error|warning|info) *\[([^\]]+)\] (.*?) Fix: (.*)$/.exec(line);
    const summary = /^summary: .*; exit ([012])\)$/.exec(line);
    if (f) findings.push({ severity: f[1] as Severity, check: f[2], ...(tenant === undefined ? {} : { tenant }), text: f[3], fix: f[4] });
    else if (summary) exitCode = Number(summary[1]) as DoctorExitCode;
    else if (line !== '' && !line.startsWith(' ')) tenant = /^tenant (\S+) \(/.exec(line)?.[1];
  }
  if (exitCode === undefined) throw new Error(`no summary line in doctor output:\n${text}`);
  return { findings, exitCode };
}
