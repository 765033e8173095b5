import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AGENT_METRIC } from '../lib/contract/agent-metrics';
import { AgentConfig, NFT_TABLE } from './config';
import { NodeCounterValue, readNodeCounters } from './node-table';
import type { Exec } from './exec';
import type { PodEventType, PodInfo, PodSink } from './pods';

export { readNodeCounters };
export type { NodeCounterValue };

/** Metric names (lib/contract/agent-metrics): the README's table, the tests and doctor --live use these, not spelled copies. */
export const METRIC = AGENT_METRIC;

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** What `crossvpc_agent_errors_total{op}` counts. */
export type ErrorOp = 'apply' | 'tunnel_step' | 'periodic_check' | 'nft_counters' | 'pod_source';

/** Table swaps and element diffs differ by orders of magnitude: one histogram, two series. */
export type ReconcileKind = 'full' | 'incremental';

/** The reconciler's side of the metrics, so it needs no prom-client (and unit tests no registry). */
export interface ReconcileObserver {
  reconciled(kind: ReconcileKind, seconds: number): void;
  /** A pod's event reached the reconciler this long before its binding was in the node table. */
  podProgrammed(seconds: number): void;
  error(op: ErrorOp): void;
  /** A tunnel, route and rule check ran to its end (whether or not a step failed: those are errors). */
  tunnelsChecked(): void;
}

/** Read at scrape time. */
export interface AgentState {
  config(): AgentConfig;
  /** Pods whose (interface, address) is bound to a tenant, by tenant name. */
  boundPerTenant(): ReadonlyMap<string, number>;
  ready(): boolean;
}

export interface AgentMetricsOptions {
  /** process_* and nodejs_* from prom-client (default true; off in unit tests for stable output). */
  readonly defaultMetrics?: boolean;
  readonly now?: () => number;
}

/**
 * The agent's registry. Everything that reflects host or reconciler state is computed in a
 * collect callback at scrape time (pods bound, drops, event age), so a scrape is never stale.
 */
export class AgentMetrics implements ReconcileObserver {
  readonly registry = new Registry();
  private readonly now: () => number;
  private lastPodEvent: number;
  private lastTunnelCheck: number;
  private state?: AgentState;
  private exec?: Exec;
  private readonly errors: Counter<'op'>;
  private readonly reconcile: Histogram<'kind'>;
  private readonly programming: Histogram;

