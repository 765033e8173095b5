import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import type { Emulation, Pod } from './emulator';
import type { Check } from './report';
import type { CraftedPacket } from './probe-tools';
import { compiled, sleep, spawnLogged } from './sys';
import { GATEWAY_NFT_TABLE, GatewayCounter, NODE_NFT_TABLE, NodeCounter } from '../contract/names';

/** Datagrams per probe: enough that a drop is not luck, few enough to stay bounded. */
const REPEAT = 3;
const LISTEN_SECONDS = 10;

/**
 * Hostile pods, each attack beside a control that shows the same probe is delivered when
 * sent by someone entitled to send it. Run twice: with pod IPs private to their node, and
 * with every pod's /32 routed in the function-VPC fabric (EKS VPC CNI), so replies to a
 * successful attack could come back to the pod.
 *
 * - Borrowed source: a labelled pod of another tenant, and an unlabelled pod, add a
 *   victim pod's IP to their interface and send from it (node rp_filter off).
 * - Crafted VXLAN: labelled and unlabelled pods send hand-built VXLAN with every other
 *   tenant's VNI to every gateway address (HaVips, member primary IPs, NAT ENI IPs).
 * - The gateway's own check: the node itself (trusted, past the node's pod filters) sends
 *   the crafted packet to each member's primary IP, which must drop it (tunnel_not_havip).
 */
export class AttackRunner {
  private readonly tools = compiled('dist/lib/emulate/probe-tools.js');

  constructor(private readonly emu: Emulation) {}

  async run(): Promise<Check[]> {
    if (this.emu.activeTenants().length < 2) return [];
    const checks = await this.round('pod IPs private to the node', false, 7100);
    this.emu.routePodIpsInFabric(true);
    try {
      checks.push(...(await this.round('pod /32s routed in the fabric', true, 7200)));
    } finally {
      this.emu.routePodIpsInFabric(false);
    }
    return checks;
  }

