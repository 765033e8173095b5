import { Construct } from 'constructs';
import { TerraformOutput, TerraformProvider, TerraformStack } from 'cdktf';
import { buildCrossVpcModel, CrossVpcModel, FunctionVpcInput, GatewayInput, MAX_PAIRS, pairsInUse, TenantInput, TenantModel } from '../model/crossvpc-model';
import { CrossVpcError } from '../model/errors';
import { isUnresolvedValue } from './tokens';
import { AwsConstructProps } from './aws-construct-props';
import { ProxyNodePair } from './proxy-node-pair';
import { TenantPeering } from './tenant-peering';

// The docs of every field live on the model's input types (lib/model/inputs.ts), once.

/** The shared VPC the function pods run in. */
export interface FunctionVpcProps extends FunctionVpcInput {}

/** One tenant: a customer VPC whose services its functions must reach. */
export interface TenantProps extends TenantInput {}

/** The proxy pairs: where they run and the options every pair takes. */
export interface GatewayProps extends GatewayInput {}

export interface CrossVpcNatProps extends AwsConstructProps {
  /** The shared VPC the pods run in. */
  readonly functionVpc: FunctionVpcProps;
  /** The tenants, at least one of them active. */
  readonly tenants: TenantProps[];
  /** The proxy pairs. */
  readonly gateway: GatewayProps;
  /**
   * Add Terraform outputs (`terraform output`): `crossvpc-<id>-pair<N>-havip`, the HaVip of each
   * built pair, and `crossvpc-<id>-tenant-<name>-nat-ip`, the NAT IP each active tenant must
   * allow-list in its security groups and service whitelists. `<id>` is this construct's id,
   * characters other than letters, digits, `_` and `-` replaced by `_`. Retired tenants and
   * unbuilt pairs have none; adding or retiring a tenant changes no other tenant's output.
   * Output names already taken in the stack (another CrossVpcNat of the same id) are a CrossVpcError.
   * @default false
   */
  readonly outputs?: boolean;
  /**
   * Provider of a peered tenant's side (the accepter, its routes and security-group rules),
   * by tenant name: needed when its VPC is in another account or region. Every key must name
   * an active tenant on the peering path.
   * @default - provider, for every peered tenant
   */
  readonly tenantProviders?: Readonly<Record<string, TerraformProvider>>;
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
  /** The peering of each active tenant on the peering path, by tenant name. */
  public readonly peerings: Readonly<Record<string, TenantPeering>>;

  constructor(scope: Construct, id: string, props: CrossVpcNatProps) {
    super(scope, id);
    this.model = buildCrossVpcModel(this.node.path, props, { isUnresolved: isUnresolvedValue });
    this.refuseSecondInApp();
    // A loop, not map(): cdktf keeps the whole call stack of every reference it creates (tens
    // of thousands in a pair's constructor at 1,000 tenants), so each frame here costs.
    const pairs: ProxyNodePair[] = [];
    for (const p of pairsInUse(this.model)) {
      // GatewayProps extends ProxyNodePairOptions, so every pair option reaches the pair;
      // the model's own gateway fields ride along and the pair ignores them.
      pairs.push(new ProxyNodePair(this, `Pair${p.index}`, {
        ...props.gateway, model: this.model, pairIndex: p.index, haVip: props.gateway.haVips?.[p.index], tags: props.tags, provider: props.provider,
      }));
    }
    this.pairs = pairs;
    this.pairsByIndex = Object.fromEntries(this.pairs.map((p) => [p.pair.index, p]));
    this.checkTenantProviders(props.tenantProviders ?? {});
    this.peerings = Object.fromEntries(this.model.peered.map((t) => [t.name, new TenantPeering(this, `Peering-${t.name}`, {
      functionVpcId: this.model.functionVpc.vpcId, tenant: t, tags: props.tags, provider: props.provider, tenantProvider: props.tenantProviders?.[t.name],
    })]));
    if (props.outputs) this.addOutputs(id);
    // Marked only once complete: a construct whose constructor threw is not a rival.
    Object.defineProperty(this, CROSS_VPC_NAT, { value: true });
  }

  /** Named from the id, tenant names and pair indexes only, so they never move when other tenants come and go. */
  private addOutputs(id: string): void {
    const prefix = `crossvpc-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const outputs = [
      ...this.pairs.map((pair) => ({
        name: `${prefix}-pair${pair.pair.index}-havip`, value: pair.haVip,
        description: `crossvpc pair ${pair.pair.index} HaVip: the tunnel endpoint the nodes send to`,
      })),
      ...this.model.tenants.map((t) => ({
        name: `${prefix}-tenant-${t.name}-nat-ip`, value: this.natIp(t.name),
        description: `crossvpc NAT IP of tenant ${t.name}: the source address of its functions, to allow in its security groups and service whitelists`,
      })),
      ...this.model.peered.map((t) => ({
        name: `${prefix}-tenant-${t.name}-peering-id`, value: this.peerings[t.name].peeringConnectionId,
        description: `crossvpc peering connection of tenant ${t.name}; its functions arrive from ${t.sources.join(', ')}`,
      })),
    ];
    // Terraform keeps one output per name: a clash would silently drop one of them.
    const names = new Set(outputs.map((o) => o.name));
    const taken = TerraformStack.of(this).node.findAll().find((x): x is TerraformOutput => TerraformOutput.isTerraformOutput(x) && names.has(x.friendlyUniqueId));
    if (taken) {
      throw new CrossVpcError({
        path: this.node.path, prop: 'outputs', value: true,
        problem: `the stack already has an output named ${taken.friendlyUniqueId} (${taken.node.path}), one of this construct's outputs`,
        fix: 'give this CrossVpcNat an id no other CrossVpcNat with outputs in the stack has',
      });
    }
    for (const o of outputs) new TerraformOutput(this, o.name, { staticId: true, value: o.value, description: o.description });
  }

  private checkTenantProviders(providers: Readonly<Record<string, TerraformProvider>>): void {
    const peered = this.model.peered.map((t) => t.name);
    for (const name of Object.keys(providers)) {
      if (peered.includes(name)) continue;
      throw new CrossVpcError({
        path: this.node.path, prop: `tenantProviders.${name}`, value: name,
        problem: 'no active tenant on the peering path has this name, so the provider would create nothing',
        fix: peered.length ? `key tenantProviders by a peered tenant: ${peered.join(', ')}` : 'drop tenantProviders: no tenant takes the peering path',
      });
    }
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
