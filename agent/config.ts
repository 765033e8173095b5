import { readFileSync } from 'fs';
import type { AgentConfig, AgentTenant } from '../lib/render/agent-config';

export type { AgentConfig, AgentTenant };

/**
 * The contract version this agent reads. Typed by the contract, so a bump there fails to
 * compile here; a literal, because the image holds no part of lib/ at run time.
 */
const AGENT_CONFIG_VERSION: AgentConfig['version'] = 2;

/** fwmarks and routing tables the agent owns (tenantTable() = 0x1000000 + VNI); stale ones in this range are ours to remove. */
export const MARK_MIN = 0x1000000;
export const MARK_MAX = 0x1ffffff;
export const RULE_PRIORITY = 100;
export const NFT_TABLE = 'crossvpc_node';
export const DEV_PREFIX = 'cx';

export const tunnelDev = (vni: number): string => `${DEV_PREFIX}${vni}`;

/** Parses dotted-quad IPv4 into a 32-bit unsigned int; undefined if it is not one. */
export function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
}

const intToIpv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Canonical `a.b.c.d/len` (host bits cleared) as the kernel prints it, so route diffs compare equal. */
export function canonicalCidr(cidr: string): string {
  const [ip, lenText = '32', extra] = cidr.split('/');
  const addr = ipv4ToInt(ip);
  const len = Number(lenText);
  if (addr === undefined || extra !== undefined || !/^\d+$/.test(lenText) || len > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${intToIpv4((addr & mask) >>> 0)}/${len}`;
}

/** True when `ip` lies inside the canonical `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
  const [net, len] = cidr.split('/');
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return ((ipv4ToInt(ip)! & mask) >>> 0) === ipv4ToInt(net);
}

/** Node-side tunnel MAC, the same pure function of the node IP the gateways use (lib/model/identity nodeMac). */
export function nodeMac(nodeIp: string): string {
  return ['0e', 'cc', ...nodeIp.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

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
    if (!Number.isInteger(t.vni) || t.vni < 1 || t.vni > 0xffffff) fail(`tenant ${t.name}: bad vni ${t.vni}`);
    once(`vni ${t.vni}`, t.name);
    if (!Number.isInteger(t.table) || t.table < MARK_MIN || t.table > MARK_MAX) fail(`tenant ${t.name}: table ${t.table} outside 0x1000000..0x1ffffff`);
    once(`table ${t.table}`, t.name);
    if (ipv4ToInt(t.haVip) === undefined) fail(`tenant ${t.name}: haVip is not an IPv4 address: ${t.haVip}`);
    if (!MAC_RE.test(String(t.gatewayMac).toLowerCase())) fail(`tenant ${t.name}: bad gatewayMac ${t.gatewayMac}`);
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