  private async round(label: string, routed: boolean, basePort: number): Promise<Check[]> {
    const emu = this.emu;
    const tenants = emu.activeTenants();
    const node = 0;
    const nodeNs = emu.nodeNs(node);
    const nodeIp = emu.nodeIp(node);
    const onNode = emu.podsOn(node);
    const podOf = (tenant: string) => onNode.find((p) => p.tenant === tenant)!;
    const unlabelled = onNode.find((p) => !p.tenant)!;
    const portOf = new Map(tenants.map((t, i) => [t.name, basePort + i]));
    const tag = routed ? 'routed' : 'private';

    // Listen where each tenant's service lives: whatever reaches a listener was delivered into that tenant's VPC.
    const logs = new Map(tenants.map((t) => [t.name, join(emu.runDir, `attack-${tag}-${t.name}.log`)]));
    for (const t of tenants) {
      const svc = emu.tenantService(t.name)!;
      spawnLogged('ip', ['netns', 'exec', svc.ns, process.execPath, this.tools, 'udp-listen', svc.address, String(portOf.get(t.name)), String(LISTEN_SECONDS)], logs.get(t.name)!);
    }
    const received = (tenant: string) => (existsSync(logs.get(tenant)!) ? readFileSync(logs.get(tenant)!, 'utf8').split('\n') : []);
    for (let i = 0; i < 60 && !tenants.every((t) => received(t.name).includes('listening')); i++) await sleep(50);

    // rp_filter off on the node, as on many real nodes: the nft binding alone must hold.
    emu.exec(nodeNs, 'sh', ['-c', 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > "$f"; done']);
    const nodeCounter = (name: NodeCounter) => counter(emu, nodeNs, NODE_NFT_TABLE, name);
    const gwCounter = (ns: string) => counter(emu, ns, GATEWAY_NFT_TABLE, 'tunnel_not_havip');
    const before = { podSpoof: nodeCounter('pod_spoof'), tunnelSpoof: nodeCounter('tunnel_spoof'), members: emu.members().map((m) => gwCounter(m.ns)) };

    // Borrowed source addresses.
    const borrows: Array<{ thief: Pod; victim: Pod; payload: string }> = [];
    for (const t of tenants) {
      const victim = podOf(t.name);
      const other = tenants.find((o) => o.name !== t.name)!;
      for (const thief of [podOf(other.name), unlabelled]) borrows.push({ thief, victim, payload: `borrow:${thief.name}:${victim.ip}:${t.name}` });
    }
    for (const b of borrows) {
      emu.exec(b.thief.ns, 'ip', ['addr', 'add', `${b.victim.ip}/32`, 'dev', 'eth0']);
      try {
        this.udpSend(b.thief.ns, b.victim.ip, emu.probeAddress(b.victim.tenant!), portOf.get(b.victim.tenant!)!, b.payload);
      } finally {
        emu.exec(b.thief.ns, 'ip', ['addr', 'del', `${b.victim.ip}/32`, 'dev', 'eth0'], { allowFail: true });
      }
    }
    for (const t of tenants) this.udpSend(podOf(t.name).ns, podOf(t.name).ip, emu.probeAddress(t.name), portOf.get(t.name)!, `own:${t.name}`);

    // Crafted VXLAN to every gateway address.
    const gatewaySubnet = new Set([...new Set(emu.members().map((m) => m.env.HAVIP)), ...emu.members().map((m) => m.env.SELF_IP)]);
    const eniIps = emu.members().flatMap((m) => m.tenants.map((row) => row.eniIp));
    const targets = [...new Set([...gatewaySubnet, ...eniIps])];
    const packet = (dst: string, t: (typeof tenants)[number], src: string, payload: string): CraftedPacket => ({
      dst, vni: t.vni, mac: t.gatewayMac, src, inner: emu.probeAddress(t.name), port: portOf.get(t.name)!, payload,
    });
    // Peered tenants' pods have no tunnel at all: they may not craft one either.
    const peered = emu.peeredTenants().map((t) => onNode.find((p) => p.tenant === t.name)).filter((p): p is Pod => !!p);
    const attackers = [...tenants.map((t) => podOf(t.name)), ...peered, unlabelled];
    const crafted = new Map<Pod, CraftedPacket[]>();
    for (const a of attackers) {
      const victims = tenants.filter((t) => t.name !== a.tenant);
      crafted.set(a, victims.flatMap((v) => targets.map((dst) => packet(dst, v, routed ? a.ip : nodeIp, `vxlan:${a.name}:${dst}:${v.name}`))));
      this.craft(a.ns, crafted.get(a)!);
    }
    // Controls from the node itself: to the HaVip (delivered) and to each member's own address (the gateway drops it).
    this.craft(nodeNs, tenants.map((t) => packet(t.haVip, t, routed ? podOf(t.name).ip : nodeIp, `control-vxlan:${t.name}`)));
    const toMembers = tenants.flatMap((t) => emu.members().map((m) => packet(m.env.SELF_IP, t, nodeIp, `node-to-member:${m.id}:${t.name}`)));
    this.craft(nodeNs, toMembers);
    await sleep(800);

    const delivered = (prefix: string) => tenants.flatMap((t) => received(t.name).filter((l) => l.startsWith(prefix)).map((l) => `${l} -> ${t.name}`));
    const after = { podSpoof: nodeCounter('pod_spoof'), tunnelSpoof: nodeCounter('tunnel_spoof'), members: emu.members().map((m) => gwCounter(m.ns)) };
    const podSpoof = after.podSpoof - before.podSpoof;
    const tunnelSpoof = after.tunnelSpoof - before.tunnelSpoof;
    const checks: Check[] = [];
    const at = `[${label}, node rp_filter 0]`;

    const stolen = delivered('borrow:');
    checks.push({
      name: `${at} ${borrows.length} pods sending from another pod's IP (${borrows.map((b) => `${b.thief.name} as ${b.victim.name}`).join(', ')}) deliver nothing; node counter pod_spoof counts them`,
      pass: stolen.length === 0 && podSpoof >= borrows.length * REPEAT,
      detail: `${stolen.length ? `DELIVERED ${stolen.join('; ')}` : '0 deliveries'}, pod_spoof +${podSpoof} (>= ${borrows.length * REPEAT})`,
    });
    const own = tenants.filter((t) => received(t.name).includes(`own:${t.name}`)).length;
    checks.push({ name: `${at} control: each victim pod sending the same datagram from its own IP is delivered`, pass: own === tenants.length, detail: `${own}/${tenants.length} delivered` });

    const sent = [...crafted.values()].reduce((n, l) => n + l.length, 0);
    const toGatewaySubnet = [...crafted.values()].flat().filter((p) => gatewaySubnet.has(p.dst)).length;
    const leaked = delivered('vxlan:');
    checks.push({
      name: `${at} ${attackers.length} pods (${attackers.map((a) => a.name).join(', ')}) crafting VXLAN with every other tenant's VNI to ${targets.length} gateway addresses (${targets.join(', ')}) deliver nothing; node counter tunnel_spoof counts those to the gateway subnet`,
      pass: leaked.length === 0 && tunnelSpoof >= toGatewaySubnet * REPEAT,
      detail: `${sent} packets x ${REPEAT}: ${leaked.length ? `DELIVERED ${leaked.join('; ')}` : '0 deliveries'}, tunnel_spoof +${tunnelSpoof} (>= ${toGatewaySubnet * REPEAT})`,
    });
    const controls = tenants.filter((t) => received(t.name).includes(`control-vxlan:${t.name}`)).length;
    checks.push({ name: `${at} control: the node itself sending the crafted packet to the HaVip is delivered (the probe works)`, pass: controls === tenants.length, detail: `${controls}/${tenants.length} delivered` });
    emu.members().forEach((m, i) => {
      const moved = after.members[i] - before.members[i];
      const hit = delivered(`node-to-member:${m.id}:`);
      checks.push({
        name: `${at} gateway ${m.id} drops tunnel packets to its own address ${m.env.SELF_IP}, even from a node`,
        pass: hit.length === 0 && moved >= tenants.length * REPEAT,
        detail: `${hit.length ? `DELIVERED ${hit.join('; ')}` : '0 deliveries'}, tunnel_not_havip +${moved} (>= ${tenants.length * REPEAT})`,
      });
    });
    return checks;
  }

  private udpSend(ns: string, src: string, dst: string, port: number, payload: string): void {
    this.emu.exec(ns, process.execPath, [this.tools, 'udp-send', src, dst, String(port), payload, String(REPEAT)], { allowFail: true });
  }

  private craft(ns: string, packets: CraftedPacket[]): void {
    this.emu.exec(ns, process.execPath, [this.tools, 'craft-vxlan-batch', JSON.stringify({ packets, repeat: REPEAT })], { allowFail: true });
  }
}

/** An nft named counter's packet count, or -1 when it cannot be read (which fails the checks that need it). */
export function counter(emu: Emulation, ns: string, table: typeof GATEWAY_NFT_TABLE | typeof NODE_NFT_TABLE, name: GatewayCounter | NodeCounter): number {
  const out = emu.exec(ns, 'nft', ['list', 'counter', 'inet', table, name], { allowFail: true });
  return Number(/packets (\d+)/.exec(out)?.[1] ?? -1);
}
