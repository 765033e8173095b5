/**
 * A gateway member's Prometheus metrics: crossvpc-metrics writes them every few seconds to a
 * textfile that node_exporter's textfile collector serves on the member's function-side address.
 * crossvpc-lib.sh gets the names from here (gatewayShellConstants); the tests read them too.
 */
/** node_exporter's conventional port (ProxyNodePair's metricsPort default). */
export const GATEWAY_METRICS_PORT = 9100;
/** node_exporter's --collector.textfile.directory, under RUN_DIR; crossvpc-metrics writes one file there. */
export const GATEWAY_TEXTFILE_SUBDIR = 'textfile';
export const GATEWAY_TEXTFILE = 'crossvpc.prom';
/** The unit that runs node_exporter on a member with the metrics on (the emulation scrapes members that have it). */
export const GATEWAY_EXPORTER_UNIT = 'crossvpc-node-exporter.service';
/** Seconds between two writes of the textfile. */
export const GATEWAY_METRICS_INTERVAL_SEC = 5;
/**
 * Seconds between two per-zone counts of the conntrack table, and the ceiling on one count. A
 * count is a full `conntrack -L`: about 0.44 CPU-seconds per 100,000 entries on a 2-vCPU machine,
 * so every 5 s it would cost a quarter of a vCPU at the default 262,144 entries. The total and
 * its limit come from node_exporter's conntrack collector on every scrape.
 */
export const GATEWAY_CONNTRACK_COUNT_INTERVAL_SEC = 30;
export const GATEWAY_CONNTRACK_COUNT_TIMEOUT_SEC = 10;
/** RUN_DIR files the other scripts keep for the metrics: `calls=N failures=M` and a count of MASTER transitions. */
export const IP_MOVES_FILE = 'ip-moves';
export const FAILOVERS_FILE = 'failovers';

/** Per-tenant named counters in the gateway ruleset: `<prefix><vni>_<direction>`. */
export const TENANT_COUNTER_PREFIX = 't';
/** to_tenant: forwarded from the tunnel (pods to the tenant); to_pods: from the tenant ENI back. */
export const TRAFFIC_DIRECTIONS = ['to_tenant', 'to_pods'] as const;
export type TrafficDirection = (typeof TRAFFIC_DIRECTIONS)[number];
export const tenantCounter = (vni: number, dir: TrafficDirection): string => `${TENANT_COUNTER_PREFIX}${vni}_${dir}`;

/** keepalived states crossvpc-notify records (crossvpc_gateway_vrrp_state has one series each). */
export const VRRP_STATES = ['MASTER', 'BACKUP', 'FAULT', 'STOP', 'UNKNOWN'] as const;

/** Metric name prefix; every series carries pair and member labels, per-tenant ones tenant and vni. */
export const GATEWAY_METRIC_PREFIX = 'crossvpc_gateway_';

/** The metric families crossvpc-metrics writes (name without the prefix → type and help). */
export const GATEWAY_METRICS = {
  tenant_packets_total: { type: 'counter', help: 'Packets forwarded for a tenant and accepted, by direction (to_tenant: from pods; to_pods: replies).' },
  tenant_bytes_total: { type: 'counter', help: 'Bytes forwarded for a tenant and accepted, by direction.' },
  dropped_packets_total: { type: 'counter', help: 'Packets dropped by the gateway ruleset, by reason (one nft counter each).' },
  dropped_bytes_total: { type: 'counter', help: 'Bytes dropped by the gateway ruleset, by reason.' },
  conntrack_entries: { type: 'gauge', help: 'Tracked connections in the conntrack zone of a tenant, counted every 30 s (absent when the last count failed).' },
  conntrack_limit_entries: { type: 'gauge', help: 'Per-tenant ceiling on tracked connections (connLimitPerTenant).' },
  vrrp_state: { type: 'gauge', help: 'keepalived VRRP state of this member: 1 for the current state.' },
  failovers_total: { type: 'counter', help: 'Times this member became MASTER since boot.' },
  conntrackd_up: { type: 'gauge', help: '1 when conntrackd answered its statistics request within the timeout.' },
  conntrackd_cache_entries: { type: 'gauge', help: 'conntrackd cache entries (internal: own sessions; external: synced from the peer).' },
  conntrackd_sync_errors_total: { type: 'counter', help: 'conntrackd sync errors (send, recv, lost and malformed messages).' },
  reconcile_result: { type: 'gauge', help: 'Outcome of the last reconcile: 1 for the current result.' },
  config_version: { type: 'gauge', help: 'SSM parameter version of the pair document applied last (0: none).' },
  config_applied_timestamp_seconds: { type: 'gauge', help: 'Unix time of the last successful apply of the pair document.' },
  tenants_pending: { type: 'gauge', help: 'Tenants of the document whose NAT ENI is not attached yet.' },
  ip_move_calls_total: { type: 'counter', help: 'EC2 calls made by crossvpc-converge since boot (AssignPrivateIpAddresses; AssociateAddress for EIP egress).' },
  ip_move_failures_total: { type: 'counter', help: 'EC2 calls of crossvpc-converge that failed.' },
  metrics_timestamp_seconds: { type: 'gauge', help: 'Unix time crossvpc-metrics wrote this file.' },
} as const;
export type GatewayMetric = keyof typeof GATEWAY_METRICS;
