/**
 * Port forwards in the emulation (seed 001). The forwards come from the plan only (the pair
 * documents' `inbound` column). Each target gets a host on the function VPC fabric running
 * Redis, whose CLIENT INFO answers with the source it saw; the clients are the tenants' own
 * Redis hosts, behind their VPC routers, connecting to NAT IP:port.
 */
import { execFile } from 'child_process';
import { join } from 'path';
import { counter } from './attacks';
import { readStatus } from './failover';
import type { Emulation } from './emulator';
import type { EmulatedPlan } from './member-image';
import { Check } from './report';
import { compiled, inParallel, spawnLogged } from './sys';
import { GATEWAY_NFT_TABLE, INBOUND_SNAT_PORT_BASE, InboundForward } from '../contract';

/** The service every emulated target runs (Redis); a forward to another port or protocol is not emulated. */
export const TARGET_PORT = 6379;
const emulated = (f: InboundForward) => f.protocol === 'tcp' && f.targetPort === TARGET_PORT;

export interface IngressTenant {
  readonly name: string;
  readonly pair: number;
  readonly natIp: string;
  readonly forwards: readonly InboundForward[];
}

/** The plan's tenants with forwards (member a's rows; both members carry the same forwards). */
export function ingressTenantsOf(p: EmulatedPlan): IngressTenant[] {
  return [...p.documents.entries()].flatMap(([pair, doc]) => doc.rows.a.filter((r) => r.inbound.length).map((r) => ({ name: r.name, pair, natIp: r.natIp, forwards: r.inbound })));
}

/** The target addresses the emulation serves, and the forwards it cannot (reported, never silently dropped). */
export function ingressTargetsOf(tenants: readonly IngressTenant[]): { targets: string[]; notEmulated: string[] } {
  const all = tenants.flatMap((t) => t.forwards.map((f) => ({ t, f })));
  return {
    targets: [...new Set(all.filter(({ f }) => emulated(f)).map(({ f }) => f.targetIp))],
    notEmulated: all.filter(({ f }) => !emulated(f)).map(({ t, f }) => `${t.name} ${f.protocol}/${f.port} -> ${f.targetIp}:${f.targetPort}`),
  };
}

/** The address:port a target saw for a client's connection to host:port (`addr=` of CLIENT INFO), or '' when none arrived. Never blocks the event loop. */
function seenBy(clientNs: string, host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', clientNs, 'timeout', '3', 'redis-cli', '-h', host, '-p', String(port), 'client', 'info'], { timeout: 5000 }, (_err, stdout) => resolve(/addr=([\d.]+:\d+)/.exec(String(stdout ?? ''))?.[1] ?? ''));
  });
}

/**
 * For each tenant with forwards: its client reaches each target through NAT IP:port and the
 * target sees the pair's HaVip with a port of the forward range (the control); an unlisted port
 * on the same NAT IP gets nothing and counts as to_gateway; every other tenant's client, on its
 * own NAT IP (identical in the example) and the same port, gets nothing. Probes run side by side.
 */
