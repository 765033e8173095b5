import { CrossVpcModel, pairsInUse, TUNNEL_NEXT_HOP, VXLAN_PORT } from '../model/crossvpc-model';
import { AgentConfig, agentConfigVersionFor } from '../contract/agent-config';

// The format itself (type, version, rendering) is the contract's; this module only fills it from the model.
export { AGENT_CONFIG_KEY, AGENT_CONFIG_VERSION, renderAgentConfig } from '../contract/agent-config';
export type { AgentClusterCidrs, AgentConfig, AgentPeeredTenant, AgentTenant } from '../contract/agent-config';

/** `haVipByPair` is keyed by pair index; only pairs holding active tenants (pairsInUse) need one. */
export function buildAgentConfig(model: CrossVpcModel, podLabelKey: string, haVipByPair: Readonly<Record<number, string>>, gatewayCidrs: readonly string[]): AgentConfig {
  const haVipOf = (index: number): string => {
    const v = haVipByPair[index];
    if (v === undefined) throw new Error(`no HaVip given for pair ${index}, which holds active tenants`);
    return v;
  };
  const version = agentConfigVersionFor(model.peered, model.tenants.map((t) => ({ internetEgress: t.internetEgress !== 'none' })));
  return {
    version,
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
      ...(t.internetEgress !== 'none' ? { internetEgress: true as const } : {}),
    })),
    // Version 3 always carries the list (the agent requires it), empty when only egress raised the version.
    ...(version === 3 ? { peered: model.peered.map((t) => ({ name: t.name, vni: t.vni, mark: t.mark, cidrs: [...t.destinations] })) } : {}),
    cluster: {
      vpcCidr: model.functionVpc.vpcCidr,
      podCidrs: [...model.functionVpc.podCidrs],
      nodeCidrs: [...model.functionVpc.nodeCidrs],
      ...(model.functionVpc.serviceCidr === undefined ? {} : { serviceCidr: model.functionVpc.serviceCidr }),
    },
  };
}
