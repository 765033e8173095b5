/**
 * The per-pair configuration document: everything tenant-specific a gateway member runs,
 * held in one SSM parameter per pair that Terraform updates in place. Members fetch it
 * (crossvpc-reconcile), validate it and converge; their user data only names it.
 *
 * Stored value: base64(gzip(JSON)) — Terraform writes it with base64gzip(), members decode
 * it with `base64 -d | gunzip`, the emulator's SSM serves the same bytes. The JSON:
 *
 *   { "format": 1, "pair": <index>,
 *     "members": { "a": { "tenants": "<tenants.tsv>", "ruleset": "<ruleset.nft>" }, "b": { … } } }
 *
 * The document carries no version of its own: SSM's Parameter.Version (incremented on every
 * put) is the version a member reports, with the sha256 of the value it decoded.
 */
import { gunzipSync } from 'zlib';
import { parseTenantTable, TenantTableRow } from './tenant-table';

export const PAIR_DOCUMENT_FORMAT = 1;
export const PAIR_MEMBERS = ['a', 'b'] as const;
export type PairMemberName = (typeof PAIR_MEMBERS)[number];

/** SSM Parameter Store's advanced tier holds at most 8 KB per value (the standard tier 4 KB). */
export const SSM_ADVANCED_VALUE_MAX_BYTES = 8192;

/** Where a member keeps the files of the last document it applied: they survive a reboot. */
export const STATE_DIR = '/var/lib/crossvpc';

/** One member's files, by the name it writes them under in STATE_DIR. */
export interface MemberDocument {
  /** tenants.tsv: the tenant table (see tenant-table.ts). */
  readonly tenants: string;
  /** ruleset.nft: the whole nftables table, loaded in one transaction. */
  readonly ruleset: string;
}

export interface PairDocument {
  readonly format: typeof PAIR_DOCUMENT_FORMAT;
  readonly pair: number;
  readonly members: Readonly<Record<PairMemberName, MemberDocument>>;
}

/**
 * The peer's tenant table, written beside this member's own: a member that steps down from
 * MASTER moves the NAT IPs onto the peer's ENIs (ENI ids are per member).
 */
export const PEER_TENANTS_FILE = 'peer-tenants.tsv';

/** Document field -> the file name a member writes it to in STATE_DIR. */
export const MEMBER_DOCUMENT_FILES = { tenants: 'tenants.tsv', ruleset: 'ruleset.nft' } as const satisfies Record<keyof MemberDocument, string>;

/** The JSON text, keys in a fixed order, so the same configuration always gives the same bytes. */
export function renderPairDocument(doc: PairDocument): string {
  const member = (m: MemberDocument) => ({ tenants: m.tenants, ruleset: m.ruleset });
  return JSON.stringify({ format: doc.format, pair: doc.pair, members: { a: member(doc.members.a), b: member(doc.members.b) } });
}

/** Parse and check a document as a member does before it converges; throws naming what is wrong. */
export function parsePairDocument(text: string, expectPair?: number): PairDocument & { readonly rows: Readonly<Record<PairMemberName, TenantTableRow[]>> } {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`pair document: not JSON (${(e as Error).message})`);
  }
  if (doc?.format !== PAIR_DOCUMENT_FORMAT) throw new Error(`pair document: format ${JSON.stringify(doc?.format)}, expected ${PAIR_DOCUMENT_FORMAT}`);
  if (!Number.isInteger(doc.pair) || doc.pair < 0) throw new Error(`pair document: pair ${JSON.stringify(doc.pair)} is not a pair index`);
  if (expectPair !== undefined && doc.pair !== expectPair) throw new Error(`pair document: it is pair ${doc.pair}'s, expected pair ${expectPair}'s`);
  const rows = {} as Record<PairMemberName, TenantTableRow[]>;
  for (const m of PAIR_MEMBERS) {
    const md = doc.members?.[m];
    for (const f of Object.keys(MEMBER_DOCUMENT_FILES)) {
      if (typeof md?.[f] !== 'string' || md[f] === '') throw new Error(`pair document: members.${m}.${f} is missing or empty`);
    }
    rows[m] = parseTenantTable(md.tenants);
  }
  return { format: PAIR_DOCUMENT_FORMAT, pair: doc.pair, members: { a: doc.members.a, b: doc.members.b }, rows };
}

/** The stored parameter value back to the JSON text (what a member's `base64 -d | gunzip` does). */
export function decodePairDocumentValue(value: string): string {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new Error('pair document value is not base64');
  return gunzipSync(Buffer.from(value, 'base64')).toString('utf8');
}