  constructor(opts: AgentMetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.lastPodEvent = this.now();
    this.lastTunnelCheck = this.now();
    const registers = [this.registry];
    const self = this;
    new Gauge({
      name: METRIC.podsBound,
      help: "Pods on this node bound to a tenant (their interface and address carry its mark: into its tunnel, or to its peering), per tenant of the ConfigMap.",
      labelNames: ['tenant', 'vni'],
      registers,
      collect() {
        this.reset();
        if (!self.state) return;
        const bound = self.state.boundPerTenant();
        const { tenants, peered = [] } = self.state.config();
        for (const t of [...tenants, ...peered]) this.set({ tenant: t.name, vni: String(t.vni) }, bound.get(t.name) ?? 0);
      },
    });
    this.reconcile = new Histogram({
      name: METRIC.reconcileSeconds,
      help: 'Time to apply pod state to the node table: kind="full" swaps the whole nft table, kind="incremental" applies element changes.',
      labelNames: ['kind'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.programming = new Histogram({
      name: METRIC.podProgrammingSeconds,
      help: "Pod event received -> the pod's binding applied in the node table (kube-proxy's network programming latency): waiting for the apply slot, reading host routes, nft.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.errors = new Counter({
      name: METRIC.errors,
      help: 'Agent errors by operation: apply (nft table update), tunnel_step (a tunnel, route or rule command), periodic_check (re-reading the ConfigMap, the drift check), nft_counters (reading drop counters for a scrape), pod_source (a failed pod list, watch or file read; retried with backoff).',
      labelNames: ['op'],
      registers,
    });
    for (const op of ['apply', 'tunnel_step', 'periodic_check', 'nft_counters', 'pod_source'] satisfies ErrorOp[]) this.errors.inc({ op }, 0);
    new Gauge({
      name: METRIC.ready,
      help: '1 once the first full node table is applied, else 0.',
      registers,
      collect() {
        this.set(self.state?.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC.lastPodEventAge,
      help: 'Seconds since the pod source last delivered anything (a list, a watch event or bookmark, new lines of the events file); since agent start if nothing yet.',
      registers,
      collect() {
        this.set(Math.max(0, (self.now() - self.lastPodEvent) / 1000));
      },
    });
    new Gauge({
      name: METRIC.lastTunnelCheckAge,
      help: 'Seconds since the agent last checked its tunnels, routes and rules against the ConfigMap and repaired drift (every 30 s); since agent start if not yet.',
      registers,
      collect() {
        this.set(Math.max(0, (self.now() - self.lastTunnelCheck) / 1000));
      },
    });
    // One nft read per scrape serves both counters: packets' collect reads, bytes' reuses the result.
    let pending: Promise<Map<string, NodeCounterValue> | undefined> | undefined;
    // Before the first table is applied there is nothing to read (and no error in that).
    const read = () => (pending ??= (self.exec && self.state?.ready() ? readNodeCounters(self.exec) : Promise.resolve(new Map<string, NodeCounterValue>())).catch(() => {
      self.error('nft_counters');
      return undefined;
    }));
    const fill = (c: Counter<'reason'>, values: Map<string, NodeCounterValue> | undefined, field: keyof NodeCounterValue) => {
      c.reset(); // nft holds the totals; a table the agent rebuilds restarts them (a counter reset to Prometheus)
      for (const [reason, v] of values ?? []) c.inc({ reason }, v[field]);
    };
    new Counter({
      name: METRIC.droppedPackets,
      help: `Packets dropped by the node table (nft table inet ${NFT_TABLE}), by reason: the name of its nft counter.`,
      labelNames: ['reason'],
      registers,
      async collect() {
        pending = undefined;
        fill(this, await read(), 'packets');
      },
    });
    new Counter({
      name: METRIC.droppedBytes,
      help: `Bytes dropped by the node table (nft table inet ${NFT_TABLE}), by reason: the name of its nft counter.`,
      labelNames: ['reason'],
      registers,
      async collect() {
        fill(this, await read(), 'bytes');
        pending = undefined;
      },
    });
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges that prom-client names *_total, which `promtool check metrics` rejects; the per-type
      // breakdowns (nodejs_active_handles{type}, ...) stay.
      for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  /** Connects the scrape-time sources; before this, state metrics read as empty/0. */
  attach(state: AgentState, exec: Exec): void {
    this.state = state;
    this.exec = exec;
  }

  reconciled(kind: ReconcileKind, seconds: number): void {
    this.reconcile.observe({ kind }, seconds);
  }

  podProgrammed(seconds: number): void {
    this.programming.observe(seconds);
  }

  error(op: ErrorOp): void {
    this.errors.inc({ op });
  }

  tunnelsChecked(): void {
    this.lastTunnelCheck = this.now();
  }

  /** Marks the pod source as alive (also called on watch bookmarks, which carry no pod). */
  podSourceAlive(): void {
    this.lastPodEvent = this.now();
    this.lastTunnelCheck = this.now();
  }

  /** A PodSink that records event times and forwards to `sink`. */
  timedSink(sink: PodSink): PodSink {
    return {
      sync: (pods: PodInfo[]) => {
        this.podSourceAlive();
        sink.sync(pods);
      },
      event: (type: PodEventType, pod: PodInfo) => {
        this.podSourceAlive();
        sink.event(type, pod);
      },
      alive: () => this.podSourceAlive(),
      failed: () => this.error('pod_source'),
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
