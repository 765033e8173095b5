import { TerraformProvider } from 'cdktf';

/** What every AWS construct of this library takes besides its own props. */
export interface AwsConstructProps {
  /**
   * Added to the taggable AWS resources (the constructs add their own `crossvpc:pair`,
   * `crossvpc:member` and `crossvpc:tenant` tags). As in aws-cdk, the constructs' own `Name`
   * tag wins over a `Name` here on the resources they name: instances (`crossvpc-pair<N>-<a|b>`),
   * primary ENIs (`…-<a|b>-primary`), the pair's security group (`crossvpc-pair<N>-sg`), NAT
   * ENIs (`crossvpc-pair<N>-<tenant>-<a|b>`) and their security groups (`…-sg`). Names are
   * unique within one CrossVpcNat, not across several in one account; the `crossvpc:*` tags and
   * the VPC tell those apart.
   * @default - no extra tags
   */
  readonly tags?: Record<string, string>;
  /**
   * AWS provider of every resource; the constructs never create providers.
   * @default - the stack's default AWS provider
   */
  readonly provider?: TerraformProvider;
}
