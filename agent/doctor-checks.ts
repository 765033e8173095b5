// `crossvpc doctor --live` on a node, the checks: facts gathered from the host (doctor-host.ts) -> findings. Pure.
import { AGENT_METRIC, type Finding } from '../lib/contract';
import { AgentConfig, AgentTenant, cidrsOverlap, NFT_TABLE, NODE_COUNTERS, RULE_PRIORITY, TENANT_MARK_MASK, TUNNEL_DEV_PREFIX, tunnelDev } from './config';
import type { NodeCounterValue } from './node-table';
import { type HostState, tableRoutes } from './tunnels';

/** How often the agent re-checks tunnels, routes and rules (main.ts: every 6th 5 s tick). */
export const TUNNEL_CHECK_SECONDS = 30;
/** Three missed tunnel checks: the agent's periodic loop is stuck, nothing repairs drift. */
export const TUNNEL_CHECK_STALE_SECONDS = 3 * TUNNEL_CHECK_SECONDS;

/** A route of the main or local table that is not the agent's (never on a tunnel device). */
export interface OtherRoute {
  readonly table: 'main' | 'local';
  readonly type: string;
  readonly dst: string;
  readonly dev?: string;
  readonly gateway?: string;
}

/** How the node reaches a HaVip outside the tunnels: `ip route get`, and the neighbour of the next hop. */
export interface UnderlayPath {
  /** Undefined: no route (`ip route get` failed), with the reason. */
  readonly dev?: string;
  readonly via?: string;
  readonly error?: string;
  /** NUD state of the next hop (REACHABLE, STALE, FAILED, ...); undefined when the kernel has no entry yet. */
  readonly neighbourState?: string;
}

