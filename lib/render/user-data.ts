import { createHash } from 'crypto';
import { gzipSync } from 'zlib';
import { escapeForTerraform } from './terraform-escape';

/**
 * How a member's cloud-config travels in the plan: `user_data_base64 = "${base64gzip("…")}"`,
 * with the parts every member holds alike (the scripts and units) stored once per stack as
 * Terraform locals and interpolated (`${local.crossvpc_user_data_<hash>}`). Without that, a
 * plan of 1,000 tenants (668 members) carried the same ~45 KB of scripts 668 times (34 of
 * its 52 MB). This module is the only place that writes the expression (constructs) and
 * reads it back (emulator, tests); everything else sees the cloud-config text.
 */

/** A part of the cloud-config shared through a Terraform local: its name and its value (a Terraform template). */
export interface SharedUserDataPart {
  readonly name: string;
  readonly value: string;
}

/** A member's user_data_base64 expression and the locals it refers to. */
export interface PackedUserData {
  readonly expression: string;
  readonly shared: readonly SharedUserDataPart[];
}

const SHARED_PREFIX = 'crossvpc_user_data_';
/** Runs shorter than this stay inline: a reference saves nothing worth a local. */
const SHARE_MIN_CHARS = 1024;
/** A live reference to a shared part (an escaped literal `$${local…` never matches). */
const SHARED_REF = new RegExp(`(?<!\\$)\\$\\{local\\.(${SHARED_PREFIX}[0-9a-f]{16})\\}`, 'g');
/** A cdktf token placeholder: text holding one is the member's own (addresses, ids). */
const TOKEN = /\$\{TfToken\[/;
/** Where a cloud-config block starts: a top-level key or a write_files entry. */
const BLOCK_START = /^(?:[A-Za-z_]+:|  - path: )/;

/** Shared parts by their text: every member of a stack holds the same few (hashing and escaping them once). */
const sharedParts = new Map<string, SharedUserDataPart>();
function sharedPart(text: string): SharedUserDataPart {
  let part = sharedParts.get(text);
  if (!part) {
    part = { name: SHARED_PREFIX + createHash('sha256').update(text).digest('hex').slice(0, 16), value: escapeForTerraform(text) };
    sharedParts.set(text, part);
  }
  return part;
}

/**
 * Splits a cloud-config into member-specific text (inline) and runs of whole blocks that
 * hold no token (shared, named by content so that equal runs share one local whatever the
 * member or pair, and a changed run gets a new name: the expression changes with it).
 */
export function packUserData(cloudConfig: string): PackedUserData {
  const blocks: string[] = [];
  for (const line of cloudConfig.split(/(?<=\n)/)) {
    if (blocks.length === 0 || BLOCK_START.test(line)) blocks.push(line);
    else blocks[blocks.length - 1] += line;
  }
  const runs: Array<{ text: string; shareable: boolean }> = [];
  for (const b of blocks) {
    const shareable = !TOKEN.test(b);
    const last = runs[runs.length - 1];
    if (last && last.shareable === shareable) last.text += b;
    else runs.push({ text: b, shareable });
  }
  const shared: SharedUserDataPart[] = [];
  let body = '';
  for (const r of runs) {
    if (r.shareable && r.text.length >= SHARE_MIN_CHARS) {
      const part = sharedPart(r.text);
      shared.push(part);
      body += `\${local.${part.name}}`;
    } else {
      body += quotedTemplateBody(r.text);
    }
  }
  return { expression: `\${base64gzip("${body}")}`, shared };
}

/** EC2's limit on user data: 16 KB in raw form, before base64 (for us, the gzip bytes). */
export const MAX_USER_DATA_BYTES = 16384;

/**
 * The user_data_base64 expression for a cloud-config that may hold cdktf token placeholders.
 * base64gzip() is written out by hand: cdktf's Fn.base64gzip warns (and dumps the whole
 * argument to stderr) whenever the argument holds escaped `$${`. Literal `${` is escaped as
 * everywhere else; inside the call cdktf renders tokens as bare expressions, so each is
 * wrapped in its own interpolation to stay a live reference within the quoted string.
 */
/** `${base64gzip("…")}` of any text holding cdktf tokens: user data and the pair documents (SSM values). */
export function packBase64Gzip(text: string): string {
  return `\${base64gzip("${quotedTemplateBody(text)}")}`;
}

/** Text as the body of a quoted HCL template: literal `${` escaped, each cdktf token its own live interpolation. */
function quotedTemplateBody(text: string): string {
  return hclQuotedBody(escapeForTerraform(text)).replace(/\$\{TfToken\[[^\]]+\]\}/g, (tok) => `\${${tok}}`);
}

/**
 * The template text inside a synthesized user_data_base64 expression, the shared parts put
 * back from the plan's `locals`: the cloud-config as Terraform holds it, still with its
 * interpolations and `$${` escapes (cloud-init gunzips the applied value, so the machine
 * sees this text once Terraform has interpolated it).
 */
export function unpackUserData(expression: string, locals: Readonly<Record<string, unknown>> | undefined): string {
  return unpackBase64Gzip(expression).replace(SHARED_REF, (_, name: string) => {
    const value = locals?.[name];
    if (typeof value !== 'string') throw new Error(`user data refers to local.${name}, which the plan's locals do not hold as a string`);
    return value;
  });
}

/** The inverse of packBase64Gzip: the template text, interpolations and `$${` escapes intact. */
export function unpackBase64Gzip(expression: string): string {
  const m = /^\$\{base64gzip\("([\s\S]*)"\)\}$/.exec(expression);
  if (!m) throw new Error('not a base64gzip("...") expression written by packBase64Gzip');
  return hclUnquote(m[1]);
}

/**
 * Size of a cloud-config as EC2 counts it, for the MAX_USER_DATA_BYTES check: the raw bytes
 * Terraform's base64gzip() produces, before base64 ("User data is limited to 16 KB, in raw form,
 * before it is base64-encoded", EC2 User Guide). Terraform gzips with Go's default level; zlib's
 * default level is the nearest stand-in, and the sizes differ by a few bytes either way.
 */
export function packedUserDataBytes(cloudConfig: string): number {
  return gzipSync(cloudConfig).length;
}

/**
 * packedUserDataBytes for the synth-time check, computed once per shape of packed user data:
 * the expression with cdktf tokens, digit runs and long hex runs (the pair index, VRRP ids,
 * the config parameter's suffix) evened out, shared parts kept by name. Members of one shape
 * differ only in those values, which move the gzip size by a few bytes (at most 12 over the
 * 668 members of 1,000 tenants); the estimate already carries larger differences: a placeholder stands for
 * an address or id known only at apply, zlib for Go's gzip. Gzipping each member's ~53 KB was
 * the largest part of rendering user data (668 members at 1,000 tenants); a stack has a handful
 * of shapes (member a or b, digit counts).
 */
export function estimatedUserDataBytes(cloudConfig: string, packed: PackedUserData): number {
  const shape = packed.expression.replace(VARYING_VALUE, (m) => (m.startsWith('${local.') ? m : m.startsWith('${') ? '${}' : '0'.repeat(m.length)));
  let bytes = bytesByShape.get(shape);
  if (bytes === undefined) bytesByShape.set(shape, (bytes = packedUserDataBytes(cloudConfig)));
  return bytes;
}

/** A shared-part reference (kept: it names content), a cdktf token, a long hex run, a digit run. */
const VARYING_VALUE = new RegExp(`\\$\\{local\\.${SHARED_PREFIX}[0-9a-f]{16}\\}|\\$\\{TfToken\\[[^\\]]*\\]\\}|[0-9a-f]{8,}|[0-9]+`, 'g');
const bytesByShape = new Map<string, number>();

/** Body of an HCL quoted string: backslashes, quotes and control characters escaped; interpolations stay live. */
function hclQuotedBody(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

/** The inverse of hclQuotedBody. */
function hclUnquote(body: string): string {
  return body.replace(/\\(["\\nrt])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c]!);
}
