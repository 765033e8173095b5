import { Cidr, cidrsOverlap, parseCidr, rejectToken, Where } from './cidr';
import { CrossVpcError } from './errors';

/**
 * The helpers every step of buildCrossVpcModel validates with. They are bound to the
 * construct path and the token test once, so each step's errors name the same path and
 * treat tokens the same way.
 */
export interface Checker {
  readonly isUnresolved: (value: unknown) => boolean;
  err(prop: string, value: unknown, problem: string, fix: string): CrossVpcError;
  at(prop: string): Where;
  /** Props that must be literals: the error says it is a token and why a literal is needed. */
  literal(value: unknown, prop: string, what: string, why: string, example: string): void;
  cidrList(list: unknown, prop: string): Cidr[];
  /** Refuses two entries of one list that overlap (a duplicate is the simplest case). */
  noOverlapWithin(cidrs: Cidr[], prop: string, raw: readonly unknown[], why: string): void;
}

export function checkerAt(path: string, isUnresolved: (value: unknown) => boolean): Checker {
  const err = (prop: string, value: unknown, problem: string, fix: string) =>
    new CrossVpcError({ path, prop, value, problem, fix });
  const at = (prop: string): Where => ({ path, prop, isUnresolved });
  const literal = (value: unknown, prop: string, what: string, why: string, example: string) => rejectToken(value, at(prop), what, why, example);
  const cidrList = (list: unknown, prop: string): Cidr[] => {
    literal(list, prop, 'the CIDR list', 'to check overlaps and build the nftables sets', '["172.16.0.0/16"]');
    return ((list ?? []) as unknown[]).map((c, i) => parseCidr(c, at(`${prop}[${i}]`)));
  };
  const noOverlapWithin = (cidrs: Cidr[], prop: string, raw: readonly unknown[], why: string) => {
    cidrs.forEach((c, j) => {
      const k = cidrs.findIndex((o, i) => i < j && cidrsOverlap(o, c));
      if (k >= 0) {
        throw err(`${prop}[${j}]`, raw[j], `${c.text} overlaps ${prop}[${k}] ${cidrs[k].text}; ${why}`, 'list every range once: drop the narrower one (the wider already covers it) or split them so they do not overlap');
      }
    });
  };
  return { isUnresolved, err, at, literal, cidrList, noOverlapWithin };
}
