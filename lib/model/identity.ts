import { createHash } from 'crypto';

export const VNI_MIN = 1;
export const VNI_MAX = 16777215;
/** Auto-derived VNIs stay above this so they never collide with small hand-picked ones. */
export const AUTO_VNI_FLOOR = 65536;

/** A VNI that depends only on the tenant name: adding or removing tenants never moves it. */
export function derivedVni(tenantName: string): number {
  const h = createHash('sha256').update(`crossvpc/vni/${tenantName}`).digest();
  const span = VNI_MAX - AUTO_VNI_FLOOR + 1;
  return AUTO_VNI_FLOOR + (h.readUInt32BE(0) % span);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * The gateway-side tunnel MAC of (pair, VNI). Both members use it, so a failover
 * needs no neighbour refresh on the nodes. 0a: locally administered unicast.
 */
export function gatewayMac(pairIndex: number, vni: number): string {
  return ['0a', hex2(pairIndex & 255), hex2((vni >>> 16) & 255), hex2((vni >>> 8) & 255), hex2(vni & 255), '01'].join(':');
}

/**
 * The node-side tunnel MAC is a pure function of the node IP, so a gateway can
 * resolve any node without per-node configuration. 0e: locally administered unicast.
 */
export function nodeMac(nodeIp: string): string {
  return ['0e', 'cc', ...nodeIp.split('.').map((o) => hex2(Number(o)))].join(':');
}

/** Conntrack zones are 16 bits; a tenant's zone follows from its VNI, checked unique per pair. */
export function conntrackZone(vni: number): number {
  return (vni % 65535) + 1;
}

/** Routing table and fwmark of a tenant on a gateway (above the 24-bit VNI space, clear of 253..255). */
export function tenantTable(vni: number): number {
  return 0x1000000 + vni;
}
