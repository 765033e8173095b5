import { gzipSync } from 'zlib';
import { escapeForTerraform } from './terraform-escape';

/**
 * How a member's cloud-config travels in the plan: `user_data_base64 = "${base64gzip("…")}"`.
 * This module is the only place that writes the expression (constructs) and reads it back
 * (emulator, tests); everything else sees the cloud-config text.
 */

/** EC2's limit on user data: 16 KB in raw form, before base64 (for us, the gzip bytes). */
export const MAX_USER_DATA_BYTES = 16384;

/**
 * The user_data_base64 expression for a cloud-config that may hold cdktf token placeholders.
 * base64gzip() is written out by hand: cdktf's Fn.base64gzip warns (and dumps the whole
 * argument to stderr) whenever the argument holds escaped `$${`. Literal `${` is escaped as
 * everywhere else; inside the call cdktf renders tokens as bare expressions, so each is
 * wrapped in its own interpolation to stay a live reference within the quoted string.
 */
export function packUserData(cloudConfig: string): string {
  return packBase64Gzip(cloudConfig);
}

/** `${base64gzip("…")}` of any text holding cdktf tokens: user data and the pair documents (SSM values). */
export function packBase64Gzip(text: string): string {
  const body = hclQuotedBody(escapeForTerraform(text)).replace(/\$\{TfToken\[[^\]]+\]\}/g, (tok) => `\${${tok}}`);
  return `\${base64gzip("${body}")}`;
}

/**
 * The template text inside a synthesized user_data_base64 expression: the cloud-config as
 * Terraform holds it, still with its interpolations and `$${` escapes (cloud-init gunzips
 * the applied value, so the machine sees this text once Terraform has interpolated it).
 */
export function unpackUserData(expression: string): string {
  return unpackBase64Gzip(expression);
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

/** Body of an HCL quoted string: backslashes, quotes and control characters escaped; interpolations stay live. */
function hclQuotedBody(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

/** The inverse of hclQuotedBody. */
function hclUnquote(body: string): string {
  return body.replace(/\\(["\\nrt])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c]!);
}
