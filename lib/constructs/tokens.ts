import { Token } from 'cdktf';
import { isUnresolvedToken } from '../model/errors';

/**
 * The token test the constructs inject into the (cdktf-free) model: cdktf's own
 * Token.isUnresolved, plus the list-element encoding (`#{TfToken[...]}`, what
 * `variable.listValue[0]` gives) that Token.isUnresolved does not flag.
 */
export function isUnresolvedValue(value: unknown): boolean {
  return Token.isUnresolved(value) || isUnresolvedToken(value);
}
