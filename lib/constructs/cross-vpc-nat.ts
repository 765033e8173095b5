import { Construct } from 'constructs';
import { TerraformProvider } from 'cdktf';
import { buildCrossVpcModel, CrossVpcModel, FunctionVpcInput, GatewayInput, MAX_PAIRS, pairsInUse, TenantInput, TenantModel } from '../model/crossvpc-model';
import { CrossVpcError } from '../model/errors';
import { isUnresolvedValue } from './tokens';
import { ProxyNodePair, RollingUpdate } from './proxy-node-pair';

/** The shared VPC the function pods run in. */
export interface FunctionVpcProps extends FunctionVpcInput {
  /** The function VPC id. */
  readonly vpcId: string;
  /** Subnets of the cluster nodes. */
  readonly nodeSubnetIds: string[];
  /** The function VPC CIDR (a literal: the model checks overlaps with it). */
  readonly vpcCidr: string;
  /**
   * Pod CIDRs when pods do not take VPC addresses (overlay CNIs).
   * @default [] (pods use VPC addresses)
   */
  readonly podCidrs?: string[];
  /**
   * Source CIDRs of tunnelled traffic: nodes SNAT pod traffic to their own IP.
   * @default [vpcCidr]
   */
  readonly nodeCidrs?: string[];
  /**
   * Security group of the cluster nodes; tunnel rules then reference it instead of nodeCidrs.
   * @default none: tunnel rules use nodeCidrs
   */
  readonly nodeSecurityGroupId?: string;
}

/** One tenant: a customer VPC whose services its functions must reach. */
export interface TenantProps extends TenantInput {
  /** Lowercase DNS label, unique. */
  readonly name: string;
  readonly vpcId: string;
  /** Subnet for the tenant's NAT ENIs, in the gateway AZ. */
  readonly subnetId: string;
  /**
   * Tenant VPC CIDRs (literals, strict dotted-quad). They may overlap other tenants freely,
   * but not each other, the function VPC (vpcCidr, podCidrs, nodeCidrs) or the reserved
   * ranges 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 and 240.0.0.0/4.
   */
  readonly cidrs: string[];
  /**
   * VXLAN VNI / GRE key.
   * @default derived from the name (stable when other tenants come and go)
   */
  readonly vni?: number;
  /**
   * Destinations pods may reach, inside cidrs.
   * @default cidrs
   */
  readonly allowedDestinations?: string[];
  /**
   * Floating NAT IP: the tenant-side identity of the functions. A literal outside the
   * function VPC; the plan checks it is a usable host of the tenant subnet (not its network,
   * broadcast or AWS-reserved addresses).
   * @default host -(2 + pair index) of the tenant subnet (counting down from the top), reserved with a subnet CIDR reservation
   */
  readonly natIp?: string;
  /**
   * Pin the tenant to a pair. Without gateway.pairCount a pin may name only the pairs the
   * listed tenants (retired ones included) need when packed tightly:
   * 0..ceil(tenants / tenantsPerMember) - 1; a further pin needs an explicit pairCount.
   * @default first pair with a free slot, in declaration order
   */
  readonly pair?: number;
  /**
   * Pin the ENI slot (device index) on the pair.
   * @default first free slot
   */
  readonly slot?: number;
  /**
   * AZ of the tenant subnet when known at synth time; checked against the gateway AZ (the plan checks it again at plan time).
   * A Terraform token is accepted: then only the plan-time check applies.
   * @default unknown
   */
  readonly availabilityZone?: string;
  /**
   * Keep the tenant's VNI and slot reserved but create nothing for it: removal that moves nobody else.
   * @default false
   */
  readonly retired?: boolean;
}

export interface GatewayProps extends GatewayInput {
  /** Function-VPC subnet of every pair (floating IPs move only within one subnet). */
  readonly subnetId: string;
  /**
   * A Terraform token is accepted, but then the built-in ENI table cannot be used:
   * tenantsPerMember is required, and the default AMI's architecture is read at plan time.
   * @default 'c6in.xlarge'
   */
  readonly instanceType?: string;
  /**
   * Tenants per member (maximum network interfaces - 1).
   * @default from the built-in table for instanceType
   */
  readonly tenantsPerMember?: number;
  /**
   * Number of pair indexes (0..pairCount-1); more tenants than they hold is an error. Only
   * pairs holding active tenants are built, so this is a ceiling, and it allows pins beyond
   * the pairs the tenants need.
   * @default as many as the tenants need
   */
  readonly pairCount?: number;
  /** @default 'vxlan' */
  readonly tunnel?: 'vxlan' | 'gre';
  /**
   * Underlay MTU between nodes and gateways; tunnels get this minus their overhead.
   * @default 9001
   */
  readonly mtu?: number;
  /**
   * AZ of the gateway subnet, when known at synth time (a Terraform token is accepted).
   * @default unknown (checked at plan time)
   */
  readonly availabilityZone?: string;
  /** @default Ubuntu 24.04 LTS via Canonical's SSM parameter */
  readonly amiId?: string;
  /**
   * HaVip per pair index: distinct literals; the plan checks each is a usable host of the
   * gateway subnet (not its network, broadcast or AWS-reserved addresses).
   * @default reserved host -(2 + pair index) of the gateway subnet
   */
  readonly haVips?: string[];
  /** @default none */
  readonly keyName?: string;
  /**
   * CIDRs allowed to SSH to the members (literals, strict dotted-quad).
   * @default none: no SSH
   */
  readonly sshCidrs?: string[];
  /** @default 0.3 */
  readonly advertIntervalSec?: number;
  /**
   * Tracked connections one tenant may hold on a member: an integer from 1 to 262144 (nf_conntrack_max).
   * @default 65536
   */
  readonly connLimitPerTenant?: number;
  /**
   * Member that takes new user data in this apply: one letter for every pair, or per pair
   * index (the standby can differ between pairs); see ProxyNodePairProps.rollingUpdate.
   * @default 'none'
   */
  readonly rollingUpdate?: RollingUpdate;
  /**
   * Ceiling on each member's compressed user data; raise only for plans that never reach EC2.
   * @default 16384 (EC2's limit)
   */
  readonly maxUserDataBytes?: number;
}

