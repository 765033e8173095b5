import { Exec } from './exec';

/**
 * Where a pod IP lives on this node: the host interface its /32 route points at.
 * Routed CNIs (EKS VPC CNI, Calico, Cilium native routing) give every pod its own host
 * interface and a main-table /32 route to it, so (interface, source IP) identifies a
 * pod whatever the node's rp_filter says. The interface index, not the name, is the
 * identity: a recreated pod gets a new index even when the CNI reuses the name, so a
 * stale binding can never match the new interface.
 */
export interface PodRoute {
  readonly ifname: string;
  readonly ifindex: number;
}

export type PodRoutes = ReadonlyMap<string, PodRoute>;

/** Host /32 routes of the main table that point straight at an interface (no gateway). */
export async function observePodRoutes(exec: Exec): Promise<PodRoutes> {
  const json = async (argv: string[]): Promise<any[]> => {
    const out = (await exec.run(argv)).stdout.trim();
    return out ? JSON.parse(out) : [];
  };
  const [routes, links] = await Promise.all([json(['ip', '-4', '-j', 'route', 'show', 'table', 'main']), json(['ip', '-j', 'link', 'show'])]);
  const index = new Map<string, number>(links.filter((l) => typeof l.ifname === 'string' && Number.isInteger(l.ifindex)).map((l) => [l.ifname, l.ifindex]));
  const out = new Map<string, PodRoute>();
  for (const r of routes) {
    if (typeof r.dst !== 'string' || typeof r.dev !== 'string' || r.gateway || (r.type && r.type !== 'unicast')) continue;
    const ip = r.dst.endsWith('/32') ? r.dst.slice(0, -3) : r.dst;
    if (ip.includes('/')) continue; // a subnet route (bridge CNIs): it cannot tell pods apart
    const ifindex = index.get(r.dev);
    if (ifindex !== undefined) out.set(ip, { ifname: r.dev, ifindex });
  }
  return out;
}
