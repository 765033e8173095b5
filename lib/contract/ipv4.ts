/**
 * IPv4 arithmetic shared by the model, the renderers, the node agent and the emulator.
 * No imports: the agent image ships this file compiled, without node_modules.
 * The bash twins (ip2int, in_cidrs in crossvpc-lib.sh) are checked against these on many inputs.
 */

/**
 * A dotted quad of four decimal octets 0..255, without leading zeros (which inet_aton would
 * read as octal), as an unsigned 32-bit number; undefined if it is not one.
 */
export function ipv4ToInt(ip: string): number | undefined {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(ip);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
}

/** ipv4ToInt for text that must be an address: throws, naming it, if it is not. */
export function requireIpv4(ip: string): number {
  const n = ipv4ToInt(ip);
  if (n === undefined) throw new Error(`not an IPv4 address: ${ip}`);
  return n;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The netmask of a prefix length as an unsigned 32-bit number (/0 is 0, not 0xffffffff << 32). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Splits `a.b.c.d/len` into its network number (host bits kept) and prefix; throws if it is not IPv4 CIDR text. */
export function splitCidr(cidr: string): { addr: number; prefix: number } {
  const [ip, lenText = '32', extra] = cidr.split('/');
  const addr = ipv4ToInt(ip);
  const prefix = Number(lenText);
  if (addr === undefined || extra !== undefined || !/^(0|[1-9]\d?)$/.test(lenText) || prefix > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  return { addr, prefix };
}

/** Canonical `a.b.c.d/len` (host bits cleared) as the kernel prints it, so route diffs compare equal. */
export function canonicalCidr(cidr: string): string {
  const { addr, prefix } = splitCidr(cidr);
  return `${intToIpv4((addr & prefixMask(prefix)) >>> 0)}/${prefix}`;
}

/** True when `ip` lies inside `cidr` (host bits of the CIDR are ignored, as the kernel does). */
export function cidrContains(cidr: string, ip: string): boolean {
  const { addr, prefix } = splitCidr(cidr);
  const n = ipv4ToInt(ip);
  const mask = prefixMask(prefix);
  return n !== undefined && ((n & mask) >>> 0) === ((addr & mask) >>> 0);
}

/** True when two IPv4 CIDRs (or a CIDR and a bare address) share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = splitCidr(a);
  const y = splitCidr(b);
  const mask = prefixMask(Math.min(x.prefix, y.prefix));
  return ((x.addr & mask) >>> 0) === ((y.addr & mask) >>> 0);
}

/** Host `index` of a CIDR; negative counts from the top, like Terraform's cidrhost(). */
export function cidrHost(cidr: string, index: number): string {
  const { addr, prefix } = splitCidr(cidr);
  const size = 2 ** (32 - prefix);
  const offset = index < 0 ? size + index : index;
  if (offset < 0 || offset >= size) throw new Error(`cidrhost(${cidr}, ${index}) is outside the block`);
  return intToIpv4(((addr & prefixMask(prefix)) >>> 0) + offset);
}
