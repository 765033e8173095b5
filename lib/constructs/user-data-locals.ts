import { TerraformLocal, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { PackedUserData } from '../render/user-data';

/**
 * Places a member's user data: the expression on the instance, each shared part once per
 * stack as a Terraform local named by its content (every pair of the stack, and every
 * CrossVpcNat in it, refers to the same local for the same text).
 */
export function userDataExpression(scope: Construct, packed: PackedUserData): string {
  const stack = TerraformStack.of(scope);
  for (const part of packed.shared) {
    const id = `CrossVpcUserData-${part.name}`;
    if (stack.node.tryFindChild(id)) continue;
    new TerraformLocal(stack, id, part.value).overrideLogicalId(part.name);
  }
  return packed.expression;
}
