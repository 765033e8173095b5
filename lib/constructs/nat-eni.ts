import { Construct } from 'constructs';
import { NetworkInterface } from '@cdktf/provider-aws/lib/network-interface';
import { NetworkInterfaceAttachmentA as NetworkInterfaceAttachment } from '@cdktf/provider-aws/lib/network-interface-attachment';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { AwsConstructProps } from './aws-construct-props';

export interface NatEniProps extends AwsConstructProps {
  /** Tenant this ENI serves; used in names and tags. */
  readonly tenantName: string;
  /** Tenant VPC of the ENI (for its security group). */
  readonly vpcId: string;
  /** Tenant subnet; must be in the same AZ as the instance (multi-VPC ENI attachment). */
  readonly subnetId: string;
  /** Proxy instance the ENI attaches to (same AZ and account). */
  readonly instanceId: string;
  /** Device index on the instance; 0 is the primary ENI. */
  readonly deviceIndex: number;
  /**
   * Name tag of the ENI; the security group it creates is named `<name>-sg`. It wins over a
   * `Name` in `tags`.
   * @default - `crossvpc-<tenantName>` (CrossVpcNat passes `crossvpc-pair<N>-<tenant>-<member>`)
   */
  readonly name?: string;
  /** Tenant destinations the ENI may send to. */
  readonly egressCidrs: string[];
  /**
   * Port forwards on the NAT IP (seed 001): the group admits each (protocol, port) from
   * `inboundCidrs`. Ignored with `securityGroupIds` (admit them in your groups).
   * @default - none: no ingress rules
   */
  readonly inboundPorts?: Array<{ readonly protocol: 'tcp' | 'udp'; readonly port: number }>;
  /**
   * Where the forwarded ports are admitted from: the tenant's clients.
   * @default - none
   */
  readonly inboundCidrs?: string[];
  /**
   * Security groups for the ENI.
   * @default - a new group admitting only `inboundPorts` from `inboundCidrs` (replies to our own flows still pass; nothing else unsolicited does) and egress to `egressCidrs` only
   */
  readonly securityGroupIds?: string[];
  /**
   * Lifecycle preconditions checked at plan time on the attachment.
   * @default - none
   */
  readonly attachmentPreconditions?: Array<{ condition: unknown; errorMessage: string }>;
}

/**
 * A NAT ENI: the tenant-side identity of a proxy member. It lives in the tenant's
 * subnet, has source/destination check off (it forwards NATed traffic), and is
 * attached to a proxy instance in the function VPC (EC2 multi-VPC ENI attachment).
 */
export class NatEni extends Construct {
  public readonly networkInterface: NetworkInterface;
  public readonly attachment: NetworkInterfaceAttachment;
  public readonly securityGroup?: SecurityGroup;
  /** ENI id (deploy-time). */
  public readonly eniId: string;
  /** ENI ARN (deploy-time), for IAM scoping. */
  public readonly eniArn: string;
  /** Primary private IP (deploy-time). */
  public readonly privateIp: string;
  /** MAC address (deploy-time); the gateway finds the ENI by it. */
  public readonly macAddress: string;

  constructor(scope: Construct, id: string, props: NatEniProps) {
    super(scope, id);
    const tags = { ...props.tags, 'crossvpc:tenant': props.tenantName };
    const name = props.name ?? `crossvpc-${props.tenantName}`;
    let groups = props.securityGroupIds;
    if (!groups) {
      const inbound = (props.inboundPorts ?? []).filter(() => (props.inboundCidrs ?? []).length > 0);
      this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
        provider: props.provider,
        vpcId: props.vpcId,
        namePrefix: `crossvpc-${props.tenantName}-`,
        // Unchanged without forwards: a new description replaces the group (create before destroy).
        description: `crossvpc NAT ENI of tenant ${props.tenantName}: ${inbound.length ? 'port forwards only' : 'no inbound'}, egress to tenant destinations`,
        ingress: inbound.map((f) => ({ description: `port forward ${f.protocol}/${f.port} on the NAT IP`, protocol: f.protocol, fromPort: f.port, toPort: f.port, cidrBlocks: [...props.inboundCidrs!] })),
        egress: [{ description: 'tenant destinations', protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: [...props.egressCidrs] }],
        tags: { ...tags, Name: `${name}-sg` },
        lifecycle: { createBeforeDestroy: true },
      });
      groups = [this.securityGroup.id];
    }
    this.networkInterface = new NetworkInterface(this, 'Resource', {
      provider: props.provider,
      subnetId: props.subnetId,
      securityGroups: groups,
      sourceDestCheck: false,
      description: `crossvpc NAT ENI of tenant ${props.tenantName}`,
      tags: { ...tags, Name: name },
    });
    this.eniId = this.networkInterface.id;
    this.attachment = new NetworkInterfaceAttachment(this, 'Attachment', {
      provider: props.provider,
      instanceId: props.instanceId,
      networkInterfaceId: this.eniId,
      deviceIndex: props.deviceIndex,
      lifecycle: props.attachmentPreconditions?.length ? { precondition: props.attachmentPreconditions } : undefined,
    });
    this.eniArn = this.networkInterface.arn;
    this.privateIp = this.networkInterface.privateIp;
    this.macAddress = this.networkInterface.macAddress;
  }
}
