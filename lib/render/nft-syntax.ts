/** nftables syntax shared by the gateway ruleset's parts (gateway-ruleset.ts, gateway-eip.ts, gateway-ingress.ts). */

/** A quoted string (interface names). */
export const q = (s: string): string => `"${s}"`;

/** A set's or map's ` elements = { … }` clause; nothing for an empty one (nft refuses `{ }`). */
export const list = (items: string[]): string => (items.length ? ` elements = { ${items.join(', ')} }` : '');

/** Packets that came in neither by a tenant's tunnel nor by its ENI: the underlay (function side). */
export const NOT_FROM_TENANT = 'iifname != @tunnel_ifs iifname != @tenant_ifs';
