import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { counter } from './attacks';
import type { Emulation } from './emulator';
import type { CraftedPacket } from './probe-tools';
import type { Check } from './report';
import { compiled, sleep, spawnLogged } from './sys';
import { nodeMac } from '../contract/mac';
import { NODE_NFT_TABLE } from '../contract/names';

const REPEAT = 3;
const CLIENT_PORT = 7301;
const SERVICE_PORT = 7302;

/**
 * Forged replies into a node's own tunnel: a pod opens a UDP flow to its tenant, and
 * others send VXLAN straight to that pod's node (not to a gateway) carrying a "reply" of
 * the flow with the tenant's VNI. Attackers: an unlabelled pod on the same node, and a
 * labelled and an unlabelled pod on another node. Control: the active gateway member sends
 * the very same packet, and the pod receives it (the probe and the flow work). The node
 * must drop every attack (`tunnel_spoof`): tunnel packets come only from the gateway
 * subnet, by the route the node has to it.
 */
export async function tunnelInjectionChecks(emu: Emulation): Promise<Check[]> {
  const tenants = emu.activeTenants();
  const master = emu.liveMaster(0);
  if (!tenants.length || !master || emu.nodeCount() < 2) return [];
  const tools = compiled('dist/lib/emulate/probe-tools.js');
  const tenant = tenants[0];
  const victim = emu.podsOn(0).find((p) => p.tenant === tenant.name)!;
  const service = emu.tenantService(tenant.name)!;
  const nodeIp = emu.nodeIp(0);
  const nodeNs = emu.nodeNs(0);

  // The tenant end of the flow (a sink, so no ICMP error ends it), then the pod's flow.
  spawnLogged('ip', ['netns', 'exec', service.ns, process.execPath, tools, 'udp-listen', service.address, String(SERVICE_PORT), '8'], join(emu.runDir, 'inject-service.log'));
  const flowLog = join(emu.runDir, 'inject-flow.log');
  const flow = () => (existsSync(flowLog) ? readFileSync(flowLog, 'utf8').split('\n') : []);
  await sleep(300);
  spawnLogged('ip', ['netns', 'exec', victim.ns, process.execPath, tools, 'udp-flow', victim.ip, String(CLIENT_PORT), service.address, String(SERVICE_PORT), '8'], flowLog);
  for (let i = 0; i < 60 && !flow().includes('sent'); i++) await sleep(50);
  await sleep(300);

  // The reply the node expects: tenant service -> node IP (the pod's flow SNATed), inside the tenant's VNI.
  const reply = (payload: string): CraftedPacket => ({
    dst: nodeIp, vni: tenant.vni, mac: nodeMac(nodeIp), src: service.address, inner: nodeIp, sport: SERVICE_PORT, port: CLIENT_PORT, payload,
  });
  const attackers = [emu.podsOn(0).find((p) => !p.tenant)!, ...emu.podsOn(1).filter((p) => p.tenant === tenant.name || !p.tenant)];
  const before = counter(emu, nodeNs, NODE_NFT_TABLE, 'tunnel_spoof');
  for (const a of attackers) craft(emu, tools, a.ns, [reply(`forged:${a.name}`)]);
  await sleep(300);
  const after = counter(emu, nodeNs, NODE_NFT_TABLE, 'tunnel_spoof');
  craft(emu, tools, master.ns, [reply(`control:${master.id}`)]);
  await sleep(500);

  const forged = flow().filter((l) => l.startsWith('forged:'));
  const moved = after - before;
  const expected = attackers.length * REPEAT;
  return [
    {
      name: `${attackers.length} pods (${attackers.map((a) => a.name).join(', ')}) sending VXLAN (VNI ${tenant.vni}) to node ${nodeIp} with a forged reply of ${victim.name}'s flow deliver nothing; node counter tunnel_spoof counts them`,
      pass: forged.length === 0 && moved >= expected,
      detail: `${forged.length ? `DELIVERED ${forged.join('; ')}` : '0 deliveries'}, tunnel_spoof +${moved} (>= ${expected})`,
    },
    {
      name: `control: gateway ${master.id} sending the same reply reaches ${victim.name} (the flow and the probe work)`,
      pass: flow().includes(`control:${master.id}`),
      detail: flow().includes(`control:${master.id}`) ? 'delivered' : 'not delivered',
    },
  ];
}

function craft(emu: Emulation, tools: string, ns: string, packets: CraftedPacket[]): void {
  emu.exec(ns, process.execPath, [tools, 'craft-vxlan-batch', JSON.stringify({ packets, repeat: REPEAT })], { allowFail: true });
}
