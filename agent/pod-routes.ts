import { endianness } from 'os';
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

/** The main table as the kernel prints it (IPv4): read in process, not with `ip`, to spare two process starts per apply. */
export const PROC_NET_ROUTE = '/proc/net/route';
/** Where a device's index is read (sysfs of the agent's network namespace: the node's, with hostNetwork). */
export const ifindexPath = (ifname: string) => `/sys/class/net/${ifname}/ifindex`;

const RTF_GATEWAY = 0x2;
const RTF_REJECT = 0x200;

/** /proc/net/route prints each __be32 with %08X: byte-reversed on little-endian hosts. */
export function procRouteAddr(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return (endianness() === 'LE' ? bytes.reverse() : bytes).join('.');
}

/**
 * Host /32 routes of the main table that point straight at an interface (no gateway, not
 * unreachable/prohibit; blackholes have no interface). /proc/net/route lists the main table only.
 */
export async function observePodRoutes(exec: Exec): Promise<PodRoutes> {
  const rows = (await exec.read(PROC_NET_ROUTE)).split('\n').map((l) => l.trim().split(/\s+/)).filter((r) => r.length > 1);
  const head = rows.shift() ?? [];
  const col = (name: string) => head.indexOf(name);
  const [ci, cd, cg, cf, cm] = ['Iface', 'Destination', 'Gateway', 'Flags', 'Mask'].map(col);
  if ([ci, cd, cg, cf, cm].some((c) => c < 0) && rows.length) throw new Error(`${PROC_NET_ROUTE}: unexpected header ${head.join(' ')}`);
  const hostRoutes: Array<{ ip: string; dev: string }> = [];
  for (const r of rows) {
    const flags = parseInt(r[cf], 16);
    if (r[cm] !== 'FFFFFFFF' || r[cg] !== '00000000' || flags & (RTF_GATEWAY | RTF_REJECT) || r[ci] === '*') continue;
    const ip = procRouteAddr(r[cd]);
    if (ip) hostRoutes.push({ ip, dev: r[ci] });
  }
  const index = new Map<string, number>();
  await Promise.all([...new Set(hostRoutes.map((h) => h.dev))].map(async (dev) => {
    try {
      const n = Number((await exec.read(ifindexPath(dev))).trim());
      if (Number.isInteger(n) && n > 0) index.set(dev, n);
    } catch {
      // Gone since the route was read: its pods stay unresolved until the next look.
    }
  }));
  const out = new Map<string, PodRoute>();
  for (const { ip, dev } of hostRoutes) {
    const ifindex = index.get(dev);
    if (ifindex !== undefined) out.set(ip, { ifname: dev, ifindex });
  }
  return out;
}
