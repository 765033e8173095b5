/**
 * The node agent's configuration (ConfigMap key `tenants.json`): the agent's whole contract,
 * written by lib/render/agent-config (buildAgentConfig), read by agent/config (parseConfig)
 * and by the emulator. The agent never sees Terraform or the model. Values such as `haVip`
 * may be Terraform references that resolve at apply time.
 */

/** Bumped whenever a field the agent needs is added: an agent never runs on a table it cannot read whole. */
export const AGENT_CONFIG_VERSION = 3;
/**
 * The version a config is written with: 2 unless it has peered tenants or internet egress. An
 * agent older than the peering path would ignore `peered` and leave the peered CIDRs open to
 * every pod, and one older than egress would silently keep pods on the node's own internet path,
 * so such a config must stop it (fail closed); without them older agents keep working.
 */
export const agentConfigVersionFor = (peered: readonly unknown[], tenants: ReadonlyArray<{ internetEgress?: boolean }>): 2 | 3 => (peered.length || tenants.some((t) => t.internetEgress) ? 3 : 2);
/** The versions this release's agent reads. */
export const AGENT_CONFIG_VERSIONS_READ: readonly number[] = [2, 3];

import { CONF_DIR } from './names';

/** The ConfigMap key that holds the rendered AgentConfig. */
export const AGENT_CONFIG_KEY = 'tenants.json';
/** Where the DaemonSet mounts it: the agent's --config, and `crossvpc doctor --live`'s default. */
export const AGENT_CONFIG_PATH = `${CONF_DIR}/${AGENT_CONFIG_KEY}`;

export interface AgentConfig {
  readonly version: 2 | typeof AGENT_CONFIG_VERSION;
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
   * Tenants reached through VPC peering (version 3): their pods get the tenant's mark and no
   * tunnel; only they may send to these CIDRs, and nothing from them opens a connection to a pod.
   * Absent in version 2 configs (no peered tenants).
   */
  readonly peered?: AgentPeeredTenant[];
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
  /**
   * Version 3, present only when true: the tenant's table also sends public destinations into
   * the tunnel (a default route), with `throw` routes for NON_PUBLIC_RANGES and the cluster's
   * ranges so cluster traffic keeps the main table.
   */
  readonly internetEgress?: true;
}

export interface AgentPeeredTenant {
  readonly name: string;
  /** Identity only: unique across all tenants, like the NAT tenants' VNIs. */
  readonly vni: number;
  /** fwmark of the tenant's pods (tenantTable(vni)); no routing rule uses it. */
  readonly mark: number;
  /** Destinations this tenant's pods may reach through the peering. */
  readonly cidrs: string[];
}

/** Stable text: fixed key order, two-space indent, trailing newline. */
export function renderAgentConfig(config: AgentConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
