import { SSM_ADVANCED_VALUE_MAX_BYTES } from '../contract/pair-document';
import { packedDocumentBytes } from '../render/document-size';
import { MAX_USER_DATA_BYTES, packedUserDataBytes } from '../render/user-data';
import { evaluate } from '../emulate/plan';
import { DoctorFacts, MemberFacts, PairDocumentFacts } from './facts';
import { Finding } from './findings';

/** Above this share of its limit, user data or a pair document gets a warning. */
export const USER_DATA_WARN_RATIO = 0.9;
export const DOCUMENT_WARN_RATIO = 0.9;
/** Above this share of nf_conntrack_max, one tenant's limit lets it starve the others. */
export const CONN_LIMIT_WARN_RATIO = 0.5;

/** What the model accepts but an operator should hear about: admission, replacement, limits, sizes. */
export function gatewayFindings(facts: DoctorFacts): Finding[] {
  return [...admissionFindings(facts), ...pollingFindings(facts), ...facts.members.flatMap((m) => memberFindings(m)), ...facts.documents.flatMap((d) => documentFindings(d))];
}

/** SSM's default GetParameter quota, per account and region, shared with every other reader. */
export const SSM_GET_PARAMETER_TPS = 40;

/** Every member polls its pair document: the plan's share of the account's GetParameter quota. */
function pollingFindings(facts: DoctorFacts): Finding[] {
  const rate = facts.members.reduce((sum, m) => sum + 1 / Number(m.env.CONFIG_POLL_SEC), 0);
  if (!Number.isFinite(rate) || rate <= SSM_GET_PARAMETER_TPS / 2) return [];
  const what = `${facts.members.length} members poll their pair documents at ${rate.toFixed(1)} GetParameter calls a second, ${Math.round((rate / SSM_GET_PARAMETER_TPS) * 100)}% of SSM's default quota of ${SSM_GET_PARAMETER_TPS} a second per account and region (shared with every other reader)`;
  return [{
    severity: rate > SSM_GET_PARAMETER_TPS ? 'warning' : 'info', check: 'ssm-quota', subject: 'gateways',
    what: `${what}${rate > SSM_GET_PARAMETER_TPS ? ': reads are throttled, so tenant changes arrive late' : ''}.`,
    fix: 'raise gateway.configPollIntervalSec, or enable Parameter Store\'s higher throughput (a paid account setting).',
  }];
}

/** SSM's advanced tier holds 8 KB: a bigger document fails the apply (maxConfigDocumentBytes was raised). */
function documentFindings(d: PairDocumentFacts): Finding[] {
  const subject = `pair ${d.pair} configuration document`;
  let bytes: number;
  try {
    let n = 0;
    bytes = packedDocumentBytes(evaluate(d.text, (ref) => standIn(ref, (n += 1))));
  } catch (e) {
    return [{ severity: 'info', check: 'document-size', subject, what: `size not estimated: ${(e as Error).message}.`, fix: 'none needed unless the apply reports a parameter value over 8 KB.' }];
  }
  const share = `about ${bytes} of ${SSM_ADVANCED_VALUE_MAX_BYTES} bytes (gzip + base64, interpolations at their longest)`;
  if (bytes > SSM_ADVANCED_VALUE_MAX_BYTES) {
    return [{ severity: 'error', check: 'document-size', subject, what: `it is ${share}: SSM refuses it, so the apply fails (gateway.maxConfigDocumentBytes was raised, which is only for plans that never reach AWS).`, fix: 'lower gateway.tenantsPerMember so fewer tenants share a pair, and leave maxConfigDocumentBytes unset.' }];
  }
  if (bytes > SSM_ADVANCED_VALUE_MAX_BYTES * DOCUMENT_WARN_RATIO) {
    return [{ severity: 'warning', check: 'document-size', subject, what: `it is ${share}: a few more tenants (or destinations) on this pair and SSM refuses it.`, fix: 'lower gateway.tenantsPerMember, or place new tenants on another pair.' }];
  }
  return [];
}

function admissionFindings(facts: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const cidrSources = facts.tunnelSources.filter((s) => s.kind === 'cidr');
  const pairs = [...new Set(cidrSources.map((s) => s.pair))];
  if (pairs.length > 0) {
    const cidrs = [...new Set(cidrSources.map((s) => s.value))].join(', ');
    out.push({
      severity: 'warning', check: 'tunnel-admission', subject: `pair ${pairs.join(', ')}`,
      what: `no functionVpc.nodeSecurityGroupId: the gateways admit tunnel packets from ${cidrs} by address alone, so any instance there (not only nodes) can send them; the gateway still checks VNI and source, but that instance can speak for any tenant.`,
      fix: 'set functionVpc.nodeSecurityGroupId to the nodes\' security group, so only nodes reach the tunnel endpoint.',
    });
  }
  const cluster = facts.agent.cluster;
  if (cluster && cluster.nodeCidrs.length === 1 && cluster.nodeCidrs[0] === cluster.vpcCidr) {
    // With the node security group in front, only nodes reach the tunnel port: then it is worth knowing, not a risk.
    out.push({
      severity: pairs.length ? 'warning' : 'info', check: 'node-cidrs', subject: 'gateways',
      what: `functionVpc.nodeCidrs is the whole function VPC ${cluster.vpcCidr} (the default): every address in it (load balancers, databases, other instances) is an accepted tunnel source in the NAT policies${pairs.length ? ' and the security group' : '; only the node security group keeps the others from the tunnel port'}.`,
      fix: 'set functionVpc.nodeCidrs to the node subnets\' CIDRs only.',
    });
  }
  return out;
}

