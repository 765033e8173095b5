/**
 * The node agent's Prometheus metric names (agent/metrics.ts serves them on /metrics): the
 * README's table, the tests and `crossvpc doctor --live` read these, never spelled copies.
 */
export const AGENT_METRIC = {
  podsBound: 'crossvpc_agent_pods_bound',
  reconcileSeconds: 'crossvpc_agent_reconcile_duration_seconds',
  podProgrammingSeconds: 'crossvpc_agent_pod_programming_duration_seconds',
  errors: 'crossvpc_agent_errors_total',
  ready: 'crossvpc_agent_ready',
  lastPodEventAge: 'crossvpc_agent_last_pod_event_age_seconds',
  lastTunnelCheckAge: 'crossvpc_agent_last_tunnel_check_age_seconds',
  droppedPackets: 'crossvpc_node_dropped_packets_total',
  droppedBytes: 'crossvpc_node_dropped_bytes_total',
} as const;
