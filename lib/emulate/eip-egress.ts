/**
 * Internet egress through a platform EIP, in the emulation: the function fabric (the function
 * VPC's router) gets an internet gateway stand-in, a link to the emulated internet that maps each
 * EIP stand-in 1:1 to the address the emulated EC2 associated it with (AssociateAddress fills the
 * maps, fake-cloud.ts), as AWS's IGW does. The EIP tenants come from the pair documents' rows.
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { counter } from './attacks';
import type { Emulation } from './emulator';
import { EgressTenant, INTERNET_SERVER, Internet, PRIVATE_HOST } from './egress';
import type { EipInfo } from './fake-cloud';
import type { EmulatedPlan } from './member-image';
import { Check } from './report';
import { sleepSync, terminateAndWait } from './sys';
import { Topology } from './topology';
import { VPC_MTU } from './wiring';
import { GATEWAY_NFT_TABLE } from '../contract';

/** The IGW stand-in's nft table in the function fabric (fake-cloud.ts fills its maps). */
export const IGW_TABLE = 'crossvpc_emu_igw';
/** EIP tenant k's stand-in public address (documentation range, apart from the tenant-VPC mode's 203.0.113.10+). */
export const eipPublicStandIn = (k: number) => `203.0.113.${100 + k}`;
/** A listener the EIP attack aims at on the master (not a port any crossvpc service uses). */
const LISTENER_PORT = 16379;
/** The IGW link's next hops: host 1 in the function fabric, 2 in the internet. */
const IGW_HOP = { fab: '169.254.249.1', inet: '169.254.249.2' };

/** New connections from the internet into the function VPC through the IGW stand-in. */
const igwInbound = (emu: Emulation, fab: string) => Number(/packets (\d+)/.exec(emu.exec(fab, 'nft', ['list', 'counter', 'ip', IGW_TABLE, 'inbound'], { allowFail: true }))?.[1] ?? -1);

export interface EipTenantPlan {
  readonly name: string;
  readonly egressIp: string;
  readonly allocationId: string;
}

