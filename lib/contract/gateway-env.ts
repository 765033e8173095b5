/**
 * /etc/crossvpc/gateway.env: one member's settings, sourced by every gateway script and
 * read back by the emulator. Scripts use these names as shell variables, so the key list
 * is what test/contract.test.ts checks every script's `$VARS` against.
 */

export const GATEWAY_ENV_KEYS = [
  'CROSSVPC_PAIR',
  'CROSSVPC_MEMBER',
  'SELF_IP',
  'PEER_IP',
  'SELF_ENI',
  /** The peer's primary ENI: a member stepping down from MASTER hands the HaVip to it. */
  'PEER_ENI',
  'HAVIP',
  'TUNNEL',
  'TUNNEL_MTU',
  'UNDERLAY_MTU',
  'VXLAN_PORT',
  /** Space-separated. */
  'NODE_CIDRS',
  'CONNTRACK_MAX',
  'IMDS_ENDPOINT',
  /** The pair document's SSM parameter name: the only tenant-related thing user data holds. */
  'CONFIG_PARAMETER',
  /** Seconds between the reconciler's reads of the document. */
  'CONFIG_POLL_SEC',
  /** Seconds a listed tenant may lack its devices (an ENI being attached or detached) before it counts as degraded. */
  'TENANT_GRACE_SEC',
  /** Per-tenant conntrack ceiling (the ruleset enforces it; crossvpc-metrics reports it). */
  'CONN_LIMIT_PER_TENANT',
  /** node_exporter's port on SELF_IP (the metrics of crossvpc-metrics and the host). */
  'METRICS_PORT',
] as const;

export type GatewayEnvKey = (typeof GATEWAY_ENV_KEYS)[number];
export type GatewayEnv = Record<GatewayEnvKey, string | number>;

/**
 * Not in gateway.env: the unit's own environment may set these. Real instances leave them
 * unset (the regional endpoints); the emulator points them at its fake EC2 and SSM.
 */
export const GATEWAY_ENV_OVERRIDES = ['EC2_ENDPOINT', 'SSM_ENDPOINT'] as const;

/** Values are single-quoted for bash; a quote inside one would break out, so it is refused. */
export function renderGatewayEnv(header: string, env: GatewayEnv): string {
  const lines = GATEWAY_ENV_KEYS.map((k) => {
    const v = String(env[k]);
    if (v.includes("'") || v.includes('\n')) throw new Error(`gateway.env ${k}: a value may not contain a quote or newline: ${v}`);
    return `${k}='${v}'`;
  });
  return [`# ${header}`, ...lines, ''].join('\n');
}

/** Reads gateway.env back; throws when a key the scripts need is missing. */
export function parseGatewayEnv(text: string): Record<GatewayEnvKey, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)='(.*)'$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  const missing = GATEWAY_ENV_KEYS.filter((k) => env[k] === undefined);
  if (missing.length) throw new Error(`gateway.env lacks ${missing.join(', ')}`);
  return env as Record<GatewayEnvKey, string>;
}
