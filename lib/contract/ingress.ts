/**
 * Ingress (seed 001): DNAT port forwards on a tenant's NAT IP into the function VPC. What the
 * gateway ruleset, crossvpc-apply.sh, the constructs and the emulator must agree on.
 *
 * Reply path: a forwarded flow is SNATed to the pair's HaVip with a source port from the
 * tenant's own range (by ENI slot), so replies come back to whichever member holds the HaVip,
 * and the port alone tells which tenant (conntrack zone) and which routing table they belong to.
 */
/** First SNAT port of slot 1's range is INBOUND_SNAT_PORT_BASE + INBOUND_PORTS_PER_SLOT (clear of VXLAN 4789 and conntrackd 3780). */
export const INBOUND_SNAT_PORT_BASE = 20000;
/** SNAT ports per tenant: its concurrent forwarded flows per target (address, port and protocol). */
export const INBOUND_PORTS_PER_SLOT = 1000;
/** The highest slot whose range still ends at or below 65535. */
export const INBOUND_MAX_SLOT = Math.floor((65535 - INBOUND_SNAT_PORT_BASE + 1) / INBOUND_PORTS_PER_SLOT) - 1;

/** The SNAT source ports on the HaVip of the tenant in `slot` (1-based ENI slot). */
export function inboundSnatPorts(slot: number): { readonly from: number; readonly to: number } {
  if (!Number.isInteger(slot) || slot < 1 || slot > INBOUND_MAX_SLOT) throw new Error(`inbound SNAT ports: slot ${slot} is outside 1..${INBOUND_MAX_SLOT}`);
  const from = INBOUND_SNAT_PORT_BASE + slot * INBOUND_PORTS_PER_SLOT;
  return { from, to: from + INBOUND_PORTS_PER_SLOT - 1 };
}

/**
 * Marks replies of forwarded flows: fwmark and routing table `tenant table | INBOUND_MARK_BIT`
 * (a default route out of the tenant's ENI), beside the tenant's own table, which keeps its
 * `unreachable default` for destinations pods may not reach.
 */
/** Outside MARK_MIN..MARK_MAX (names.ts), so an inbound table never equals a tenant table. */
export const INBOUND_MARK_BIT = 0x2000000;
export const inboundTable = (tenantTable: number): number => tenantTable | INBOUND_MARK_BIT;

/** One forward: packets to the NAT IP on (protocol, port) go to targetIp:targetPort. */
export interface InboundForward {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly targetIp: string;
  readonly targetPort: number;
}

/** The tenant table's `inbound` cell of no forwards. */
export const NO_INBOUND = 'none';
const FORWARD_CELL = /^(tcp|udp)\/([1-9][0-9]{0,4})=((?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])):([1-9][0-9]{0,4})$/;

/** The tenant table's `inbound` cell: `none`, or `tcp/443=10.0.5.10:8443,udp/53=…` in declaration order. */
export function formatInboundCell(forwards: readonly InboundForward[]): string {
  return forwards.length ? forwards.map((f) => `${f.protocol}/${f.port}=${f.targetIp}:${f.targetPort}`).join(',') : NO_INBOUND;
}

/** Reads an `inbound` cell back; throws naming the bad entry. */
export function parseInboundCell(cell: string): InboundForward[] {
  if (cell === NO_INBOUND) return [];
  return cell.split(',').map((entry) => {
    const m = FORWARD_CELL.exec(entry);
    const port = Number(m?.[2]);
    const targetPort = Number(m?.[4]);
    if (!m || port > 65535 || targetPort > 65535) throw new Error(`inbound forward ${JSON.stringify(entry)} is not <tcp|udp>/<port>=<a.b.c.d>:<port>`);
    return { protocol: m[1] as 'tcp' | 'udp', port, targetIp: m[3], targetPort };
  });
}
