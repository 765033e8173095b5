/**
 * Each pair's configuration document, read from the plan as Terraform would put it into SSM:
 * the aws_ssm_parameter's insecure_value interpolated with the stand-ins, checked by the
 * contract's parser as a member checks it, and encoded as SSM stores it (base64 of gzip).
 */
import { gzipSync } from 'zlib';
import { evaluate, Plan, PlanParameter } from './plan';
import { parsePairDocument, PairMemberName, SSM_ADVANCED_VALUE_MAX_BYTES, TenantTableRow } from '../contract';

/** SSM's standard tier holds 4 KB per value. */
export const SSM_STANDARD_VALUE_MAX_BYTES = 4096;

export interface PairDocumentValue {
  readonly parameter: PlanParameter;
  /** The JSON document after interpolation: what a member decodes. */
  readonly text: string;
  /** What SSM stores and serves: base64(gzip(text)). */
  readonly value: string;
  /** Each member's tenant rows, parsed by the contract. */
  readonly rows: Readonly<Record<PairMemberName, TenantTableRow[]>>;
}

/** A document as SSM stores it and the members decode it: base64 of gzip. */
export function ssmDocumentValue(text: string): string {
  return gzipSync(Buffer.from(text, 'utf8')).toString('base64');
}

/** Evaluate, check and encode every pair's document; errors name the parameter and what is wrong. */
export function readPairDocuments(plan: Plan, resolve: (ref: string) => string): Map<number, PairDocumentValue> {
  const out = new Map<number, PairDocumentValue>();
  for (const parameter of plan.parameters) {
    const where = `aws_ssm_parameter.${parameter.logicalId} (pair ${parameter.pair})`;
    if (parameter.type !== 'String') throw new Error(`${where}: type ${JSON.stringify(parameter.type)}; the members read a String parameter`);
    let text: string;
    let rows: Record<PairMemberName, TenantTableRow[]>;
    try {
      text = evaluate(parameter.template, resolve);
      rows = parsePairDocument(text, parameter.pair).rows;
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    const value = ssmDocumentValue(text);
    const max = parameter.tier === 'Advanced' ? SSM_ADVANCED_VALUE_MAX_BYTES : SSM_STANDARD_VALUE_MAX_BYTES;
    if (Buffer.byteLength(value) > max) {
      throw new Error(`${where}: the stored value is ${Buffer.byteLength(value)} bytes, over the ${max}-byte limit of SSM's ${parameter.tier} tier; SSM would refuse the put`);
    }
    out.set(parameter.pair, { parameter, text, value, rows });
  }
  return out;
}