export async function ingressChecks(emu: Emulation): Promise<Check[]> {
  const tenants = emu.ingressTenants();
  if (!tenants.length) return [];
  const t0 = Date.now();
  const checks: Check[] = [];
  const natIpOf = new Map(emu.members().flatMap((m) => m.tenants.map((r) => [r.name, r.natIp] as const)));
  for (const t of tenants) {
    const client = emu.tenantService(t.name);
    const havip = emu.members(t.pair)[0]?.env.HAVIP;
    const forwards = t.forwards.filter(emulated);
    if (!client || !forwards.length) {
      checks.push({ name: `ingress: tenant ${t.name} has an emulated forward and a client`, pass: false, detail: `${client ? 'client' : 'no client (no Redis host)'}; ${forwards.length} forward(s) to :${TARGET_PORT}/tcp` });
      continue;
    }
    const seen = await inParallel(forwards, 4, (f) => seenBy(client.ns, t.natIp, f.port));
    let reached = false;
    forwards.forEach((f, i) => {
      const [addr, port] = seen[i].split(':');
      const pass = addr === havip && Number(port) >= INBOUND_SNAT_PORT_BASE;
      reached ||= pass;
      checks.push({ name: `ingress: tenant ${t.name}'s client ${client.address} reaches ${f.targetIp}:${f.targetPort} through NAT IP ${t.natIp}:${f.port}; the target sees pair ${t.pair}'s HaVip ${havip} with a forward SNAT port`, pass, detail: `target saw ${seen[i] || 'no connection'}` });
    });
    const master = emu.liveMaster(t.pair);
    const dropped = () => (master ? counter(emu, master.ns, GATEWAY_NFT_TABLE, 'to_gateway') : -1);
    let unlisted = forwards[0].port + 1;
    while (t.forwards.some((f) => f.protocol === 'tcp' && f.port === unlisted)) unlisted += 1;
    const others = emu.activeTenants().filter((o) => o.name !== t.name && !tenants.some((x) => x.name === o.name && x.forwards.some((f) => f.port === forwards[0].port)))
      .flatMap((o) => {
        const svc = emu.tenantService(o.name);
        const natIp = natIpOf.get(o.name);
        return svc && natIp ? [{ name: o.name, ns: svc.ns, natIp }] : [];
      });
    const probes = [{ name: t.name, ns: client.ns, natIp: t.natIp, port: unlisted }, ...others.map((o) => ({ ...o, port: forwards[0].port }))];
    const before = dropped();
    const got = await inParallel(probes, 4, (x) => seenBy(x.ns, x.natIp, x.port));
    const after = dropped();
    checks.push({ name: `ingress: tenant ${t.name}'s client -> NAT IP ${t.natIp}:${unlisted} (not forwarded) gets nothing, dropped as to_gateway (control: the forwarded port answers)`, pass: got[0] === '' && reached && after > before, detail: `${got[0] ? `REACHED, target saw ${got[0]}` : 'no connection'}; ${master?.id ?? 'no master'} to_gateway ${before} -> ${after}` });
    others.forEach((o, i) => {
      const theirs = got[i + 1];
      checks.push({ name: `ingress: tenant ${o.name}'s client -> its NAT IP ${o.natIp}:${forwards[0].port} (tenant ${t.name}'s forward) gets nothing (control: ${t.name}'s client reaches the target)`, pass: theirs === '' && reached, detail: theirs ? `REACHED, target saw ${theirs}` : 'no connection' });
    });
  }
  emu.progress(`ingress checks: ${checks.length} in ${Date.now() - t0} ms`);
  return checks;
}

/**
 * One long-lived INCR connection through each tenant's first forward to :6379/tcp (from the
 * tenant's Redis host to NAT IP:6379), for the failover scenarios: `finish()` stops them and
 * checks each never reconnected, got every reply in sequence, and is still open at the target.
 */
export function holdIngressConnections(emu: Emulation): { finish(): Check[] } {
  const clients = emu.ingressTenants().flatMap((t) => {
    const f = t.forwards.find((x) => emulated(x) && x.port === TARGET_PORT);
    const svc = emu.tenantService(t.name);
    if (!f || !svc) return [];
    const statusFile = join(emu.runDir, `incr-ingress-${t.name}.json`);
    const child = spawnLogged('ip', ['netns', 'exec', svc.ns, process.execPath, compiled('dist/lib/emulate/incr-client.js'), t.natIp, `ingress:${t.name}`, statusFile, '3000'], join(emu.runDir, `incr-ingress-${t.name}.log`));
    return [{ t, f, statusFile, child, havip: emu.members(t.pair)[0]?.env.HAVIP }];
  });
  return {
    finish(): Check[] {
      try {
        return clients.map(({ t, f, statusFile, havip }) => {
          const expected = clients.filter((c) => c.f.targetIp === f.targetIp && c.havip === havip).length;
          const st = readStatus(statusFile);
          const open = emu.exec(emu.ingressTargetNs(f.targetIp), 'redis-cli', ['-h', f.targetIp, 'client', 'list'], { allowFail: true }).split('\n').filter((l) => l.includes('cmd=incr') && l.includes(`addr=${havip}:`));
          return {
            name: `ingress: tenant ${t.name}'s connection through NAT IP ${t.natIp}:${f.port} to ${f.targetIp} lived through the faults (one TCP connection, no reconnect, every reply in sequence, still open from the HaVip)`,
            // As FailoverRunner judges the tenant connections: an INCR timing out while TCP retransmits is reported, not fatal.
            pass: st.acked > 0 && st.reconnects === 0 && st.sequenceBreaks === 0 && open.length === expected,
            detail: `${st.acked} INCRs acknowledged, longest pause ${st.maxGapMs} ms, ${st.reconnects} reconnects, ${st.failedOps} failed, ${open.length} of ${expected} INCR connection(s) from the HaVip open at the target`,
          };
        });
      } finally {
        for (const c of clients) c.child.kill('SIGTERM');
      }
    },
  };
}
