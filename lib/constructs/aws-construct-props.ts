import { TerraformProvider } from 'cdktf';

/** What every AWS construct of this library takes besides its own props. */
export interface AwsConstructProps {
  /**
   * Added to the taggable AWS resources (the constructs add their own `crossvpc:pair`,
   * `crossvpc:member` and `crossvpc:tenant` tags).
   * @default - no extra tags
   */
  readonly tags?: Record<string, string>;
  /**
   * AWS provider of every resource; the constructs never create providers.
   * @default - the stack's default AWS provider
   */
  readonly provider?: TerraformProvider;
}
