// Pods of this node → pod bindings: which pod IP may speak from which host interface, and for which tenant.
import { AgentConfig, ipv4ToInt } from './config';
import { Bindings, PodBinding } from './node-table';
import { PodRoute, PodRoutes } from './pod-routes';
import { PodInfo } from './pods';

export interface DesiredResult {
  readonly bindings: Map<string, PodBinding>;
  /** Pods denied tenant access, with why (unknown tenant, IP claimed twice, shared interface). */
  readonly denied: { pod: PodInfo; reason: string }[];
  /** Pods whose IP has no host route yet (the CNI is still wiring them): retried. */
  readonly unresolved: PodInfo[];
}

/**
 * Pods of this node → bindings. Every pod-network pod whose IP has a host route is a
 * legitimate source on its interface; labelled pods of a configured tenant also get the
 * tenant. Anything ambiguous is denied tenant access rather than guessed.
 */
export function desiredBindings(config: AgentConfig, pods: Iterable<PodInfo>, routes: PodRoutes, installed: Bindings = new Map()): DesiredResult {
  const byName = new Map(config.tenants.map((t) => [t.name, t]));
  const peeredByName = new Map((config.peered ?? []).map((t) => [t.name, t]));
  interface Claim { pod: PodInfo; route: PodRoute; label?: string }
  const claims = new Map<string, Claim[]>();
  const denied: DesiredResult['denied'] = [];
  const unresolved: PodInfo[] = [];
  for (const pod of pods) {
    // Finished pods keep status.podIP while the IP is already reused by a new pod.
    if (pod.hostNetwork || !pod.ip || pod.phase === 'Succeeded' || pod.phase === 'Failed') continue;
    if (ipv4ToInt(pod.ip) === undefined) continue; // tunnels are IPv4 only
    const label = pod.labels[config.podLabelKey];
    const route = routes.get(pod.ip);
    if (!route) {
      unresolved.push(pod); // unlabelled too: until bound, its interface is not anti-spoofed
      continue;
    }
    claims.set(pod.ip, [...(claims.get(pod.ip) ?? []), { pod, route, label }]);
  }
  // A host interface behind which several pods live (a bridge) cannot tell them apart.
  const podsOnIf = new Map<number, Set<string>>();
  for (const list of claims.values()) for (const c of list) podsOnIf.set(c.route.ifindex, (podsOnIf.get(c.route.ifindex) ?? new Set()).add(c.pod.key));

  const bindings = new Map<string, PodBinding>();
  for (const [ip, list] of claims) {
    const { route } = list[0];
    const binding = { ip, ifindex: route.ifindex, ifname: route.ifname };
    bindings.set(ip, binding);
    const labels = new Set(list.map((c) => c.label ?? ''));
    const tenants = [...labels].map((l) => l || '(unlabelled)').join(', ');
    const shared = podsOnIf.get(route.ifindex)!.size > 1;
    for (const c of list) {
      if (c.label === undefined) continue;
      if (labels.size > 1) denied.push({ pod: c.pod, reason: `IP ${ip} claimed by pods of ${tenants}` });
      else if (shared) denied.push({ pod: c.pod, reason: `interface ${route.ifname} carries ${podsOnIf.get(route.ifindex)!.size} pods, so their sources cannot be told apart (bridge CNIs are not supported)` });
      else if (!byName.has(c.label) && !peeredByName.has(c.label)) denied.push({ pod: c.pod, reason: `unknown tenant "${c.label}"` });
      // A terminating pod's IP is freed with its interface and may already serve a new pod
      // whose own event has not arrived: the tenant stays only on the interface it had.
      else if (c.pod.terminating && installed.get(ip)?.ifindex !== route.ifindex) denied.push({ pod: c.pod, reason: `terminating, and IP ${ip} now routes to another interface (${route.ifname}): reused by a new pod` });
      else if (byName.has(c.label)) bindings.set(ip, { ...binding, tenant: byName.get(c.label)! });
      else bindings.set(ip, { ...binding, peered: peeredByName.get(c.label)! });
    }
  }
  return { bindings, denied, unresolved };
}
