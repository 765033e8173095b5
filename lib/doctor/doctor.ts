import { readPlan } from '../emulate/plan';
import { cidrFindings } from './cidr-checks';
import { DoctorFacts, gatherFacts } from './facts';
import { DoctorExitCode, exitCodeOf, Finding, formatFindings, sortFindings } from './findings';
import { gatewayFindings } from './gateway-checks';
import { mtuFindings } from './mtu-checks';
import { egressFindings } from './egress-checks';
import { natIpFindings, servedTenants } from './nat-ip-checks';
import { peeringFindings } from './peering-checks';

export type { DoctorExitCode, Finding, Severity } from './findings';

export interface DoctorReport {
  /** The plan file read. */
  readonly plan: string;
  /** Tenants the gateways serve, in plan order, with their VNI and pair. */
  readonly tenants: Array<{ readonly name: string; readonly vni: number; readonly pair: number }>;
  /** Tenants reached through VPC peering, in plan order. */
  readonly peered: Array<{ readonly name: string; readonly vni: number }>;
  /** Grouped per tenant (plan order), then pair- and plan-wide; errors first within a group. */
  readonly findings: Finding[];
  readonly exitCode: DoctorExitCode;
}

/**
 * `crossvpc doctor`, static: seed 003's checklist and the warnings the model cannot give,
 * from a synthesized cdk.tf.json alone (never the model or the renderers' inputs).
 */
export function doctorPlanFile(planFile: string): DoctorReport {
  return doctorFacts(planFile, gatherFacts(readPlan(planFile)));
}

export function doctorFacts(plan: string, facts: DoctorFacts): DoctorReport {
  const tenants = servedTenants(facts).map(({ row, pair }) => ({ name: row.name, vni: row.vni, pair }));
  const peered = (facts.agent.peered ?? []).map((t) => ({ name: t.name, vni: t.vni }));
  const order = [...tenants, ...peered].map((t) => t.name);
  const findings = sortFindings([...natIpFindings(facts), ...egressFindings(facts), ...peeringFindings(facts), ...cidrFindings(facts), ...mtuFindings(facts), ...gatewayFindings(facts)], order);
  return { plan, tenants, peered, findings, exitCode: exitCodeOf(findings) };
}

/** The human report: one line per finding, grouped per tenant, then a summary line. */
export function formatReport(report: DoctorReport): string {
  const headings = new Map([
    ...report.tenants.map((t): [string, string] => [t.name, `tenant ${t.name} (VNI ${t.vni}, pair ${t.pair})`]),
    ...report.peered.map((t): [string, string] => [t.name, `tenant ${t.name} (VNI ${t.vni}, VPC peering)`]),
  ]);
  return `crossvpc doctor: ${report.plan}\n${formatFindings(report.findings, headings)}`;
}
