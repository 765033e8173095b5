/**
 * Tunnel MACs. Both are pure functions, so gateways and nodes agree without exchanging state:
 * gatewayMac is the same on both members of a pair (a failover needs no neighbour refresh),
 * nodeMac lets a gateway resolve any node with no per-node configuration.
 * The bash twin of nodeMac (node_mac in crossvpc-lib.sh) is checked against this one.
 */

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** The gateway-side tunnel MAC of (pair, VNI). 0a: locally administered unicast. */
export function gatewayMac(pairIndex: number, vni: number): string {
  return ['0a', hex2(pairIndex & 255), hex2((vni >>> 16) & 255), hex2((vni >>> 8) & 255), hex2(vni & 255), '01'].join(':');
}

/** The first two octets of every node MAC; the last four are the node's IPv4 address. 0e: locally administered unicast. */
export const NODE_MAC_PREFIX = [0x0e, 0xcc] as const;

/** The node-side tunnel MAC of a node IP. */
export function nodeMac(nodeIp: string): string {
  return [...NODE_MAC_PREFIX.map(hex2), ...nodeIp.split('.').map((o) => hex2(Number(o)))].join(':');
}

/** nodeMac as the six bytes of an Ethernet header. */
export function nodeMacBytes(nodeIp: string): number[] {
  return [...NODE_MAC_PREFIX, ...nodeIp.split('.').map(Number)];
}

export const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
