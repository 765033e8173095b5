import { CrossVpcModel, pairsInUse, TUNNEL_NEXT_HOP, VXLAN_PORT } from '../model/crossvpc-model';

/**
 * The tenant table the node agent reads (ConfigMap key `tenants.json`). It is the
 * agent's whole contract: the agent never sees Terraform or the model.
 * Values such as `haVip` may be Terraform references that resolve at apply time.
 */
/** Bumped whenever a field the agent needs is added: an agent never runs on a table it cannot read whole. */
export const AGENT_CONFIG_VERSION = 2;

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
  /** fwmark and routing table on the node. */
  readonly table: number;
}

/** `haVipByPair` is keyed by pair index; only pairs holding active tenants (pairsInUse) need one. */
export function buildAgentConfig(model: CrossVpcModel, podLabelKey: string, haVipByPair: Readonly<Record<number, string>>, gatewayCidrs: readonly string[]): AgentConfig {
  const haVipOf = (index: number): string => {
    const v = haVipByPair[index];
    if (v === undefined) throw new Error(`no HaVip given for pair ${index}, which holds active tenants`);
    return v;
  };
  return {
    version: AGENT_CONFIG_VERSION,
    podLabelKey,
    tunnel: model.tunnel,
    vxlanPort: VXLAN_PORT,
    mtu: model.tunnelMtu,
    nextHop: TUNNEL_NEXT_HOP,
    gatewayEndpoints: pairsInUse(model).map((p) => haVipOf(p.index)),
    gatewayCidrs: [...gatewayCidrs],
    tenants: model.tenants.map((t) => ({
      name: t.name,
      vni: t.vni,
      cidrs: [...t.destinations],
      haVip: haVipOf(t.pairIndex),
      gatewayMac: t.gatewayMac,
      table: t.table,
    })),
  };
}

/** Stable text: fixed key order, two-space indent, trailing newline. */
export function renderAgentConfig(config: AgentConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
