import { intToIpv4, prefixMask, requireIpv4 } from '../contract/ipv4';
import { CrossVpcError, isUnresolvedToken } from './errors';

/** A parsed IPv4 CIDR in canonical form (host bits must be zero). */
export interface Cidr {
  readonly text: string;
  readonly network: number; // unsigned 32-bit
  readonly prefix: number;
}

export interface Where {
  readonly path: string;
  readonly prop: string;
  /**
   * Tells an unresolved Terraform token from a literal. The model has no cdktf import:
   * constructs pass cdktf's Token.isUnresolved here (see buildCrossVpcModel).
   * @default isUnresolvedToken (recognises cdktf's string, list and number encodings)
   */
  readonly isUnresolved?: (value: unknown) => boolean;
}

/**
 * The grammar is ours, not ipaddr.js's: ipaddr.js (like inet_aton) also accepts octal
 * ("010.0.0.0"), hex ("0xac.16.0.0"), short ("172.16.0") and bare-integer
 * ("3232235520") forms, which we would then silently rewrite. We accept only four
 * decimal octets 0..255 without leading zeros ("0" itself is fine), and a decimal prefix
 * 0..32 without leading zeros or signs. Arithmetic on text that passed this check is the
 * contract's (lib/contract/ipv4), shared with the agent and the emulator.
 */
const OCTET = '(?:0|[1-9][0-9]{0,2})';
const STRICT_IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const STRICT_PREFIX = /^(?:0|[1-9][0-9]?)$/;

function isStrictIpv4(text: string): boolean {
  return STRICT_IPV4.test(text) && text.split('.').every((o) => Number(o) <= 255);
}

/** The address as an unsigned 32-bit number; only for text that parseIp accepted. */
export const ipToUint = requireIpv4;

export const uintToIp = intToIpv4;

/**
 * A whole list given as a token (cdktf: `variable.listValue`, an array holding one
 * `#{TfToken[...]}` element). Lists of literals with token elements are not list tokens:
 * their elements are checked one by one, so the error names the element.
 */
export function isListToken(value: unknown): boolean {
  return Array.isArray(value) && value.some((v) => typeof v === 'string' && /#\{TfToken\[/.test(v));
}

/** Refuses an unresolved token for a prop that needs a literal at synth, saying why. */
export function rejectToken(value: unknown, where: Where, what: string, why?: string, example?: string): void {
  const unresolved = where.isUnresolved ?? isUnresolvedToken;
  if (isListToken(value) || (!Array.isArray(value) && unresolved(value))) {
    throw new CrossVpcError({
      path: where.path,
      prop: where.prop,
      value,
      problem: `${what} is an unresolved Terraform token, but the model needs its literal value at synth time ${why ?? 'to check overlaps, build the nftables sets and render the gateway configuration'}`,
      fix: `pass the literal value${example ? ` (for example ${example})` : ''}, e.g. from your own configuration, not from a variable or another resource's attribute`,
    });
  }
}

export function parseCidr(value: unknown, where: Where): Cidr {
  rejectToken(value, where, 'the CIDR', undefined, '"172.16.0.0/16"');
  const parts = typeof value === 'string' ? value.split('/') : [];
  if (parts.length !== 2 || !isStrictIpv4(parts[0]) || !STRICT_PREFIX.test(parts[1]) || Number(parts[1]) > 32) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: 'not an IPv4 CIDR block in strict notation (four decimal octets 0-255 without leading zeros, then "/" and a decimal prefix length 0-32; no octal, hex, short or integer forms)',
      fix: 'use dotted-quad notation with a prefix length, e.g. "172.16.0.0/16"',
    });
  }
  const raw = ipToUint(parts[0]);
  const prefix = Number(parts[1]);
  const network = (raw & prefixMask(prefix)) >>> 0;
  if (network !== raw) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: 'host bits are set',
      fix: `use the network address: "${uintToIp(network)}/${prefix}"`,
    });
  }
  return { text: `${uintToIp(network)}/${prefix}`, network, prefix };
}

export function parseIp(value: unknown, where: Where): string {
  rejectToken(value, where, 'the IP address', undefined, '"172.16.0.3"');
  if (typeof value !== 'string' || !isStrictIpv4(value)) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: 'not an IPv4 address in strict notation (four decimal octets 0-255 without leading zeros; no octal, hex, short or integer forms)',
      fix: 'use dotted-quad notation, e.g. "172.16.0.3"',
    });
  }
  return value;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const aEnd = a.network + cidrSize(a) - 1;
  const bEnd = b.network + cidrSize(b) - 1;
  return a.network <= bEnd && b.network <= aEnd;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.network <= inner.network && inner.network + cidrSize(inner) <= outer.network + cidrSize(outer);
}

export function cidrContainsIp(c: Cidr, ip: string): boolean {
  const n = ipToUint(ip);
  return n >= c.network && n < c.network + cidrSize(c);
}

/** Host `index` of a CIDR; negative counts from the top, like Terraform's cidrhost(). */
export function cidrHost(c: Cidr, index: number): string {
  const size = cidrSize(c);
  const offset = index < 0 ? size + index : index;
  if (offset < 0 || offset >= size) throw new Error(`host ${index} is outside ${c.text}`);
  return uintToIp(c.network + offset);
}
