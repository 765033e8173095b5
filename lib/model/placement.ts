import { Checker } from './checker';
import { GatewayShape, MAX_PAIRS } from './gateway-checks';
import { conntrackZone, gatewayMac, tenantTable } from './identity';
import { GatewayInput } from './inputs';
import { TenantModel } from './model-types';
import { TenantDraft } from './tenant-checks';

/**
 * Placement: one pass in declaration order. Pinned tenants take their slot; others the
 * first free one. Retired tenants keep their slot so that nobody else moves. Peering-path
 * tenants take none, unless they pin pair and slot: that keeps the slot a tenant held on the
 * NAT path reserved, so moving it to peering moves nobody else.
 */
export function placeTenants(all: TenantDraft[], paths: ReadonlyArray<'nat' | 'peering'>, gw: GatewayInput, shape: GatewayShape, c: Checker): TenantModel[] {
  const { tenantsPerMember, typeLabel } = shape;
  const occupied = new Map<number, Map<number, string>>(); // pair -> slot -> tenant
  const placed: TenantModel[] = [];
  const maxPairs = gw.pairCount ?? MAX_PAIRS;
  // Pin rule: without gateway.pairCount a pin may name only the pairs the listed tenants
  // (retired ones included) need when packed tightly: 0..ceil(tenants / tenantsPerMember)-1.
  // Anything further (a typo such as pair: 999) needs an explicit pairCount.
  const holds = all.filter((d, k) => paths[k] === 'nat' || d.t.slot !== undefined);
  const nat = new Set(all.filter((_, k) => paths[k] === 'nat'));
  const neededPairs = Math.max(1, Math.ceil(holds.length / tenantsPerMember));
  let firstNotFull = 0; // every pair below it has all its slots held
  for (const d of holds) {
    const p = `tenants[${d.i}]`;
    const t = d.t;
    let pairIndex: number;
    let slot: number;
    if (t.pair !== undefined && (!Number.isInteger(t.pair) || t.pair < 0 || t.pair >= maxPairs)) {
      throw c.err(`${p}.pair`, t.pair, `pairs are numbered 0..${maxPairs - 1}`, 'pin an existing pair index or leave pair unset');
    }
    if (t.pair !== undefined && gw.pairCount === undefined && t.pair >= neededPairs) {
      throw c.err(
        `${p}.pair`,
        t.pair,
        `the ${holds.length} listed tenant(s) need ${neededPairs} pair(s) at ${tenantsPerMember} per member, so without gateway.pairCount a pin may name pairs 0..${neededPairs - 1}`,
        `fix the pin, or set gateway.pairCount to at least ${t.pair + 1} if you mean to spread tenants over more pairs (only pairs holding tenants are built)`,
      );
    }
    if (t.slot !== undefined && (!Number.isInteger(t.slot) || t.slot < 1 || t.slot > tenantsPerMember)) {
      throw c.err(`${p}.slot`, t.slot, `slots on a ${typeLabel} member are 1..${tenantsPerMember}`, 'pin a slot in range or leave slot unset');
    }
    const taken = (pi: number, s: number) => occupied.get(pi)?.get(s);
    if (t.pair !== undefined && t.slot !== undefined) {
      const owner = taken(t.pair, t.slot);
      if (owner) throw c.err(`${p}.slot`, t.slot, `pair ${t.pair} slot ${t.slot} is already held by tenant "${owner}"`, 'pin a free slot or leave slot unset');
      pairIndex = t.pair;
      slot = t.slot;
    } else {
      // The lowest pair, then the lowest slot, that is free (for a pinned pair or slot, only those).
      let found: [number, number] | undefined;
      const [fromPair, toPair] = t.pair !== undefined ? [t.pair, t.pair] : [firstNotFull, maxPairs - 1];
      for (let pi = fromPair; pi <= toPair && !found; pi++) {
        const [fromSlot, toSlot] = t.slot !== undefined ? [t.slot, t.slot] : [1, tenantsPerMember];
        for (let s = fromSlot; s <= toSlot && !found; s++) if (!taken(pi, s)) found = [pi, s];
      }
      // Slots only ever fill, so pairs found full stay full: later searches start after them.
      while (firstNotFull < maxPairs && (occupied.get(firstNotFull)?.size ?? 0) >= tenantsPerMember) firstNotFull++;
      if (!found) {
        const active = holds.length;
        throw c.err(
          t.pair !== undefined ? `${p}.pair` : 'tenants',
          t.pair !== undefined ? t.pair : `${active} tenants`,
          t.pair !== undefined
            ? `pair ${t.pair} is full (${tenantsPerMember} tenants per member on ${typeLabel})`
            : `${maxPairs} pair(s) of ${typeLabel} hold ${maxPairs * tenantsPerMember} tenants (${tenantsPerMember} per member); tenant "${t.name}" does not fit`,
          gw.pairCount !== undefined && gw.pairCount < MAX_PAIRS
            ? 'raise gateway.pairCount, pick an instance type with more network interfaces, or retire tenants'
            : `pick an instance type with more network interfaces, or retire tenants: one CrossVpcNat manages at most ${MAX_PAIRS} pairs, and a second one for the same function VPC or gateway subnet is refused`,
        );
      }
      [pairIndex, slot] = found;
    }
    if (!occupied.has(pairIndex)) occupied.set(pairIndex, new Map());
    occupied.get(pairIndex)!.set(slot, t.name);
    if (!nat.has(d)) continue;
    placed.push({
      name: t.name,
      vpcId: t.vpcId,
      subnetId: t.subnetId as string, // required on the NAT path (checkPathProps)
      cidrs: d.cidrs.map((x) => x.text),
      destinations: d.dests.map((x) => x.text),
      vni: d.vni,
      vniDerived: d.vniDerived,
      zone: conntrackZone(d.vni),
      table: tenantTable(d.vni),
      pairIndex,
      slot,
      gatewayMac: gatewayMac(pairIndex, d.vni),
      natIp: t.natIp,
      availabilityZone: t.availabilityZone,
      retired: t.retired === true,
      internetEgress: t.internetEgress ?? 'none',
      inbound: d.inbound ?? [],
    });
  }
  return placed;
}

