/**
 * bench:dataplane's pod readiness part. Fresh pods, one at a time, each timed from its watch
 * event (the moment the emulator publishes it to the node agent) to the first Redis reply
 * inside the pod: lib/emulate/ready-probe.ts opens a new connection every 1 ms from the pod
 * and timestamps on CLOCK_MONOTONIC. The node agent's side comes from its "pod bound" log
 * line (waited, routes, nft: its own clock) and its pod programming histogram.
 */
import { readFileSync } from 'fs';
import type { Emulation, PodReadiness } from '../lib/emulate/emulator';
import { AGENT_METRIC } from '../lib/contract';

/** Pod event -> first reply, per pod (issue 12). */
export const POD_READY_TARGET_MS = 50;

/** The agent's "pod bound" line: when (wall ms, whole ms) and its own breakdown (ms). */
export interface AgentBound {
  readonly at: number;
  readonly sinceEventMs?: number;
  readonly waitedMs?: number;
  readonly routesMs?: number;
  readonly nftMs?: number;
}

export interface PodReadySample {
  readonly pod: string;
  readonly probe?: PodReadiness;
  readonly agent?: AgentBound;
}

export interface PodReadyResult {
  readonly samples: PodReadySample[];
  /** crossvpc_agent_pod_programming_duration_seconds over these pods (scraped before and after). */
  readonly programming?: { readonly count: number; readonly meanMs: number };
}

/** Where one pod's time went, ms after its event. Watch delivery and bound are ±1 ms (log timestamps). */
export interface PodReadyPhases {
  readonly totalMs: number;
  readonly deliveryMs?: number;
  readonly waitedMs?: number;
  readonly routesMs?: number;
  readonly nftMs?: number;
  /** Agent time not in waited/routes/nft: scheduling, diffing, logging. */
  readonly agentOtherMs?: number;
  readonly boundMs?: number;
  /** Bound -> the successful attempt's start: the probe's 1 ms step (negative: a SYN sent just before the rule landed). */
  readonly probeStepMs?: number;
  /** That attempt's TCP handshake: first packet through node, tunnel, gateway and back. */
  readonly handshakeMs: number;
  /** PING -> +PONG on the fresh connection. */
  readonly pingMs: number;
}

export function phasesOf(s: PodReadySample): PodReadyPhases | undefined {
  const p = s.probe;
  if (!p) return undefined;
  const a = s.agent;
  const boundMs = a ? a.at - p.publishedAt : undefined;
  const deliveryMs = boundMs !== undefined && a?.sinceEventMs !== undefined ? boundMs - a.sinceEventMs : undefined;
  const known = a && [a.sinceEventMs, a.waitedMs, a.routesMs, a.nftMs].every((x) => x !== undefined);
  return {
    totalMs: p.replyMs,
    deliveryMs,
    waitedMs: a?.waitedMs,
    routesMs: a?.routesMs,
    nftMs: a?.nftMs,
    agentOtherMs: known ? a!.sinceEventMs! - a!.waitedMs! - a!.routesMs! - a!.nftMs! : undefined,
    boundMs,
    probeStepMs: boundMs !== undefined ? p.attemptMs - boundMs : undefined,
    handshakeMs: p.connectedMs - p.attemptMs,
    pingMs: p.replyMs - p.connectedMs,
  };
}

/** The agent's "pod bound" line for ip logged at or after `since` (wall ms). */
export function agentBound(logText: string, ip: string, since: number): AgentBound | undefined {
  for (const line of logText.split('\n')) {
    if (!line.includes('"pod bound"') || !line.includes(`"${ip}"`)) continue;
    try {
      const j = JSON.parse(line);
      const at = Date.parse(j.ts);
      if (j.msg !== 'pod bound' || j.ip !== ip || at < since - 1) continue;
      return { at, sinceEventMs: j.sinceEventMs, waitedMs: j.waitedMs, routesMs: j.routesMs, nftMs: j.nftMs };
    } catch {
      /* partial line */
    }
  }
  return undefined;
}

