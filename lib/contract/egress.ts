/**
 * Internet egress (seed 000's default NAT policy): which destinations count as the internet,
 * for the gateway ruleset and the node agent alike. One list, so the two never disagree about
 * what leaves through a tenant.
 */

/**
 * Never the internet: "this network", RFC 1918, shared address space (carrier NAT, EKS custom
 * networking), loopback, link-local (IMDS), IETF protocol assignments, benchmarking,
 * multicast and reserved. The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24) are left out on purpose: they are unroutable on the internet anyway, and the
 * emulation's "internet" lives there.
 */
export const NON_PUBLIC_RANGES: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
];

/**
 * How a tenant's pods reach the internet (the tenant table's `egress` column): `eip` SNATs to
 * the row's `egress_ip`, which the active member holds and associates with `eip_allocation_id`.
 */
export const EGRESS_MODES = ['none', 'tenant_vpc', 'eip'] as const;
export type EgressMode = (typeof EGRESS_MODES)[number];

/** The `egress_ip` and `eip_allocation_id` cells of a row whose egress is not `eip` (no cell may be empty). */
export const NO_EIP = '-';
