import { offloadChecks } from './offload-checks';
import { AttackRunner, counter } from './attacks';
import { egressChecks } from './egress';
import { ingressChecks } from './ingress';
import { eipEgressChecks } from './eip-egress';
import { tunnelInjectionChecks } from './injection';
import { peeringAttackChecks } from './peering-attacks';
import type { Emulation } from './emulator';
import { Check, MatrixResult } from './report';
import { inParallel, sleep } from './sys';

/** Probes in flight at once: enough to overlap their timeouts, few enough for a 2-core host. */
const PARALLEL = 16;
import { GATEWAY_NFT_TABLE } from '../contract';

/** A Redis the matrix writes to: `tenant` is set for a current tenant's current service (its own pods must reach it). */
export interface ServiceTarget {
  readonly label: string;
  readonly tenant?: string;
  readonly ns: string;
  readonly address: string;
}

/**
 * Every pod writes a key to every service address; each service must hold exactly the keys
 * of the pods of its tenant, and only if the tenant is in the running plan (retired tenants'
 * pods and services on destinations an edit took away reach nothing). Then the attacks
 * (attacks.ts, when asked) and probes at the gateways.
 */
export async function runMatrix(emu: Emulation, attacks: boolean): Promise<MatrixResult> {
  const targets = emu.serviceTargets();
  const pods = emu.pods();
  const nonce = Date.now().toString(36);
  emu.progress(`reachability matrix: ${pods.length} pods x ${targets.length} services`);
  const reached: Record<string, string[]> = {};
  const addrs = [...new Set(targets.map((t) => t.address))];
  // Side by side: most pairs must fail, each after its 2 s timeout.
  const writes = pods.flatMap((pod) => addrs.map((a) => ({ pod, a })));
  await inParallel(writes, PARALLEL, ({ pod, a }) => emu.redisAsync(pod, a, ['set', `crossvpc:${nonce}:${pod.name}:${a}`, pod.name], 2));
  for (const t of targets) {
    const keys = emu.exec(t.ns, 'redis-cli', ['-h', t.address, '--scan', '--pattern', `crossvpc:${nonce}:*`], { allowFail: true }).split('\n').filter(Boolean);
    for (const pod of pods) {
      if (keys.some((k) => k.startsWith(`crossvpc:${nonce}:${pod.name}:`))) (reached[pod.name] ??= []).push(t.label);
    }
  }
  const current = new Set(targets.filter((t) => t.tenant).map((t) => t.tenant!));
  const checks: Check[] = [];
  for (const pod of pods) {
    const got = reached[pod.name] ?? [];
    const want = pod.tenant && current.has(pod.tenant) ? [pod.tenant] : [];
    const what = pod.tenant && !current.has(pod.tenant) ? ` (its tenant ${pod.tenant} is not in the plan)` : '';
    checks.push({ name: `pod ${pod.name} reaches exactly ${want.length ? want.join(',') : 'no tenant'}${what}`, pass: got.join(',') === want.join(','), detail: `reached: ${got.join(',') || 'none'}` });
  }
  if (attacks) checks.push(...(await new AttackRunner(emu).run()), ...(await tunnelInjectionChecks(emu)), ...(await peeringAttackChecks(emu)), ...(await egressChecks(emu)), ...(await eipEgressChecks(emu)), ...(await ingressChecks(emu)));
  checks.push(...(await gatewayProbeChecks(emu)));
  checks.push(...offloadChecks(emu));
  return { tenants: targets.map((t) => t.label), reached, checks, ok: checks.every((c) => c.pass) };
}

