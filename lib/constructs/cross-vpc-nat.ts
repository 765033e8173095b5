import { Construct } from 'constructs';
import { TerraformProvider } from 'cdktf';
import { buildCrossVpcModel, CrossVpcModel, FunctionVpcInput, GatewayInput, TenantInput, TenantModel } from '../model/crossvpc-model';
import { CrossVpcError } from '../model/errors';
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
  /** Tenant VPC CIDRs (literals). */
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
   * Floating NAT IP: the tenant-side identity of the functions.
   * @default host -(2 + pair index) of the tenant subnet (counting down from the top), reserved with a subnet CIDR reservation
   */
  readonly natIp?: string;
  /**
   * Pin the tenant to a pair.
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
  /** @default 'c6in.xlarge' */
  readonly instanceType?: string;
  /**
   * Tenants per member (maximum network interfaces - 1).
   * @default from the built-in table for instanceType
   */
  readonly tenantsPerMember?: number;
  /**
   * Fixed number of pairs; more tenants than they hold is an error.
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
   * AZ of the gateway subnet, when known at synth time.
   * @default unknown (checked at plan time)
   */
  readonly availabilityZone?: string;
  /** @default Ubuntu 24.04 LTS via Canonical's SSM parameter */
  readonly amiId?: string;
  /**
   * HaVip per pair index.
   * @default reserved host -(2 + pair index) of the gateway subnet
   */
  readonly haVips?: string[];
  /** @default none */
  readonly keyName?: string;
  /** @default none: no SSH */
  readonly sshCidrs?: string[];
  /** @default 0.3 */
  readonly advertIntervalSec?: number;
  /** @default 65536 */
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
  /** HaVip of each pair, by pair index (deploy-time values resolve in the same stack only). */
  readonly haVips: string[];
  /** The gateway subnet's CIDR (deploy-time): nodes keep pods' tunnel packets away from every member address. */
  readonly gatewaySubnetCidr: string;
}

/**
 * The whole cross-VPC NAT: stable tenant VNIs, tenants packed onto active/standby
 * proxy pairs by ENI capacity, NAT ENIs and floating NAT IPs, NAT policies.
 */
export class CrossVpcNat extends Construct {
  public readonly model: CrossVpcModel;
  public readonly pairs: ProxyNodePair[];

  constructor(scope: Construct, id: string, props: CrossVpcNatProps) {
    super(scope, id);
    this.model = buildCrossVpcModel(this.node.path, props);
    this.pairs = this.model.pairs.map(
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
  }

  public get linkSpec(): CrossVpcLinkSpec {
    return { model: this.model, haVips: this.pairs.map((p) => p.haVip), gatewaySubnetCidr: this.pairs[0].gatewaySubnetCidr };
  }

  public tenant(name: string): TenantModel {
    const t = this.model.tenants.find((x) => x.name === name);
    if (!t) throw new CrossVpcError({ path: this.node.path, prop: 'tenant(name)', value: name, problem: 'no active tenant has this name', fix: `use one of ${this.model.tenants.map((x) => x.name).join(', ')}` });
    return t;
  }

  /** The floating NAT IP of a tenant (deploy-time unless given). */
  public natIp(name: string): string {
    const t = this.tenant(name);
    return this.pairs[t.pairIndex].natIps[name];
  }
}
