import { readFileSync } from 'fs';
import { AGENT_CONFIG_VERSIONS_READ, AgentConfig, AgentPeeredTenant, AgentTenant, canonicalCidr, cidrsOverlap, ipv4ToInt, MAC_PATTERN, hex, MARK_MAX, MARK_MIN, VNI_MAX, VNI_MIN } from '../lib/contract';

// The agent's view of the contract. lib/contract imports nothing but itself, so the image ships it compiled beside dist/agent.
export type { AgentConfig, AgentPeeredTenant, AgentTenant };
export { AGENT_CONFIG_PATH, canonicalCidr, cidrContains, cidrsOverlap, ipv4ToInt, MARK_MAX, MARK_MIN, NODE_COUNTERS, NODE_NFT_TABLE as NFT_TABLE, nodeMac, NON_PUBLIC_RANGES, TENANT_MARK_MASK, TUNNEL_DEV_PREFIX, tunnelDev } from '../lib/contract';

/** Priority of the agent's per-tenant fwmark rules; the unmarked-packets rule sits one below. */
export const RULE_PRIORITY = 100;

/**
 * Validates the ConfigMap JSON. Everything is checked up front because a bad value
 * would otherwise surface as a half-applied data plane (an unresolved Terraform
 * token in haVip, a table outside our range clobbering someone else's routes).
 */
export function parseConfig(text: string): AgentConfig {
  const c = JSON.parse(text) as AgentConfig;
  const fail = (msg: string): never => {
    throw new Error(`invalid agent config: ${msg}`);
  };
  if (!AGENT_CONFIG_VERSIONS_READ.includes(c?.version)) fail(`unsupported version ${String(c?.version)} (this agent reads versions ${AGENT_CONFIG_VERSIONS_READ.join(' and ')}; synthesize the ConfigMap with the same cdktf-crossvpc release as the image)`);
  if (typeof c.podLabelKey !== 'string' || !c.podLabelKey) fail('podLabelKey missing');
  if (c.tunnel !== 'vxlan' && c.tunnel !== 'gre') fail(`unknown tunnel ${String(c.tunnel)}`);
  if (!Number.isInteger(c.vxlanPort) || c.vxlanPort < 1 || c.vxlanPort > 65535) fail(`bad vxlanPort ${c.vxlanPort}`);
  if (!Number.isInteger(c.mtu) || c.mtu < 576 || c.mtu > 65535) fail(`bad mtu ${c.mtu}`);
  if (ipv4ToInt(c.nextHop) === undefined) fail(`bad nextHop ${c.nextHop}`);
  if (!Array.isArray(c.gatewayEndpoints)) fail('gatewayEndpoints missing');
  for (const g of c.gatewayEndpoints) if (ipv4ToInt(g) === undefined) fail(`gateway endpoint is not an IPv4 address: ${g}`);
  if (!Array.isArray(c.gatewayCidrs)) fail('gatewayCidrs missing');
  let gatewayCidrs: string[] = [];
  try {
    gatewayCidrs = c.gatewayCidrs.map(canonicalCidr);
  } catch (e) {
    fail(`gatewayCidrs: ${(e as Error).message}`);
  }
  if (!Array.isArray(c.tenants)) fail('tenants missing');
  const seen = new Map<string, string>();
  const once = (key: string, owner: string) => {
    if (seen.has(key)) fail(`${key} used by both ${seen.get(key)} and ${owner}`);
    seen.set(key, owner);
  };
  /** Name, VNI and mark: unique across NAT and peered tenants; the CIDRs canonical. */
  const identity = (t: { name: string; vni: number; cidrs: string[] }, mark: number, markField: string): string[] => {
    if (typeof t.name !== 'string' || !t.name) fail('tenant without name');
    once(`name ${t.name}`, t.name);
    if (!Number.isInteger(t.vni) || t.vni < VNI_MIN || t.vni > VNI_MAX) fail(`tenant ${t.name}: bad vni ${t.vni}`);
    once(`vni ${t.vni}`, t.name);
    if (!Number.isInteger(mark) || mark < MARK_MIN || mark > MARK_MAX) fail(`tenant ${t.name}: ${markField} ${mark} outside ${hex(MARK_MIN)}..${hex(MARK_MAX)}`);
    once(`mark ${mark}`, t.name);
    if (!Array.isArray(t.cidrs)) fail(`tenant ${t.name}: cidrs missing`);
    try {
      return [...new Set(t.cidrs.map(canonicalCidr))];
    } catch (e) {
      return fail(`tenant ${t.name}: ${(e as Error).message}`);
    }
  };
  const tenants = c.tenants.map((t): AgentTenant => {
    const cidrs = identity(t, t.table, 'table');
    if (ipv4ToInt(t.haVip) === undefined) fail(`tenant ${t.name}: haVip is not an IPv4 address: ${t.haVip}`);
    if (!MAC_PATTERN.test(String(t.gatewayMac).toLowerCase())) fail(`tenant ${t.name}: bad gatewayMac ${t.gatewayMac}`);
    return { ...t, gatewayMac: t.gatewayMac.toLowerCase(), cidrs };
  });
  const egress = tenants.filter((t) => t.internetEgress !== undefined);
  for (const t of egress) if (t.internetEgress !== true) fail(`tenant ${t.name}: internetEgress must be true or absent`);
  if (egress.length && c.version !== 3) fail('internetEgress needs version 3');
  if (egress.length && !c.cluster) fail('internetEgress needs the cluster ranges (they stay out of the tunnel)');
  let cluster = c.cluster;
  if (cluster && egress.length) {
    try {
      const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => canonicalCidr(String(x))) : fail('cluster: podCidrs and nodeCidrs must be lists'));
      cluster = { vpcCidr: canonicalCidr(String(cluster.vpcCidr)), podCidrs: list(cluster.podCidrs), nodeCidrs: list(cluster.nodeCidrs), ...(cluster.serviceCidr === undefined ? {} : { serviceCidr: canonicalCidr(String(cluster.serviceCidr)) }) };
    } catch (e) {
      fail(`cluster: ${(e as Error).message}`);
    }
  }
  if (c.version === 3 && !Array.isArray(c.peered)) fail('peered missing (version 3)');
  if (c.version === 2 && c.peered !== undefined) fail('peered needs version 3');
  const peered = (c.peered ?? []).map((t): AgentPeeredTenant => ({ ...t, cidrs: identity(t, t.mark, 'mark') }));
  // One range routed to two peerings cannot be (the model refuses it): never guess whose it is.
  peered.forEach((t, i) => peered.slice(0, i).forEach((o) => {
    const clash = t.cidrs.find((a) => o.cidrs.some((b) => cidrsOverlap(a, b)));
    if (clash) fail(`peered tenants ${o.name} and ${t.name} overlap at ${clash}`);
  }));
  return { ...c, gatewayCidrs, tenants, ...(cluster ? { cluster } : {}), ...(c.version === 3 ? { peered } : {}) };
}

export function loadConfig(path: string): AgentConfig {
  return parseConfig(readFileSync(path, 'utf8'));
}
