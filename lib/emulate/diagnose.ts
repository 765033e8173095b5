/**
 * A snapshot of the gateway pairs for a failed check: who holds each floating IP in the
 * emulated cloud and on the members' devices, each member's VRRP state, its drop counters and
 * the tail of its notify and converge logs. Read-only; printed after a failure so that a flaky
 * run explains itself from the log alone.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import type { Emulation, GatewayMember } from './emulator';
import { GATEWAY_COUNTERS, GATEWAY_NFT_TABLE, RUN_DIR, tenantDev } from '../contract';

const TAIL_LINES = 12;

function tail(file: string, n = TAIL_LINES): string[] {
  if (!existsSync(file)) return ['(no file)'];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-n);
}

/** Whose ENI (`owners`: ENI id -> member) the cloud last moved `ip` to, by whose call, and when. */
function cloudOwner(emu: Emulation, ip: string, owners: ReadonlyMap<string, string>): string {
  const moves = emu.cloudCalls().filter((c) => c.ip === ip && c.result === 'moved' && owners.has(c.eni ?? ''));
  const last = moves[moves.length - 1];
  return last ? `${owners.get(last.eni!)} (${last.eni}, moved by ${last.member ?? '?'} at ${new Date(last.at).toISOString().slice(11, 23)}, ${moves.length} move(s))` : 'never moved';
}

function memberLines(emu: Emulation, m: GatewayMember): string[] {
  const run = join(m.root, RUN_DIR.replace(/^\//, ''));
  const counters = GATEWAY_COUNTERS.map((c) => `${c} ${/packets (\d+)/.exec(emu.exec(m.ns, 'nft', ['list', 'counter', 'inet', GATEWAY_NFT_TABLE, c], { allowFail: true }))?.[1] ?? '?'}`);
  const out = [`member ${m.id}: VRRP ${emu.vrrpState(m) || 'unknown'}; drops: ${counters.join(', ')}`];
  for (const t of m.tenants) {
    const dev = tenantDev(t.vni);
    const has = emu.exec(m.ns, 'ip', ['-o', '-4', 'addr', 'show', 'dev', dev], { allowFail: true }).includes(` ${t.natIp}/`);
    out.push(`  tenant ${t.name}: NAT IP ${t.natIp} ${has ? 'on' : 'not on'} ${dev}`);
  }
  for (const log of ['notify.log', 'converge.log']) out.push(`  ${log}:`, ...tail(join(run, log)).map((l) => `    ${l}`));
  return out;
}

export function diagnosePairs(emu: Emulation): string {
  const lines: string[] = [`--- gateway pairs at ${new Date().toISOString().slice(11, 23)} ---`];
  try {
    const members = emu.members();
    for (const m of members) lines.push(...memberLines(emu, m));
    // NAT IPs may repeat across tenants (each in its own VPC): the cloud log tells them apart by ENI.
    for (const m of members.filter((x) => x.member === members[0].member)) {
      const pair = members.filter((x) => x.pair === m.pair);
      lines.push(`cloud: pair ${m.pair} HaVip ${m.env.HAVIP} -> ${cloudOwner(emu, m.env.HAVIP, new Map(pair.map((x) => [x.env.SELF_ENI, x.id])))}`);
      for (const t of m.tenants) {
        const enis = new Map(pair.flatMap((x) => x.tenants.filter((r) => r.name === t.name).map((r) => [r.eniId, x.id] as const)));
        // What the tenant VPC's router does with it: the neighbour entry the cloud wrote.
        const mac = /lladdr ([0-9a-f:]+)/.exec(emu.exec(emu.tenantFabric(t.name), 'ip', ['neigh', 'show', t.natIp, 'dev', 'br0'], { allowFail: true }))?.[1];
        const holder = pair.find((x) => x.tenants.some((r) => r.name === t.name && r.eniMac === mac));
        lines.push(`cloud: tenant ${t.name} NAT IP ${t.natIp} -> ${cloudOwner(emu, t.natIp, enis)}; its VPC router delivers it to ${holder?.id ?? mac ?? 'nobody'}`);
      }
    }
    const refused = emu.cloudCalls().filter((c) => c.result !== 'moved' && c.result !== 'served');
    if (refused.length) lines.push(`cloud: ${refused.length} call(s) not honoured; last: ${JSON.stringify(refused[refused.length - 1])}`);
  } catch (e) {
    lines.push(`(diagnosis failed: ${(e as Error).message})`);
  }
  return lines.join('\n');
}