function memberFindings(m: MemberFacts): Finding[] {
  const out: Finding[] = [];
  const subject = `pair ${m.pair} member ${m.member}`;
  if (m.openForReplacement) {
    out.push({ severity: 'warning', check: 'rolling-update', subject, what: `rollingUpdate names this member: any change of its user data or AMI (Canonical's "current" AMI moves on its own) replaces it at the next apply, active or not.`, fix: `after the roll, fail over if needed and set gateway.rollingUpdate back to 'none' (README, "Upgrades").` });
  }
  const conntrackMax = Number(m.env.CONNTRACK_MAX);
  const limit = m.connLimitPerTenant;
  if (limit !== undefined && Number.isFinite(conntrackMax) && conntrackMax > 0) {
    if (limit > conntrackMax * CONN_LIMIT_WARN_RATIO) {
      out.push({ severity: 'warning', check: 'conn-limit', subject, what: `connLimitPerTenant ${limit} is ${Math.round((limit / conntrackMax) * 100)}% of conntrackMax ${conntrackMax}: one busy tenant can fill the member's table, and then new flows of every tenant are dropped.`, fix: `keep connLimitPerTenant at most half of conntrackMax (raise gateway.conntrackMax, about 320 bytes of kernel memory per entry).` });
    } else if (m.tenants.length > 1 && limit * m.tenants.length > conntrackMax) {
      out.push({ severity: 'info', check: 'conn-limit', subject, what: `${m.tenants.length} tenants × connLimitPerTenant ${limit} exceed conntrackMax ${conntrackMax}: fine while not all are busy at once.`, fix: 'raise gateway.conntrackMax if every tenant may run at its limit together.' });
    }
  }
  out.push(...userDataFindings(m, subject));
  return out;
}

/**
 * EC2 refuses user data over 16 KB in raw form (our gzip bytes, before base64). The plan holds it with interpolations, which
 * apply fills in: each is replaced here by a distinct value of the longest realistic form, so
 * the estimate errs on the large side.
 */
function userDataFindings(m: MemberFacts, subject: string): Finding[] {
  let bytes: number;
  try {
    let n = 0;
    const next = () => (n += 1);
    bytes = packedUserDataBytes(evaluate(m.userData, (ref) => standIn(ref, next())));
  } catch (e) {
    return [{ severity: 'info', check: 'user-data-size', subject, what: `user data size not estimated: ${(e as Error).message}.`, fix: 'none needed unless the apply reports user data over 16 KB.' }];
  }
  const share = `about ${bytes} of ${MAX_USER_DATA_BYTES} bytes (gzipped, interpolations at their longest)`;
  if (bytes > MAX_USER_DATA_BYTES) {
    return [{ severity: 'error', check: 'user-data-size', subject, what: `user data is ${share}: EC2 refuses it, so the apply fails (gateway.maxUserDataBytes was raised, which is only for plans that never reach EC2).`, fix: 'leave maxUserDataBytes unset; user data holds no tenant data, so only a hand-edited plan gets here.' }];
  }
  if (bytes > MAX_USER_DATA_BYTES * USER_DATA_WARN_RATIO) {
    return [{ severity: 'warning', check: 'user-data-size', subject, what: `user data is ${share}: close to EC2's limit.`, fix: 'report it: user data holds no tenant data and should stay far below the limit.' }];
  }
  return [];
}

function standIn(ref: string, n: number): string {
  const hex = (n * 2654435761).toString(16).padStart(17, '0').slice(-17);
  const octet = (k: number) => String(100 + ((n * 37 + k * 11) % 155));
  if (ref.endsWith('.cidr_block')) return `${octet(1)}.${octet(2)}.${octet(3)}.0/24`;
  if (ref.endsWith('.private_ip')) return `${octet(1)}.${octet(2)}.${octet(3)}.${octet(4)}`;
  if (ref.endsWith('.mac_address')) return hex.slice(0, 12).replace(/(..)(?!$)/g, '$1:');
  if (ref.endsWith('.id')) return `eni-${hex}`;
  return `${ref.split('.').pop()}-${hex}`;
}