/** `<name>_sum` and `<name>_count` of an unlabelled histogram in a /metrics text. */
export function histogramTotals(text: string, name: string): { sum: number; count: number } | undefined {
  const value = (suffix: string) => Number(new RegExp(`^${name}${suffix} (\\S+)$`, 'm').exec(text)?.[1]);
  const sum = value('_sum');
  const count = value('_count');
  return Number.isFinite(sum) && Number.isFinite(count) ? { sum, count } : undefined;
}

/** `count` fresh t1 pods on node 1, announced one at a time (each after the previous one answered). */
export async function measurePodReadiness(emu: Emulation, count: number, stopped: () => boolean, log: (l: string) => void): Promise<PodReadyResult> {
  const metric = AGENT_METRIC.podProgrammingSeconds;
  const scrape = () => {
    try {
      return histogramTotals(emu.agentMetricsText(0), metric);
    } catch (e) {
      log(`pod readiness: /metrics of the node agent unreadable: ${(e as Error).message}`);
      return undefined;
    }
  };
  const before = scrape();
  const samples: PodReadySample[] = [];
  for (let i = 0; i < count && !stopped(); i++) {
    const fresh = emu.createPod(0, 't1');
    await emu.announcePods([fresh]);
    const probe = emu.podReadiness()[fresh.name];
    let logText = '';
    try {
      logText = readFileSync(emu.agentLogFile(0), 'utf8');
    } catch {
      /* no log: agent side unknown */
    }
    samples.push({ pod: fresh.name, probe, agent: probe ? agentBound(logText, fresh.ip, probe.publishedAt) : undefined });
  }
  const after = scrape();
  const n = before && after ? after.count - before.count : 0;
  return { samples, programming: before && after && n > 0 ? { count: n, meanMs: ((after.sum - before.sum) / n) * 1000 } : undefined };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

/** Median and max of event -> first reply; a pod that never answered counts as Infinity. */
export function readySummary(r: PodReadyResult | undefined): { medianMs?: number; maxMs?: number; boundMedianMs?: number } {
  if (!r?.samples.length) return {};
  const total = r.samples.map((s) => s.probe?.replyMs ?? Infinity);
  const bound = r.samples.map((s) => phasesOf(s)?.boundMs).filter((x): x is number => x !== undefined);
  return { medianMs: median(total), maxMs: Math.max(...total), boundMedianMs: bound.length ? median(bound) : undefined };
}

/** Report lines: the median of each phase over the pods that answered. */
export function readyBreakdown(tenants: number, r: PodReadyResult | undefined): string[] {
  const phases = (r?.samples ?? []).map(phasesOf).filter((p): p is PodReadyPhases => p !== undefined);
  if (!phases.length) return [];
  const med = (k: keyof PodReadyPhases) => {
    const xs = phases.map((p) => p[k]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs).toFixed(2) : '-';
  };
  const never = r!.samples.length - phases.length;
  return [
    `  ${tenants} tenant(s): pod event -> first reply, medians over ${phases.length} pod(s)${never ? ` (${never} never answered)` : ''}, ms: total ${med('totalMs')} = watch delivery ~${med('deliveryMs')} + agent [wait ${med('waitedMs')}, host routes ${med('routesMs')}, nft ${med('nftMs')}, other ${med('agentOtherMs')}] (bound at ~${med('boundMs')}) + probe step ${med('probeStepMs')} + TCP handshake ${med('handshakeMs')} + PING/PONG ${med('pingMs')}`,
    ...(r!.programming ? [`  ${tenants} tenant(s): agent histogram ${AGENT_METRIC.podProgrammingSeconds}: ${r!.programming.count} observation(s), mean ${r!.programming.meanMs.toFixed(2)} ms`] : []),
  ];
}