/** The plan's EIP tenants (document rows with egress `eip`); both members' rows must agree. */
export function eipTenantsOf(p: EmulatedPlan): EipTenantPlan[] {
  const byName = new Map<string, EipTenantPlan>();
  for (const doc of p.documents.values()) {
    for (const rows of Object.values(doc.rows)) {
      for (const r of rows.filter((x) => x.egress === 'eip')) {
        const t = { name: r.name, egressIp: r.egressIp, allocationId: r.eipAllocationId };
        const have = byName.get(r.name);
        if (have && (have.egressIp !== t.egressIp || have.allocationId !== t.allocationId)) {
          throw new Error(`cdk.tf.json: tenant ${r.name}'s rows disagree on its EIP egress (${have.egressIp} ${have.allocationId} vs ${t.egressIp} ${t.allocationId})`);
        }
        byName.set(r.name, t);
      }
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The IGW stand-in (once) and each EIP tenant's stand-in public address: routed to the function
 * fabric from the internet, mapped only once the emulated EC2 associates it.
 */
export function connectEipTenants(topo: Topology, internet: Internet, fab: string, tenants: readonly EipTenantPlan[]): { tenants: EgressTenant[]; eips: Record<string, EipInfo> } {
  internet.start();
  const inet = internet.ns;
  if (!topo.ok(fab, 'ip', ['link', 'show', 'igw'])) {
    topo.link(fab, 'igw', inet, 'fabric', { mtu: VPC_MTU });
    topo.exec(fab, 'ip', ['addr', 'add', `${IGW_HOP.fab}/30`, 'dev', 'igw']);
    topo.exec(inet, 'ip', ['addr', 'add', `${IGW_HOP.inet}/30`, 'dev', 'fabric']);
    // The internet's hosts, the private one too: a leak through the EIP path would reach it.
    for (const h of [INTERNET_SERVER, PRIVATE_HOST]) topo.exec(fab, 'ip', ['route', 'replace', `${h}/32`, 'via', IGW_HOP.inet, 'dev', 'igw']);
    topo.exec(fab, 'nft', ['-f', '-'], {
      input: `table ip ${IGW_TABLE} {
  map eip_to_private { type ipv4_addr : ipv4_addr; }
  map private_to_eip { type ipv4_addr : ipv4_addr; }
  counter inbound {}
  chain pre { type nat hook prerouting priority dstnat; policy accept;
    iifname "igw" counter name inbound dnat ip to ip daddr map @eip_to_private
  }
  chain post { type nat hook postrouting priority srcnat; policy accept;
    oifname "igw" snat ip to ip saddr map @private_to_eip
  }
}
`,
    });
  }
  const known = internet.tenants().filter((t) => t.mode === 'eip');
  const out: EgressTenant[] = [];
  const eips: Record<string, EipInfo> = {};
  for (const t of tenants) {
    const have = known.find((k) => k.name === t.name);
    const eip = have?.eip ?? eipPublicStandIn(known.length + out.length);
    topo.exec(inet, 'ip', ['route', 'replace', `${eip}/32`, 'via', IGW_HOP.fab, 'dev', 'fabric']);
    const e: EgressTenant = { name: t.name, subnets: [], natIps: [t.egressIp], mode: 'eip', fab, eip };
    internet.add(e);
    out.push(e);
    eips[t.allocationId] = { publicIp: eip, igwNs: fab, table: IGW_TABLE };
  }
  return { tenants: out, eips };
}

/**
 * The EIP tenants' own checks (egress.ts runs the shared ones: each pod seen as its own EIP,
 * private hosts never, pods without egress never, a node forcing traffic into a tunnel):
 * - the IGW stand-in translated each tenant's flows from its egress IP to its EIP;
 * - the EIP is associated with the live master's primary ENI (after a failover: moved), by a
 *   signed AssociateAddress the role allowed, and the fabric delivers the egress IP there;
 * - the internet reaches nothing through an EIP: the master drops it (to_gateway), having
 *   received it (the counter moving is the control that the IGW delivered it; without the
 *   ruleset's drop, the member's own services would answer on the EIP).
 */
export async function eipEgressChecks(emu: Emulation): Promise<Check[]> {
  const eipTenants = emu.internetTenants().filter((t) => t.mode === 'eip');
  if (!eipTenants.length) return [];
  const checks: Check[] = [];
  const master = emu.liveMaster(0);
  const calls = emu.cloudCalls().filter((c) => c.action === 'AssociateAddress');
  for (const t of eipTenants) {
    const flows = emu.exec(t.fab, 'conntrack', ['-L', '-p', 'tcp', '--orig-dst', INTERNET_SERVER, '--orig-src', t.natIps[0]], { allowFail: true }).split('\n').filter((l) => l.includes('dport=6379'));
    const translated = [...new Set(flows.map((l) => [...l.matchAll(/dst=([\d.]+)/g)][1]?.[1] ?? '?'))];
    checks.push({ name: `egress: the IGW stand-in saw tenant ${t.name}'s flows from its egress IP ${t.natIps[0]} and translated them to its EIP ${t.eip}`, pass: flows.length > 0 && translated.every((d) => d === t.eip), detail: `${flows.length} flow(s), translated to ${translated.join(', ') || 'none'}` });
    const mine = calls.filter((c) => c.ip === t.natIps[0]);
    const last = [...mine].reverse().find((c) => c.result === 'associated');
    const denied = mine.filter((c) => c.result !== 'associated');
    const neigh = master ? emu.exec(t.fab, 'ip', ['neigh', 'show', t.natIps[0], 'dev', 'br0'], { allowFail: true }) : '';
    const masterMac = master ? emu.exec(master.ns, 'cat', ['/sys/class/net/ens5/address'], { allowFail: true }).trim() : '';
    // By either member: one stepping down hands the address to its peer (crossvpc-converge peer).
    const pass = !!master && last?.eni === master.env.SELF_ENI && denied.length === 0 && neigh.toLowerCase().includes(`lladdr ${masterMac} `);
    checks.push({
      name: `egress: tenant ${t.name}'s EIP is associated with the live master's primary ENI (signed AssociateAddress, allowed by the role), and the fabric delivers ${t.natIps[0]} there`,
      pass,
      detail: `${master?.id ?? 'no master'} (${master?.env.SELF_ENI ?? '-'}); last association by ${last?.member ?? 'nobody'} onto ${last?.eni ?? '-'} (${mine.length} call(s), ${denied.length} refused); fabric: ${neigh.trim() || 'no entry'}`,
    });
  }
  if (master) {
    const inet = emu.internetNs()!;
    const t = eipTenants[0];
    // A service on the master listening on every address, as sshd would.
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-eip-listener-'));
    const pidFile = join(dir, 'redis.pid');
    emu.exec(master.ns, 'redis-server', ['--port', String(LISTENER_PORT), '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', pidFile, '--logfile', join(dir, 'redis.log')]);
    try {
      const pong = (ns: string, host: string) => emu.exec(ns, 'timeout', ['2', 'redis-cli', '-h', host, '-p', String(LISTENER_PORT), 'ping'], { allowFail: true, timeoutMs: 5000 }).trim() === 'PONG';
      let control = false;
      for (let i = 0; i < 20 && !control; i++) control = pong(t.fab, master.env.SELF_IP) || (sleepSync(100), false);
      const read = () => ({ toGateway: counter(emu, master.ns, GATEWAY_NFT_TABLE, 'to_gateway'), inbound: igwInbound(emu, t.fab) });
      const before = read();
      const answered = pong(inet, t.eip);
      const after = read();
      checks.push({
        name: `egress: the internet connecting to tenant ${t.name}'s EIP ${t.eip} gets nothing from a service listening on every address of ${master.id}, which receives it through the IGW stand-in and drops it (to_gateway; control: the function VPC reaches the service on the member's own address)`,
        pass: control && !answered && after.inbound > before.inbound && after.toGateway > before.toGateway,
        detail: `through the EIP: ${answered ? 'ANSWERED' : 'no answer'}; IGW inbound ${before.inbound} -> ${after.inbound}; to_gateway ${before.toGateway} -> ${after.toGateway}; control ${control ? 'PONG' : 'no answer'}`,
      });
    } finally {
      const pid = Number(emu.exec(master.ns, 'cat', [pidFile], { allowFail: true }).trim());
      if (pid > 0) terminateAndWait(pid);
      rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    }
  }
  return checks;
}
