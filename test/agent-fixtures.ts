/** A two-tenant agent ConfigMap (VXLAN; alpha and beta overlap on 10.50.0.0/16), as the agent unit tests read it. */
export const AGENT_CONFIG_RAW = {
  version: 2,
  podLabelKey: 'crossvpc.io/tenant',
  tunnel: 'vxlan',
  vxlanPort: 4789,
  mtu: 8951,
  nextHop: '169.254.0.1',
  gatewayEndpoints: ['10.0.1.1', '10.0.1.2', '10.0.9.9'],
  gatewayCidrs: ['10.0.1.0/24'],
  tenants: [
    { name: 'alpha', vni: 100, cidrs: ['10.50.0.0/16'], haVip: '10.0.1.1', gatewayMac: '0a:00:00:00:64:01', table: 0x1000064 },
    { name: 'beta', vni: 200, cidrs: ['10.50.0.0/16', '172.16.0.0/12'], haVip: '10.0.1.2', gatewayMac: '0a:01:00:00:c8:01', table: 0x10000c8 },
  ],
};

/** Pod IP -> [host interface, its index]: how the CNI wired the node's pods. */
export type PodWiring = Record<string, readonly [string, number]>;

/** An IPv4 address as /proc/net/route prints it on a little-endian host (%08X of the __be32). */
const procHex = (ip: string) => ip.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0')).reverse().join('');

/**
 * What the agent reads for that wiring (RecordingExec answers reads as `cat <path>`):
 * /proc/net/route with the node's default route, its subnet, a /32 via a gateway and an
 * unreachable /32 (neither is a pod), and each pod interface's sysfs ifindex.
 */
export function podRouteResponses(w: PodWiring): Array<{ prefix: string; stdout: string }> {
  const row = (iface: string, dst: string, gw: string, flags: number, mask: string) => `${iface}\t${procHex(dst)}\t${procHex(gw)}\t${flags.toString(16).toUpperCase().padStart(4, '0')}\t0\t0\t0\t${procHex(mask)}\t0\t0\t0                                                                               `;
  const table = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ',
    row('eth0', '0.0.0.0', '10.0.1.1', 0x3, '0.0.0.0'),
    row('eth0', '10.0.1.0', '0.0.0.0', 0x1, '255.255.255.0'),
    row('eth0', '10.244.9.9', '10.0.1.1', 0x7, '255.255.255.255'),
    row('veth5', '10.244.9.8', '0.0.0.0', 0x205, '255.255.255.255'),
    ...Object.entries(w).map(([ip, [dev]]) => row(dev, ip, '0.0.0.0', 0x5, '255.255.255.255')),
  ];
  return [
    { prefix: 'cat /proc/net/route', stdout: `${table.join('\n')}\n` },
    { prefix: 'cat /sys/class/net/eth0/ifindex', stdout: '2\n' },
    ...Object.values(w).map(([dev, ifindex]) => ({ prefix: `cat /sys/class/net/${dev}/ifindex`, stdout: `${ifindex}\n` })),
  ];
}
