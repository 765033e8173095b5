import * as ipaddr from 'ipaddr.js';
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
}

function toUint(addr: ipaddr.IPv4): number {
  const b = addr.toByteArray();
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

export function uintToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function rejectToken(value: unknown, where: Where, what: string): void {
  if (isUnresolvedToken(value)) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: `${what} is an unresolved Terraform token, but the model needs its literal value at synth time to check overlaps, build the nftables sets and render the gateway configuration`,
      fix: 'pass the literal value (for example "172.16.0.0/16"), e.g. from your own configuration, not from another resource\'s attribute',
    });
  }
}

export function parseCidr(value: unknown, where: Where): Cidr {
  rejectToken(value, where, 'the CIDR');
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidCIDR(value)) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: 'not an IPv4 CIDR block',
      fix: 'use dotted-quad notation with a prefix length, e.g. "172.16.0.0/16"',
    });
  }
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(value);
  const raw = toUint(addr);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (raw & mask) >>> 0;
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
  rejectToken(value, where, 'the IP address');
  if (typeof value !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw new CrossVpcError({
      ...where,
      value,
      problem: 'not an IPv4 address',
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

export function cidrContainsIp(c: Cidr, ip: string): boolean {
  const n = toUint(ipaddr.IPv4.parse(ip));
  return n >= c.network && n < c.network + cidrSize(c);
}

/** Host `index` of a CIDR; negative counts from the top, like Terraform's cidrhost(). */
export function cidrHost(c: Cidr, index: number): string {
  const size = cidrSize(c);
  const offset = index < 0 ? size + index : index;
  if (offset < 0 || offset >= size) throw new Error(`host ${index} is outside ${c.text}`);
  return uintToIp(c.network + offset);
}
