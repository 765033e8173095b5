import { Construct } from 'constructs';
import { TerraformProvider } from 'cdktf';
import { Route } from '@cdktf/provider-aws/lib/route';
import { VpcPeeringConnection } from '@cdktf/provider-aws/lib/vpc-peering-connection';
import { VpcPeeringConnectionAccepterA as VpcPeeringConnectionAccepter } from '@cdktf/provider-aws/lib/vpc-peering-connection-accepter';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { PeeredTenantModel, PeeringPort } from '../model/model-types';
import { AwsConstructProps } from './aws-construct-props';
import { isUnresolvedValue } from './tokens';

export interface TenantPeeringProps extends AwsConstructProps {
  /** The function VPC: the requester side. */
  readonly functionVpcId: string;
  /** The peered tenant, as the model checked it. */
  readonly tenant: PeeredTenantModel;
  /**
   * Provider of the tenant side: the accepter, the tenant's routes and its security-group
   * rules. Another account or region needs its own (README, "The peering path").
   * @default - provider
   */
  readonly tenantProvider?: TerraformProvider;
}

/**
 * Seed 003's path for a tenant whose CIDRs overlap nothing: a VPC peering connection,
 * accepted on the tenant side, routes both ways and the tenant's security-group rules for
 * the function side's sources. The gateway pairs are not involved; the node agent keeps
 * every other tenant's pods away from these CIDRs.
 */
export class TenantPeering extends Construct {
  public readonly connection: VpcPeeringConnection;
  public readonly accepter: VpcPeeringConnectionAccepter;
  /** The peering connection id (deploy-time). */
  public readonly peeringConnectionId: string;

  constructor(scope: Construct, id: string, props: TenantPeeringProps) {
    super(scope, id);
    const t = props.tenant;
    const pe = t.peering;
    const tenantProvider = props.tenantProvider ?? props.provider;
    const tags = { ...props.tags, 'crossvpc:tenant': t.name, Name: `crossvpc-peering-${t.name}` };
    // The requester never auto-accepts: the accepter does, with the tenant side's credentials,
    // which is the same resource whether the tenant VPC is in this account or another.
    this.connection = new VpcPeeringConnection(this, 'Connection', {
      provider: props.provider,
      vpcId: props.functionVpcId,
      peerVpcId: t.vpcId,
      peerOwnerId: pe.peerOwnerId,
      peerRegion: pe.peerRegion,
      tags,
    });
    this.accepter = new VpcPeeringConnectionAccepter(this, 'Accepter', {
      provider: tenantProvider,
      vpcPeeringConnectionId: this.connection.id,
      autoAccept: true,
      tags,
    });
    this.peeringConnectionId = this.accepter.vpcPeeringConnectionId;
    // Only the destinations the tenant's pods may reach are routed.
    pe.functionRouteTableIds.forEach((table, k) => {
      for (const cidr of t.destinations) {
        new Route(this, `FunctionRoute-${idPart(table, k)}-${slug(cidr)}`, {
          provider: props.provider, routeTableId: table, destinationCidrBlock: cidr, vpcPeeringConnectionId: this.peeringConnectionId,
        });
      }
    });
    pe.tenantRouteTableIds.forEach((table, k) => {
      for (const cidr of t.sources) {
        new Route(this, `TenantRoute-${idPart(table, k)}-${slug(cidr)}`, {
          provider: tenantProvider, routeTableId: table, destinationCidrBlock: cidr, vpcPeeringConnectionId: this.peeringConnectionId,
        });
      }
    });
    pe.tenantSecurityGroupIds.forEach((group, k) => {
      for (const port of pe.ports) {
        for (const cidr of t.sources) {
          new VpcSecurityGroupIngressRule(this, `TenantIngress-${idPart(group, k)}-${portSlug(port)}-${slug(cidr)}`, {
            provider: tenantProvider, securityGroupId: group, cidrIpv4: cidr, ...ruleOf(port),
            description: `crossvpc: functions of tenant ${t.name} through the peering`,
            tags: { ...props.tags, 'crossvpc:tenant': t.name, Name: `crossvpc-peering-${t.name}` },
          });
        }
      }
    });
  }
}

/** A CIDR or literal id as an id part, so ids stay put when other entries come and go (a token falls back to its index). */
const slug = (cidr: string) => cidr.replace(/[./]/g, '_');
const idPart = (id: string, k: number) => (isUnresolvedValue(id) ? String(k) : id);
const portSlug = (p: PeeringPort) => (p.protocol === 'tcp' || p.protocol === 'udp' ? `${p.protocol}${p.fromPort}-${p.toPort}` : p.protocol);

function ruleOf(p: PeeringPort): { ipProtocol: string; fromPort?: number; toPort?: number } {
  if (p.protocol === 'all') return { ipProtocol: '-1' };
  // ICMP: every type and code.
  if (p.protocol === 'icmp') return { ipProtocol: 'icmp', fromPort: -1, toPort: -1 };
  return { ipProtocol: p.protocol, fromPort: p.fromPort, toPort: p.toPort };
}