export interface CrossVpcNatProps {
  readonly functionVpc: FunctionVpcProps;
  readonly tenants: TenantProps[];
  readonly gateway: GatewayProps;
  /** @default no extra tags */
  readonly tags?: Record<string, string>;
  /** @default the stack's default AWS provider */
  readonly provider?: TerraformProvider;
}

/** What FunctionVpcLink needs from a CrossVpcNat; can be exported and passed between stacks. */
export interface CrossVpcLinkSpec {
  readonly model: CrossVpcModel;
  /**
   * HaVip of each built pair, keyed by pair index (pairs without active tenants are not built
   * and have no entry); deploy-time values resolve in the same stack only.
   */
  readonly haVips: Readonly<Record<number, string>>;
  /** The gateway subnet's CIDR (deploy-time): nodes keep pods' tunnel packets away from every member address. */
  readonly gatewaySubnetCidr: string;
}

const CROSS_VPC_NAT = Symbol.for('cdktf-crossvpc.CrossVpcNat');

/**
 * The whole cross-VPC NAT: stable tenant VNIs, tenants packed onto active/standby
 * proxy pairs by ENI capacity, NAT ENIs and floating NAT IPs, NAT policies.
 *
 * One per function VPC and gateway subnet in an App: a second one sharing either is
 * refused (they would reserve the same default HaVips, and their agents would share one
 * nft table, marks and device names on the nodes).
 */
export class CrossVpcNat extends Construct {
  /** True for a (fully constructed) CrossVpcNat, also across copies of this library; prefer it to instanceof. */
  public static isCrossVpcNat(x: unknown): x is CrossVpcNat {
    return x !== null && typeof x === 'object' && CROSS_VPC_NAT in x;
  }

  public readonly model: CrossVpcModel;
  /** The pairs built (those holding active tenants), in pair-index order; each names its index in pair.index. */
  public readonly pairs: ProxyNodePair[];
  /** The pairs built, keyed by pair index (indexes without active tenants have no entry). */
  public readonly pairsByIndex: Readonly<Record<number, ProxyNodePair>>;

  constructor(scope: Construct, id: string, props: CrossVpcNatProps) {
    super(scope, id);
    this.model = buildCrossVpcModel(this.node.path, props, { isUnresolved: isUnresolvedValue });
    this.refuseSecondInApp();
    this.pairs = pairsInUse(this.model).map(
      (p) =>
        new ProxyNodePair(this, `Pair${p.index}`, {
          model: this.model,
          pairIndex: p.index,
          amiId: props.gateway.amiId,
          haVip: props.gateway.haVips?.[p.index],
          keyName: props.gateway.keyName,
          sshCidrs: props.gateway.sshCidrs,
          advertIntervalSec: props.gateway.advertIntervalSec,
          connLimitPerTenant: props.gateway.connLimitPerTenant,
          rollingUpdate: props.gateway.rollingUpdate,
          maxUserDataBytes: props.gateway.maxUserDataBytes,
          tags: props.tags,
          provider: props.provider,
        }),
    );
    this.pairsByIndex = Object.fromEntries(this.pairs.map((p) => [p.pair.index, p]));
    // Marked only once complete: a construct whose constructor threw is not a rival.
    Object.defineProperty(this, CROSS_VPC_NAT, { value: true });
  }

  private refuseSecondInApp(): void {
    const mine = this.model;
    for (const other of this.node.root.node.findAll()) {
      if (other === this || !CrossVpcNat.isCrossVpcNat(other)) continue;
      const theirs = other.model;
      const shared = theirs.functionVpc.vpcId === mine.functionVpc.vpcId
        ? { prop: 'functionVpc.vpcId', value: mine.functionVpc.vpcId }
        : theirs.gatewaySubnetId === mine.gatewaySubnetId
          ? { prop: 'gateway.subnetId', value: mine.gatewaySubnetId }
          : undefined;
      if (!shared) continue;
      throw new CrossVpcError({
        path: this.node.path,
        prop: shared.prop,
        value: shared.value,
        problem: `${other.node.path} already uses this ${shared.prop}; two CrossVpcNat in one function VPC or gateway subnet would reserve the same default HaVips, and their node agents would fight over one nft table, marks and tunnel device names`,
        fix: `put all tenants in one CrossVpcNat (it manages up to ${MAX_PAIRS} pairs), i.e. add these tenants to ${other.node.path}`,
      });
    }
  }

  public get linkSpec(): CrossVpcLinkSpec {
    return {
      model: this.model,
      haVips: Object.fromEntries(this.pairs.map((p) => [p.pair.index, p.haVip])),
      gatewaySubnetCidr: this.pairs[0].gatewaySubnetCidr,
    };
  }

  public tenant(name: string): TenantModel {
    const t = this.model.tenants.find((x) => x.name === name);
    if (!t) throw new CrossVpcError({ path: this.node.path, prop: 'tenant(name)', value: name, problem: 'no active tenant has this name', fix: `use one of ${this.model.tenants.map((x) => x.name).join(', ')}` });
    return t;
  }

  /** The floating NAT IP of a tenant (deploy-time unless given). */
  public natIp(name: string): string {
    const t = this.tenant(name);
    return this.pairsByIndex[t.pairIndex].natIps[name];
  }
}