/** Pods and tenant VPCs knocking on the gateways' own services: sync port, ssh, NAT IPs, ENIs. */
export async function gatewayProbeChecks(emu: Emulation): Promise<Check[]> {
  const checks: Check[] = [];
  const pods = emu.pods();
  const members = emu.members();
  // A pod (which may share the nodes' security group) sends session-sync datagrams to a member.
  const pod = pods.find((p) => p.tenant);
  const master = emu.liveMaster(members[0]?.pair ?? 0);
  if (pod && master) {
    const before = counter(emu, master.ns, GATEWAY_NFT_TABLE, 'not_from_peer');
    const sent = emu.exec(pod.ns, 'bash', ['-c', `for i in 1 2 3; do echo forged >/dev/udp/${master.env.SELF_IP}/3780 || echo "send $i failed"; done 2>&1`], { allowFail: true }).trim();
    // The datagrams are in flight when the send returns (a neighbour may still be resolving): wait for them, bounded.
    let after = counter(emu, master.ns, GATEWAY_NFT_TABLE, 'not_from_peer');
    for (let i = 0; i < 40 && before >= 0 && after < before + 3; i++) {
      await sleep(50);
      after = counter(emu, master.ns, GATEWAY_NFT_TABLE, 'not_from_peer');
    }
    checks.push({ name: `pod ${pod.name} -> conntrackd sync port of ${master.id} is dropped by the gateway itself`, pass: before >= 0 && after >= before + 3, detail: `not_from_peer counter ${before} -> ${after}${sent ? `; ${sent.replace(/\n/g, '; ')}` : ''}` });
  }
  // Each probe is independent and most must time out: they run side by side.
  // `answers`: a control, which must get through (the probe tool and the path work); the rest must not.
  const probes: Array<{ name: string; run: () => Promise<boolean>; yes: string; no: string; answers?: boolean }> = [];
  const tcp = (ns: string, ip: string, port: number) => () => emu.okAsync(ns, 'timeout', ['1', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`], 3000);
  for (const t of emu.activeTenants()) {
    const { ns: svc, address: svcIp } = emu.tenantService(t.name)!;
    const router = /default via ([\d.]+)/.exec(emu.exec(svc, 'ip', ['route', 'show', 'default']))?.[1] ?? 'none';
    probes.push({ name: `control: tenant ${t.name}'s host connects to its own Redis ${svcIp}:6379 (the TCP probe works)`, run: tcp(svc, svcIp, 6379), yes: 'connected', no: 'NO CONNECTION', answers: true });
    probes.push({ name: `control: tenant ${t.name}'s host pings its VPC router ${router} (the ping probe works)`, run: () => emu.okAsync(svc, 'ping', ['-c', '1', '-W', '1', router], 3000), yes: 'answered', no: 'NO ANSWER', answers: true });
    for (const run of members) {
      const row = run.tenants.find((r) => r.name === t.name);
      if (!row) continue;
      const { natIp, eniIp } = row;
      // A port forward (ingress.ts) opens its port on the NAT IP: probe the next one instead.
      const forwarded = (port: number) => row.inbound.some((f) => f.protocol === 'tcp' && f.port === port);
      let unsolicited = 6379;
      while (forwarded(unsolicited)) unsolicited += 1;
      for (const [ip, port, what] of [[natIp, 22, 'NAT IP ssh'], [natIp, unsolicited, 'NAT IP unsolicited'], [eniIp, 22, `${run.id} ENI ssh`], [eniIp, 3780, `${run.id} ENI conntrackd port`]] as Array<[string, number, string]>) {
        if (what.startsWith('NAT') && (run.member !== 'a' || forwarded(port))) continue;
        probes.push({ name: `tenant ${t.name} -> ${what} ${ip}:${port} is refused/dropped`, run: tcp(svc, ip, port), yes: 'CONNECTED', no: 'no connection' });
      }
      if (run.member === 'a') {
        probes.push({ name: `tenant ${t.name} -> ping NAT IP ${natIp} gets no answer`, run: () => emu.okAsync(svc, 'ping', ['-c', '1', '-W', '1', natIp], 3000), yes: 'ANSWERED', no: 'no answer' });
      }
    }
    const tenantPod = pods.find((p) => p.tenant === t.name);
    const eniIp = members[0].tenants.find((r) => r.name === t.name)?.eniIp;
    if (eniIp && tenantPod) {
      probes.push({ name: `pod ${tenantPod.name} -> gateway ENI ${eniIp}:22 through its tunnel is dropped`, run: tcp(tenantPod.ns, eniIp, 22), yes: 'CONNECTED', no: 'no connection' });
    }
  }
  const open = await inParallel(probes, PARALLEL, (p) => p.run());
  probes.forEach((p, i) => checks.push({ name: p.name, pass: open[i] === (p.answers ?? false), detail: open[i] ? p.yes : p.no }));
  return checks;
}
