import { readFileSync } from 'fs';
import { AGENT_CONFIG_VERSION, AgentConfig, AgentTenant, canonicalCidr, ipv4ToInt, MAC_PATTERN, hex, MARK_MAX, MARK_MIN, VNI_MAX, VNI_MIN } from '../lib/contract';

// The agent's view of the contract. lib/contract imports nothing but itself, so the image ships it compiled beside dist/agent.
export type { AgentConfig, AgentTenant };
export { AGENT_CONFIG_PATH, canonicalCidr, cidrContains, cidrsOverlap, ipv4ToInt, MARK_MAX, MARK_MIN, NODE_COUNTERS, NODE_NFT_TABLE as NFT_TABLE, nodeMac, TENANT_MARK_MASK, TUNNEL_DEV_PREFIX, tunnelDev } from '../lib/contract';

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
  if (c?.version !== AGENT_CONFIG_VERSION) fail(`unsupported version ${String(c?.version)} (this agent reads version ${AGENT_CONFIG_VERSION}; synthesize the ConfigMap with the same cdktf-crossvpc release as the image)`);
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
  const tenants = c.tenants.map((t): AgentTenant => {
    if (typeof t.name !== 'string' || !t.name) fail('tenant without name');
    once(`name ${t.name}`, t.name);
    if (!Number.isInteger(t.vni) || t.vni < VNI_MIN || t.vni > VNI_MAX) fail(`tenant ${t.name}: bad vni ${t.vni}`);
    once(`vni ${t.vni}`, t.name);
    if (!Number.isInteger(t.table) || t.table < MARK_MIN || t.table > MARK_MAX) fail(`tenant ${t.name}: table ${t.table} outside ${hex(MARK_MIN)}..${hex(MARK_MAX)}`);
    once(`table ${t.table}`, t.name);
    if (ipv4ToInt(t.haVip) === undefined) fail(`tenant ${t.name}: haVip is not an IPv4 address: ${t.haVip}`);
    if (!MAC_PATTERN.test(String(t.gatewayMac).toLowerCase())) fail(`tenant ${t.name}: bad gatewayMac ${t.gatewayMac}`);
    if (!Array.isArray(t.cidrs)) fail(`tenant ${t.name}: cidrs missing`);
    let cidrs: string[] = [];
    try {
      cidrs = [...new Set(t.cidrs.map(canonicalCidr))];
    } catch (e) {
      fail(`tenant ${t.name}: ${(e as Error).message}`);
    }
    return { ...t, gatewayMac: t.gatewayMac.toLowerCase(), cidrs };
  });
  return { ...c, gatewayCidrs, tenants };
}

export function loadConfig(path: string): AgentConfig {
  return parseConfig(readFileSync(path, 'utf8'));
}
