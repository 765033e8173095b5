import { createHash } from 'crypto';
import { gzipSync } from 'zlib';

const TOKEN = /\$\{TfToken\[[^\]]+\]\}/g;

/**
 * The size of a pair document as SSM will hold it (gzip, then base64), estimated at synth
 * while deploy-time values are still tokens. Each token becomes a distinct incompressible
 * 21-character string (an ENI id's length, longer than any IP, MAC or CIDR it stands for),
 * so the estimate errs on the large side. Terraform's base64gzip uses Go's default level, 6.
 */
export function packedDocumentBytes(text: string): number {
  const worstCase = text.replace(TOKEN, (tok) => createHash('sha256').update(tok).digest('hex').slice(0, 21));
  return Math.ceil(gzipSync(worstCase, { level: 6 }).length / 3) * 4;
}
