import { DoctorFacts } from './facts';
import { Finding } from './findings';

/** Path MTUs a tunnelled packet may meet (AWS documentation, "Network maximum transmission unit"). */
export const AWS_VPC_MTU = 9001;
export const TRANSIT_GATEWAY_MTU = 8500;
export const INTERNET_MTU = 1500;

/**
 * The MTU along node → tunnel → gateway → tenant: the tunnel MTU must be the same on both
 * ends, the underlay should be AWS's jumbo 9001, and beyond the tenant VPC (IGW, VPN,
 * inter-region peering at 1500; Transit Gateway at 8500) only TCP is saved by the MSS clamp.
 */
export function mtuFindings(facts: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const agentMtu = facts.agent.mtu;
  const tunnels = new Set<string>();
  for (const m of facts.members) {
    const tunnel = Number(m.env.TUNNEL_MTU);
    const underlay = Number(m.env.UNDERLAY_MTU);
    tunnels.add(`${m.env.TUNNEL} ${tunnel} ${underlay}`);
    if (tunnel !== agentMtu) {
      out.push({ severity: 'error', check: 'mtu', subject: `pair ${m.pair} member ${m.member}`, what: `tunnel MTU ${tunnel} differs from the nodes' ${agentMtu} (agent ConfigMap): packets between them fit on one end and not the other, and large ones vanish.`, fix: 'deploy the ConfigMap and the gateways from one synth; never edit cdk.tf.json by hand.' });
    }
  }
  for (const key of tunnels) {
    const [tunnel, tunnelMtu, underlay] = key.split(' ');
    const t = Number(tunnelMtu);
    const u = Number(underlay);
    if (u < AWS_VPC_MTU) {
      out.push({ severity: 'warning', check: 'mtu', subject: 'gateways', what: `gateway.mtu ${u} is below the VPC's ${AWS_VPC_MTU}: the tunnel MTU is ${t} while pods (the AWS VPC CNI sets ${AWS_VPC_MTU}) send larger packets, so every one over ${t} needs fragmentation-needed or the MSS clamp; UDP and ICMP suffer.`, fix: `leave gateway.mtu at ${AWS_VPC_MTU} unless a hop between nodes and gateways really has a smaller MTU.` });
    }
    out.push({
      severity: 'info', check: 'mtu-path', subject: 'gateways',
      what: `path MTU: pod → node → ${tunnel} tunnel ${t} (underlay ${u} minus ${u - t}) → gateway → tenant VPC ${AWS_VPC_MTU}; beyond it a Transit Gateway carries ${TRANSIT_GATEWAY_MTU}, and an IGW, VPN or inter-region peering ${INTERNET_MTU}. TCP is clamped to MSS ${t - 40} at the gateway (and adapts by PMTUD beyond); UDP datagrams over the path MTU are fragmented or dropped.`,
      fix: `tenant services behind a VPN, peering or TGW: allow ICMP "fragmentation needed" (type 3 code 4) back to the NAT IP, and keep UDP payloads under ${INTERNET_MTU - 28} bytes (or ${TRANSIT_GATEWAY_MTU - 28} through a TGW).`,
    });
  }
  return out;
}