/** Checks that need the placement: AZ of the pair, conntrack zones and NAT IPs shared on one pair or subnet. */
export function checkPlacement(placed: TenantModel[], gw: GatewayInput, c: Checker): void {
  placed.forEach((t, i) => {
    const p = `tenants[${i}]`;
    // An AZ token is fine: the NAT ENI attachment's precondition compares the real AZs at plan time.
    const azKnown = t.availabilityZone && gw.availabilityZone && !c.isUnresolved(t.availabilityZone) && !c.isUnresolved(gw.availabilityZone);
    if (azKnown && t.availabilityZone !== gw.availabilityZone) {
      throw c.err(
        `${p}.availabilityZone`,
        t.availabilityZone,
        `tenant "${t.name}" subnet is in ${t.availabilityZone} but pair ${t.pairIndex} runs in ${gw.availabilityZone}; EC2 attaches a multi-VPC ENI only within its own AZ`,
        `give a tenant subnet in ${gw.availabilityZone}`,
      );
    }
    for (const o of placed.slice(0, i)) {
      if (o.pairIndex !== t.pairIndex || o.retired || t.retired) continue;
      if (o.zone === t.zone) {
        throw c.err(`${p}.vni`, t.vni, `its conntrack zone ${t.zone} equals tenant "${o.name}" (VNI ${o.vni}) on the same pair`, `give tenant "${t.name}" another vni explicitly`);
      }
      if (o.subnetId === t.subnetId && !t.natIp) {
        throw c.err(`${p}.natIp`, t.natIp, `tenant "${t.name}" shares subnet ${t.subnetId} with tenant "${o.name}" on pair ${t.pairIndex}, so the default NAT IP would collide`, 'set natIp explicitly for one of them');
      }
    }
    for (const o of placed.slice(0, i)) {
      if (o.retired || t.retired || !t.natIp || o.natIp !== t.natIp || o.subnetId !== t.subnetId) continue;
      throw c.err(`${p}.natIp`, t.natIp, `tenant "${o.name}" already uses NAT IP ${t.natIp} in subnet ${t.subnetId}`, 'give each tenant in a shared subnet its own natIp');
    }
  });
}