/** The agent's endpoints as doctor saw them; `error` when nothing answered. */
export interface AgentEndpointFacts {
  readonly url: string;
  readonly error?: string;
  readonly health?: { readonly status: number; readonly body: string };
  /** Samples of /metrics by name, labels as `k="v",...` (empty for none). */
  readonly metrics?: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

export interface NodeFacts {
  /** Undefined when neither --node-ip, $NODE_IP nor the agent's command line says it. */
  readonly nodeIp?: string;
  /** The agent's own view (tunnel links, rules, our tables' routes, permanent neighbours). */
  readonly host: HostState;
  /** Destinations of each tunnel device's all-zero fdb entries (VXLAN's default remote). */
  readonly fdb: ReadonlyMap<string, readonly string[]>;
  readonly underlay: ReadonlyMap<string, UnderlayPath>;
  readonly otherRoutes: readonly OtherRoute[];
  /** The node table: absent, present with its counters, or unreadable. */
  readonly nodeTable: { readonly present: false } | { readonly present: true; readonly counters: ReadonlyMap<string, NodeCounterValue> } | { readonly error: string };
  /** Undefined when the address is unknown (no node IP and no --metrics-addr). */
  readonly agent?: AgentEndpointFacts;
}

const AGENT_FIX_LATER = `the agent repairs this at its next tunnel check (every ${TUNNEL_CHECK_SECONDS} s)`;
const PERSISTS = 'if it is back after that, look at the agent\'s log for "exec failed" and at whatever else manages links on the node (NetworkManager, systemd-networkd, another CNI): exclude cx* devices from it';

/** Every finding for one node: per tenant (config order), then node-wide. */
export function nodeFindings(c: AgentConfig, facts: NodeFacts): Finding[] {
  return [...c.tenants.flatMap((t) => tenantFindings(c, t, facts)), ...nodeWideFindings(c, facts)];
}

function tenantFindings(c: AgentConfig, t: AgentTenant, facts: NodeFacts): Finding[] {
  const out: Finding[] = [];
  const dev = tunnelDev(t.vni);
  const f = (severity: Finding['severity'], check: string, what: string, fix: string) => out.push({ severity, check, tenant: t.name, subject: dev, what, fix });
  const link = facts.host.links.find((l) => l.name === dev);
  const cut = `pods of tenant ${t.name} on this node reach nothing`;
  /** Routes and neighbours through a device vanish when it goes down: say so, the down device is the cause. */
  const becauseDown = link && !link.up ? ` (the kernel removed it when ${dev} went down)` : '';
  if (!link) {
    f('error', 'tunnel-device', `no such device (want ${c.tunnel}, VNI ${t.vni}, remote ${t.haVip}): ${cut}.`, `the agent creates it at start and ${AGENT_FIX_LATER}: check that the agent pod runs on this node and its log for "exec failed"; ${PERSISTS}.`);
  } else {
    const differs: string[] = [];
    const want = (field: string, have: unknown, wanted: unknown) => have !== wanted && differs.push(`${field} ${have ?? 'none'} (want ${wanted})`);
    want('kind', link.kind, c.tunnel);
    want(c.tunnel === 'vxlan' ? 'VNI' : 'key', link.id, t.vni);
    want('remote', link.remote, t.haVip);
    if (facts.nodeIp) want('local', link.local, facts.nodeIp);
    if (c.tunnel === 'vxlan') want('port', link.port, c.vxlanPort);
    if (differs.length) {
      f('error', 'tunnel-device', `not tenant ${t.name}'s tunnel: ${differs.join(', ')}; ${cut} or send to the wrong gateway.`, `${AGENT_FIX_LATER} by deleting and recreating the device (a HaVip moved by a new ConfigMap is picked up the same way); ${PERSISTS}.`);
    }
    if (!link.up) {
      f('error', 'tunnel-up', `the device is down (VNI ${t.vni}, remote ${t.haVip}): ${cut}.`, `${AGENT_FIX_LATER}, with the routes and gateway neighbour the kernel removed when it went down; at once: ip link set ${dev} up. Then restore those as the findings below say. ${PERSISTS[0].toUpperCase()}${PERSISTS.slice(1)}.`);
    }
    if (link.mtu !== c.mtu) {
      const larger = link.mtu > c.mtu;
      f(larger ? 'error' : 'warning', 'tunnel-mtu', `MTU ${link.mtu}, the ConfigMap says ${c.mtu}: ${larger ? 'packets above the tunnel MTU are dropped on the way (UDP, and TCP whose MSS was clamped to the wrong value)' : 'pods get smaller packets than the path allows'}.`, `${AGENT_FIX_LATER}; at once: ip link set ${dev} mtu ${c.mtu}.`);
    }
    if (c.tunnel === 'vxlan') {
      const mac = facts.host.neighbours.get(`${dev} ${c.nextHop}`);
      if (mac !== t.gatewayMac) {
        f('error', 'gateway-neighbour', `the next hop ${c.nextHop} ${mac ? `resolves to ${mac}` : `has no permanent neighbour entry${becauseDown}`}, the gateway's MAC for VNI ${t.vni} is ${t.gatewayMac}: the gateway drops frames not addressed to it.`, `${AGENT_FIX_LATER}; at once: ip neigh replace ${c.nextHop} lladdr ${t.gatewayMac} dev ${dev} nud permanent.`);
      }
      const fdb = facts.fdb.get(dev);
      if (fdb && !fdb.includes(t.haVip)) {
        f('error', 'tunnel-fdb', `no default fdb entry toward the HaVip ${t.haVip} (${fdb.length ? `it sends to ${fdb.join(', ')}` : 'none at all'}): VXLAN frames have nowhere to go.`, `bridge fdb append 00:00:00:00:00:00 dev ${dev} dst ${t.haVip}, or ip link del ${dev} and the agent recreates it within ${TUNNEL_CHECK_SECONDS} s.`);
      }
    }
  }
  const rule = facts.host.rules.some((r) => r.priority === RULE_PRIORITY && r.fwmark === t.table && r.fwmask === undefined && Number(r.table) === t.table);
  if (!rule) {
    f('error', 'tenant-rule', `no rule "fwmark 0x${t.table.toString(16)} lookup ${t.table}" at priority ${RULE_PRIORITY}: marked pods of ${t.name} are routed by the main table, never into ${dev}.`, `${AGENT_FIX_LATER}; at once: ip rule add fwmark ${t.table} lookup ${t.table} priority ${RULE_PRIORITY}.`);
  }
  const routes = facts.host.routes.get(t.table) ?? [];
  const wanted = tableRoutes(c, t);
  const missing = wanted.filter((key) => !routes.includes(key));
  if (missing.length) {
    f('error', 'tenant-route', `table ${t.table} lacks ${missing.join(', ')}${becauseDown}: pods of ${t.name} cannot reach ${missing.length === 1 ? 'it' : 'them'}.`, `${AGENT_FIX_LATER}; at once: ${missing.map((m) => (m.startsWith('throw ') ? `ip route replace ${m} table ${t.table}` : c.tunnel === 'vxlan' ? `ip route replace ${m} via ${c.nextHop} dev ${dev} onlink table ${t.table}` : `ip route replace ${m} dev ${dev} table ${t.table}`)).join('; ')}.`);
  }
  const extra = routes.filter((r) => !wanted.includes(r));
  if (extra.length) {
    f('warning', 'tenant-route', `table ${t.table} also routes ${extra.join(', ')}, which the ConfigMap does not give ${t.name}: its pods send those into the tunnel, where the gateway drops them as unmatched.`, `${AGENT_FIX_LATER} by deleting them; if they return, something else writes table ${t.table} (the range 0x1000000-0x1ffffff is the agent's).`);
  }
  const path = facts.underlay.get(t.haVip);
  if (path?.error !== undefined || (path && !path.dev)) {
    f('error', 'havip-route', `the node has no route to the HaVip ${t.haVip} (${path.error ?? 'no device'}): the tunnel's packets cannot leave.`, 'the node\'s main table must reach the gateway subnet (a VPC route); check ip route get ' + t.haVip + '.');
  } else if (path?.dev?.startsWith(TUNNEL_DEV_PREFIX)) {
    f('error', 'havip-route', `the node routes the HaVip ${t.haVip} into the tunnel device ${path.dev}: tunnel packets would loop.`, `remove the route that sends ${t.haVip} into ${path.dev} from the main table; only the tenant tables route into cx* devices.`);
  } else if (path && (path.neighbourState === 'FAILED' || path.neighbourState === 'INCOMPLETE')) {
    const hop = path.via ?? t.haVip;
    f('warning', 'havip-neighbour', `the next hop ${hop} on ${path.dev} toward the HaVip ${t.haVip} is ${path.neighbourState}: it did not answer ARP lately${path.via ? '' : ', so no active gateway member holds the HaVip on this subnet'}.`, path.via ? `check the node's ${path.dev} link and its default gateway.` : `check the gateway pair: is a member MASTER (crossvpc doctor --live on a member) and did it move the HaVip ${t.haVip} to its ENI?`);
  }
  return out;
}

function nodeWideFindings(c: AgentConfig, facts: NodeFacts): Finding[] {
  const out: Finding[] = [];
  const f = (severity: Finding['severity'], check: string, subject: string, what: string, fix: string) => out.push({ severity, check, subject, what, fix });
  const skip = facts.host.rules.some((r) => r.priority === RULE_PRIORITY - 1 && r.fwmark === 0 && r.fwmask === TENANT_MARK_MASK && (r.table === 'main' || Number(r.table) === 254));
  if (c.tenants.length && !skip) {
    f('warning', 'node-rules', 'ip rules', `no rule "fwmark 0/0x${TENANT_MARK_MASK.toString(16)} lookup main" at priority ${RULE_PRIORITY - 1}: every unmarked packet of the node walks the ${c.tenants.length} tenant rules.`, `${AGENT_FIX_LATER}; at once: ip rule add fwmark 0/0x${TENANT_MARK_MASK.toString(16)} lookup main priority ${RULE_PRIORITY - 1}.`);
  }

  const table = `nft table inet ${NFT_TABLE}`;
  const t = facts.nodeTable;
  if ('error' in t) {
    f('error', 'node-table', table, `cannot read it: ${t.error}.`, 'run doctor as root or inside the agent container (it needs NET_ADMIN to list nftables).');
  } else if (!t.present) {
    f('error', 'node-table', table, 'absent: no pod is marked for its tenant and nothing stops pods from spoofing addresses or tunnel packets.', 'the agent builds it once it has a pod snapshot: check its /healthz ("no pod snapshot yet" means the API server or its RBAC); it rebuilds a table flushed behind its back at the next check.');
  } else {
    const value = (name: string) => t.counters.get(name)?.packets ?? 0;
    const absent = NODE_COUNTERS.filter((n) => !t.counters.has(n));
    if (absent.length) f('warning', 'node-table', table, `counters ${absent.join(', ')} missing: the table is from another agent release.`, 'roll the DaemonSet so every node runs one release; the agent swaps the table at start.');
    f('info', 'node-drops', table, `drops by reason: ${NODE_COUNTERS.map((n) => `${n} ${value(n)}`).join(', ')} packets since the table was last built.`, 'nothing to do; the agent exports them as crossvpc_node_dropped_packets_total{reason}.');
    const why: Record<string, string> = {
      pod_spoof: 'a pod sent from an address that is not its own (another pod\'s, or forged)',
      tunnel_spoof: 'tunnel packets arrived from a pod, from outside the gateway subnet, or were aimed at a gateway address by a pod',
      tunnel_denied: 'a pod tried a tunnel that is not its tenant\'s (or it has no tenant): overlapping routes or a mislabelled pod',
      peering_denied: 'a pod sent to a peered tenant it does not belong to, or the peered VPC opened a connection to a pod',
    };
    for (const [name, reason] of Object.entries(why)) {
      if (value(name) > 0) f('warning', 'node-drops', `counter ${name}`, `${value(name)} packets dropped: ${reason}.`, 'find the pod: nft monitor trace, or conntrack -L on this node; the drop is the protection working, the sender is what to fix.');
    }
  }

  for (const r of facts.otherRoutes) {
    const hits = c.tenants.filter((tn) => tn.cidrs.some((cidr) => cidrsOverlap(cidr, r.dst)));
    if (!hits.length) continue;
    const local = r.table === 'local';
    const what = local
      ? `this node owns ${r.dst}${r.dev ? ` (on ${r.dev})` : ''}, inside tenant ${hits.map((h) => h.name).join(', ')}'s range: the local table is consulted before the tenant rules, so pods never reach that tenant address.`
      : `the main table routes ${r.dst}${r.dev ? ` to ${r.dev}` : ''}${r.gateway ? ` via ${r.gateway}` : ''}, overlapping tenant ${hits.map((h) => h.name).join(', ')}'s range: the node itself and host-network pods reach the local network there, not the tenant (labelled pods are steered by fwmark).`;
    for (const h of hits) {
      out.push({ severity: 'warning', check: 'container-range', tenant: h.name, subject: r.dev ?? r.dst, what, fix: /^(docker0|br-)/.test(r.dev ?? '') ? 'move Docker off it ("bip" and "default-address-pools" in /etc/docker/daemon.json), or run the node on containerd without Docker\'s bridge.' : `move ${r.dev ?? 'that network'} to a range no tenant uses, or narrow the tenant's allowedDestinations.` });
    }
  }

  const a = facts.agent;
  if (!a) {
    f('warning', 'agent-health', 'agent', 'not checked: the node IP is unknown, so the agent\'s address is too.', 'pass --node-ip or --metrics-addr, or run doctor inside the agent container (kubectl exec ds/crossvpc-agent), where the agent\'s own command line tells.');
    return out;
  }
  if (a.error !== undefined || !a.health) {
    f('error', 'agent-health', a.url, `no answer: ${a.error ?? 'no response'}; nothing repairs this node's tunnels, rules and table, and pod changes are not applied.`, 'check the agent pod on this node (kubectl get pods -o wide, its log); if the DaemonSet sets another metricsPort, pass --metrics-addr.');
    return out;
  }
  if (a.health.status !== 200) {
    f('error', 'agent-health', `${a.url}/healthz`, `HTTP ${a.health.status}: ${a.health.body.trim()}.`, 'read the agent\'s log for the reason; "no pod snapshot yet" points at the API server or its RBAC, "table applies failing" at nft (its message follows).');
  } else {
    f('info', 'agent-health', `${a.url}/healthz`, `${a.health.body.trim()}.`, 'nothing to do.');
  }
  const sample = (name: string) => a.metrics?.get(name)?.get('');
  const checked = sample(AGENT_METRIC.lastTunnelCheckAge);
  if (checked !== undefined && checked > TUNNEL_CHECK_STALE_SECONDS) {
    f('warning', 'agent-sync', a.url, `the agent last checked tunnels, routes and rules ${Math.round(checked)} s ago (it does every ${TUNNEL_CHECK_SECONDS} s): drift such as a downed device is not being repaired.`, 'read the agent\'s log for "periodic check failed" or a hung command; restarting the agent pod leaves the data plane in place and checks at once.');
  } else if (checked !== undefined) {
    f('info', 'agent-sync', a.url, `the agent last checked tunnels, routes and rules ${Math.round(checked)} s ago (every ${TUNNEL_CHECK_SECONDS} s): drift found now is repaired within about ${Math.max(0, Math.round(TUNNEL_CHECK_SECONDS - checked))} s.`, 'nothing to do.');
  }
  // Not a warning: on a quiet node the age grows between pod changes unless the API server sends watch bookmarks.
  const podEvent = sample(AGENT_METRIC.lastPodEventAge);
  if (podEvent !== undefined) {
    f('info', 'agent-watch', a.url, `the pod source last delivered anything ${Math.round(podEvent)} s ago (a list, a watch event or bookmark).`, 'nothing to do on a quiet node; if pods started on this node since and are not bound (crossvpc_agent_pods_bound), read the agent\'s log for pod source errors and restart the agent pod, which re-lists.');
  }
  const errors = [...(a.metrics?.get(AGENT_METRIC.errors) ?? new Map<string, number>())].filter(([, v]) => v > 0);
  if (errors.length) {
    f('info', 'agent-errors', a.url, `errors since the agent started: ${errors.map(([k, v]) => `${/op="([^"]*)"/.exec(k)?.[1] ?? k} ${v}`).join(', ')}.`, 'transient ones are retried; the agent\'s log names each.');
  }
  return out;
}
