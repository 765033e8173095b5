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
