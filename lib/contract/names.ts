/**
 * Names and number ranges that the gateway scripts, the nftables rulesets, the node agent
 * and the emulator must agree on. crossvpc-lib.sh gets the ones bash needs from here
 * (see gatewayShellConstants), so no script spells them itself.
 */

/** Gateway configuration and run-time state directories (the scripts' CONF and RUN). */
import { FAILOVERS_FILE, GATEWAY_CONNTRACK_COUNT_INTERVAL_SEC, GATEWAY_CONNTRACK_COUNT_TIMEOUT_SEC, GATEWAY_METRIC_PREFIX, GATEWAY_METRICS_INTERVAL_SEC, GATEWAY_TEXTFILE, GATEWAY_TEXTFILE_SUBDIR, IP_MOVES_FILE, TENANT_COUNTER_PREFIX, TRAFFIC_DIRECTIONS, VRRP_STATES } from './gateway-metrics';
import { INBOUND_MARK_BIT } from './ingress';
import { NODE_MAC_PREFIX } from './mac';
import { MEMBER_STATUS_FILE, MEMBER_STATUS_RESULTS } from './member-status';
import { STATE_DIR } from './pair-document';

export const CONF_DIR = '/etc/crossvpc';
export const RUN_DIR = '/run/crossvpc';

/** Tunnel device of a VNI, on gateways and nodes alike. */
export const TUNNEL_DEV_PREFIX = 'cx';
/** A tenant's NAT ENI on a gateway, renamed so the ruleset can name it before it exists. */
export const TENANT_DEV_PREFIX = 'tn';
export const tunnelDev = (vni: number): string => `${TUNNEL_DEV_PREFIX}${vni}`;
export const tenantDev = (vni: number): string => `${TENANT_DEV_PREFIX}${vni}`;

/** nftables tables (family inet) and the named counters the emulator's checks read. */
export const GATEWAY_NFT_TABLE = 'crossvpc_gw';
export const NODE_NFT_TABLE = 'crossvpc_node';
export const GATEWAY_COUNTERS = ['unmatched', 'to_gateway', 'spoofed_tunnel', 'tunnel_not_havip', 'over_limit', 'not_from_peer'] as const;
export const NODE_COUNTERS = ['pod_spoof', 'tunnel_spoof', 'tunnel_denied', 'return_denied', 'peering_denied'] as const;
export type GatewayCounter = (typeof GATEWAY_COUNTERS)[number];
export type NodeCounter = (typeof NODE_COUNTERS)[number];

/**
 * The node agent's host port for GET /metrics and /healthz (FunctionVpcLink's metricsPort default).
 * Clear of node_exporter (9100), Calico (9091), Cilium (9962-9965) and kubelet (10250).
 */
export const AGENT_METRICS_PORT = 9740;

/** IANA's VXLAN port: the gateways' and nodes' tunnel sockets. */
export const VXLAN_PORT = 4789;

export const VNI_MIN = 1;
export const VNI_MAX = 0xffffff;

/**
 * A tenant's fwmark and routing table, on gateways and nodes: above the 24-bit VNI space, so
 * clear of the kernel's tables 253..255; every value in MARK_MIN..MARK_MAX is ours to manage.
 */
export const MARK_MIN = 0x1000000;
export const MARK_MAX = 0x1ffffff;
/** An unmarked packet has none of these bits: `fwmark 0/TENANT_MARK_MASK` skips the tenant rules. */
export const TENANT_MARK_MASK = 0xff000000;
export const tenantTable = (vni: number): number => MARK_MIN + vni;

/** Conntrack zones are 16 bits (0 is the default zone); a tenant's zone follows from its VNI, checked unique per pair. */
export const ZONE_MIN = 1;
export const ZONE_MAX = 65535;
export const conntrackZone = (vni: number): number => (vni % ZONE_MAX) + ZONE_MIN;

export const hex = (n: number): string => `0x${n.toString(16)}`;

/** The names bash needs, as crossvpc-lib.sh declares them (uppercase: shellcheck treats them as environment). */
export function gatewayShellConstants(): Record<string, string> {
  return {
    RUN: RUN_DIR,
    STATE: STATE_DIR,
    TUNNEL_DEV_PREFIX,
    TENANT_DEV_PREFIX,
    GATEWAY_NFT_TABLE,
    TENANT_MARK_MASK: hex(TENANT_MARK_MASK),
    INBOUND_MARK_BIT: hex(INBOUND_MARK_BIT),
    NODE_MAC_PREFIX: NODE_MAC_PREFIX.map((b) => b.toString(16).padStart(2, '0')).join(':'),
    GATEWAY_COUNTERS: GATEWAY_COUNTERS.join(' '),
    MEMBER_STATUS_FILE,
    MEMBER_STATUS_RESULTS: MEMBER_STATUS_RESULTS.join(' '),
    METRIC_PREFIX: GATEWAY_METRIC_PREFIX,
    METRICS_INTERVAL_SEC: String(GATEWAY_METRICS_INTERVAL_SEC),
    CONNTRACK_COUNT_INTERVAL_SEC: String(GATEWAY_CONNTRACK_COUNT_INTERVAL_SEC),
    CONNTRACK_COUNT_TIMEOUT_SEC: String(GATEWAY_CONNTRACK_COUNT_TIMEOUT_SEC),
    TEXTFILE_DIR: `${RUN_DIR}/${GATEWAY_TEXTFILE_SUBDIR}`,
    TEXTFILE: GATEWAY_TEXTFILE,
    IP_MOVES_FILE,
    FAILOVERS_FILE,
    TENANT_COUNTER_PREFIX,
    TRAFFIC_DIRECTIONS: TRAFFIC_DIRECTIONS.join(' '),
    VRRP_STATES: VRRP_STATES.join(' '),
  };
}
