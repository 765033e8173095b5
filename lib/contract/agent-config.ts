/**
 * The node agent's configuration (ConfigMap key `tenants.json`): the agent's whole contract,
 * written by lib/render/agent-config (buildAgentConfig), read by agent/config (parseConfig)
 * and by the emulator. The agent never sees Terraform or the model. Values such as `haVip`
 * may be Terraform references that resolve at apply time.
 */

/** Bumped whenever a field the agent needs is added: an agent never runs on a table it cannot read whole. */
export const AGENT_CONFIG_VERSION = 2;

import { CONF_DIR } from './names';

/** The ConfigMap key that holds the rendered AgentConfig. */
export const AGENT_CONFIG_KEY = 'tenants.json';
/** Where the DaemonSet mounts it: the agent's --config, and `crossvpc doctor --live`'s default. */
export const AGENT_CONFIG_PATH = `${CONF_DIR}/${AGENT_CONFIG_KEY}`;

export interface AgentConfig {
  readonly version: typeof AGENT_CONFIG_VERSION;
  /** Pod label whose value names the pod's tenant. */
  readonly podLabelKey: string;
  readonly tunnel: 'vxlan' | 'gre';
  readonly vxlanPort: number;
  /** MTU of the tunnel devices on the node (underlay MTU minus tunnel overhead). */
  readonly mtu: number;
  /** Link-local next hop on every tunnel device; its neighbour entry is the tenant's gateway MAC. */
  readonly nextHop: string;
  /** Every gateway tunnel endpoint; pods may never send tunnel packets to these. */
  readonly gatewayEndpoints: string[];
  /** The gateway subnet(s): pods may never send tunnel packets to any member address either. */
  readonly gatewayCidrs: string[];
  readonly tenants: AgentTenant[];
  /**
   * The function VPC's own ranges, for `crossvpc doctor` (it reads only the synthesized plan).
   * The agent does not read it, and configs written before it existed lack it: optional, so
   * AGENT_CONFIG_VERSION stays and every agent keeps accepting the config.
   */
  readonly cluster?: AgentClusterCidrs;
}

/** Informational: the cluster-side ranges the model checked the tenants against. */
export interface AgentClusterCidrs {
  readonly vpcCidr: string;
  readonly podCidrs: string[];
  readonly nodeCidrs: string[];
  /** Absent when functionVpc.serviceCidr was not given. */
  readonly serviceCidr?: string;
}

export interface AgentTenant {
  readonly name: string;
  readonly vni: number;
  /** Destinations this tenant's pods may reach through the tunnel. */
  readonly cidrs: string[];
  /** Tunnel endpoint: the pair's HaVip. */
  readonly haVip: string;
  /** Gateway-side MAC of (pair, VNI), identical on both members. */
  readonly gatewayMac: string;
  /** fwmark and routing table on the node (tenantTable(vni)). */
  readonly table: number;
}

/** Stable text: fixed key order, two-space indent, trailing newline. */
export function renderAgentConfig(config: AgentConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
