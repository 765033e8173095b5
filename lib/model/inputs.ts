/**
 * What users give CrossVpcNat, declared once with its docs: the construct props extend these
 * types and docs/API.md is generated from them (scripts/api-docs.ts). Pure data, no cdktf.
 */

/** Tunnel encapsulation between nodes and gateways. */
export type TunnelType = 'vxlan' | 'gre';

/**
 * How a tenant's pods reach its VPC: `nat` through the gateway pairs (overlap allowed),
 * `peering` through a VPC peering connection (no gateway; the tenant's CIDRs must overlap
 * nothing routed in the function VPC and no other peered tenant), or `auto`: peering exactly
 * when that holds against the tenants declared before it, NAT otherwise.
 */
export type TenantPath = 'nat' | 'peering' | 'auto';

/** What a peered tenant gets: the peering connection, routes on both sides and its security-group rules (seed 003). */
export interface PeeringInput {
  /** Function-VPC route tables (the node subnets') that get a route to each tenant CIDR through the peering; at least one. */
  readonly functionRouteTableIds: string[];
  /** Tenant-VPC route tables that get a route back to the function side's sources through the peering; at least one. */
  readonly tenantRouteTableIds: string[];
  /**
   * Tenant security groups (of the services the pods call) that get an ingress rule from the
   * function side's sources: functionVpc.podCidrs when given (pods keep their addresses),
   * else functionVpc.nodeCidrs (the CNI masquerades pod traffic to the node IP).
   * @default - none: allow the sources yourself
   */
  readonly tenantSecurityGroupIds?: string[];
  /**
   * What those rules open: `all`, `icmp`, or `tcp:<port>`, `udp:<port>`, `tcp:<from>-<to>`.
   * @default ['all']
   */
  readonly ports?: string[];
  /**
   * AWS account that owns the tenant VPC. Another account's accepter, routes and rules are
   * created with CrossVpcNat's `tenantProviders[<name>]` (README, "The peering path").
   * @default - the function VPC's account
   */
  readonly peerOwnerId?: string;
  /**
   * Region of the tenant VPC.
   * @default - the function VPC's region
   */
  readonly peerRegion?: string;
}

/**
 * Internet egress through an Elastic IP the platform owns: the gateway SNATs the tenant's
 * public-destination traffic to `privateIp`, a secondary address of the active member's
 * primary ENI that floats with the HaVip, and the active member associates the EIP with it.
 */
export interface EipEgress {
  /** The EIP's allocation id (`eipalloc-` and 8 or 17 hex digits); a literal: it keys the member role's permission. */
  readonly eipAllocationId: string;
  /** A free host of the gateway subnet: not its reserved hosts, not a HaVip, not another tenant's. */
  readonly privateIp: string;
}

/** A tenant's internet egress (seed 000's default NAT policy). */
export type InternetEgress = 'none' | 'tenantVpc' | EipEgress;

/**
 * One DNAT port forward on a tenant's NAT IP (seed 001): the tenant's clients connect to
 * `<NAT IP>:<port>` and reach `target` in the function VPC (an internal load balancer, a NodePort).
 */
export interface InboundInput {
  /** `'tcp'` or `'udp'`. */
  readonly protocol: 'tcp' | 'udp';
  /** The port on the NAT IP, an integer from 1 to 65535; (protocol, port) is unique per tenant. */
  readonly port: number;
  /**
   * `'a.b.c.d:port'`: an address inside functionVpc.vpcCidr (not a HaVip) and its port. It
   * sees the pair's HaVip as the source, with a port from the tenant's own range (README,
   * "Ingress (seed 001)"): its security group must admit the gateway subnet.
   */
  readonly target: string;
}

/** One member to roll, for every pair or per pair index. */
export type RollingUpdate = 'none' | 'a' | 'b' | Record<number, 'none' | 'a' | 'b'>;

/** The shared VPC the function pods run in. */
export interface FunctionVpcInput {
  /** The function VPC id: the gateways' security groups and primary ENIs are created in it. */
  readonly vpcId: string;
  /** Subnets of the cluster nodes; must be non-empty (no resource uses it today). */
  readonly nodeSubnetIds: string[];
  /** The function VPC CIDR, a literal (the model checks overlaps with it): tenant CIDRs and NAT IPs may not overlap it. */
  readonly vpcCidr: string;
  /**
   * Pod CIDRs when pods do not take VPC addresses (overlay CNIs). They may not overlap each
   * other; tenant CIDRs, NAT IPs and HaVips may not overlap them.
   * @default - [] (pods use VPC addresses)
   */
  readonly podCidrs?: string[];
  /**
   * The cluster's Kubernetes Service CIDR (kube-proxy answers for it on every node, so a tenant
   * range inside it is unreachable from pods). A literal; it may not overlap vpcCidr or
   * podCidrs, and tenant CIDRs may not overlap it. Carried in the agent ConfigMap for
   * `crossvpc doctor`; the agent does not use it.
   * @default - unknown: not checked at synth; `crossvpc doctor` warns about the common defaults (10.96.0.0/12, EKS 10.100.0.0/16 and 172.20.0.0/16)
   */
  readonly serviceCidr?: string;
  /**
   * Source CIDRs of tunnelled traffic: nodes SNAT pod traffic to their own IP. They feed the
   * NAT policy set, the spoofed-tunnel filter and the resolver, and may not overlap each
   * other; tenant CIDRs and NAT IPs may not overlap them.
   * @default - [vpcCidr]
   */
  readonly nodeCidrs?: string[];
  /**
   * Security group of the cluster nodes. When set, the gateway group admits tunnels from this
   * group instead of nodeCidrs, **and an ingress rule is added to this (your) group** admitting
   * the tunnel protocol from the gateways.
   * @default - none: tunnel rules use nodeCidrs
   */
  readonly nodeSecurityGroupId?: string;
}

/** One tenant: a customer VPC whose services its functions must reach. */
export interface TenantInput {
  /** Lowercase DNS label, at most 40 characters, unique; becomes Terraform ids, tags and the pod label value. */
  readonly name: string;
  /** Tenant VPC: its NAT ENIs' security group is created in it. */
  readonly vpcId: string;
  /**
   * Subnet for the tenant's NAT ENIs; must be in the gateway AZ. Required on the NAT path,
   * refused on the peering path (nothing is created in it).
   * @default - none: only for path 'peering'
   */
  readonly subnetId?: string;
  /**
   * How the tenant's pods reach its VPC.
   * @default 'nat'
   */
  readonly path?: TenantPath;
  /**
   * Seed 000's default policy: where the tenant's pods' traffic to public destinations (no
   * allowed destination, no private or reserved range) goes. `'tenantVpc'`: through the
   * tenant's NAT ENI to its VPC router, SNATed to the NAT IP; the tenant subnet's route table
   * must send 0.0.0.0/0 to the tenant's own NAT gateway, whose EIP the internet then sees.
   * `{ eipAllocationId, privateIp }`: the gateway pair SNATs them to `privateIp` in the gateway
   * subnet, which the active member associates with the EIP (the gateway subnet must route
   * 0.0.0.0/0 to an internet gateway); the internet sees the EIP.
   * NAT path only.
   * @default 'none' (dropped at the gateway and counted as unmatched; pods keep the node's own internet path)
   */
  readonly internetEgress?: InternetEgress;
  /**
   * Port forwards on the tenant's NAT IP into the function VPC. Only these (protocol, port)
   * pairs are open, and only from the tenant's own VPC: the NAT ENIs' security group admits
   * them from the tenant's cidrs. NAT path only; the tenant must sit in slot 1..44 of its pair
   * (each such slot owns 1,000 SNAT ports on the HaVip).
   * @default - none: nothing inbound (everything from the tenant VPC to the NAT IP is dropped)
   */
  readonly inbound?: InboundInput[];
  /**
   * The peering's route tables and security groups: required for path `peering` and `auto`,
   * refused for `nat`.
   * @default - none
   */
  readonly peering?: PeeringInput;
  /**
   * Tenant VPC CIDRs (literals, strict dotted-quad). They may overlap other tenants freely,
   * but not each other, the function VPC (vpcCidr, podCidrs, nodeCidrs, serviceCidr) or the reserved
   * ranges 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 and 240.0.0.0/4.
   */
  readonly cidrs: string[];
  /**
   * VXLAN VNI / GRE key, 1..16777215. Derived VNIs are `65536 + (first 32 bits of
   * sha256("crossvpc/vni/<name>")) mod (16777215 - 65536 + 1)`, so they never move when other
   * tenants come and go and stay clear of small hand-picked ones. A collision is an error
   * naming both tenants.
   * @default - derived from the name
   */
  readonly vni?: number;
  /**
   * The only destinations pods of this tenant may reach; they must lie inside cidrs and not
   * overlap each other.
   * @default - cidrs
   */
  readonly allowedDestinations?: string[];
  /**
   * Floating NAT IP: the tenant-side source address of all the tenant's functions; identical
   * NAT IPs across tenants are fine. Refused at synth inside vpcCidr, podCidrs or nodeCidrs; a
   * given one is checked at plan time (precondition on its reservation) to be a host of the
   * tenant subnet other than its network, broadcast and the three AWS-reserved addresses
   * after the network.
   * @default - host -(2 + pair index) of the tenant subnet (`cidrhost(subnet, -2)` on pair 0), reserved with an explicit subnet CIDR reservation
   */
  readonly natIp?: string;
  /**
   * Pin the tenant to a pair index (0..pairCount-1, at most 999). Without gateway.pairCount a
   * pin may name only the pairs the listed tenants (retired ones included) need when packed
   * tightly: 0..ceil(tenants / tenantsPerMember) - 1; a further pin (a typo such as `999`)
   * needs an explicit pairCount.
   * @default - first pair with a free slot, in declaration order
   */
  readonly pair?: number;
  /**
   * Pin the ENI slot, which is the device index on both members (1..tenantsPerMember).
   * @default - first free slot
   */
  readonly slot?: number;
  /**
   * AZ of the tenant subnet when known at synth time: checked against
   * gateway.availabilityZone when both are literals; the plan checks the real AZs again
   * (precondition on each attachment). A Terraform token is accepted (then only the plan-time check applies).
   * @default - unknown
   */
  readonly availabilityZone?: string;
  /**
   * Keep the tenant's VNI and slot reserved but create nothing for it: removal that moves nobody else.
   * @default false
   */
  readonly retired?: boolean;
}

/** The options every proxy pair takes; CrossVpcNat passes its gateway's to each pair it builds. */
export interface ProxyNodePairOptions {
  /**
   * AMI for both members. With an instanceType token the architecture comes from
   * `aws_ec2_instance_type` at plan time. A change reaches only the member named by
   * `rollingUpdate`: the others ignore `ami` (README, "Upgrades").
   * @default - Ubuntu 24.04 LTS from Canonical's public SSM parameter (amd64, or arm64 for Graviton types)
   */
  readonly amiId?: string;
  /**
   * EC2 key pair for SSH.
   * @default - none
   */
  readonly keyName?: string;
  /**
   * CIDRs allowed to SSH to the members (literals, strict dotted-quad).
   * @default - none: no SSH rule at all
   */
  readonly sshCidrs?: string[];
  /**
   * VRRPv3 advertisement interval in seconds, 0.01..40; master-down detection takes about 3.6
   * intervals, then the IPs move. With 0.1, traffic flows again 0.7-0.9 s after a hard kill
   * (0.3: 1.7 s), and 20 s of iperf3 load on both vCPUs caused no flap (npm run bench:failover).
   * Raise it on members whose CPU can be starved for more than about 0.3 s.
   * @default 0.1
   */
  readonly advertIntervalSec?: number;
  /**
   * Tracked connections one tenant may hold on a member: an integer from 1 to conntrackMax.
   * @default 65536
   */
  readonly connLimitPerTenant?: number;
  /**
   * nf_conntrack_max on each member: a positive integer.
   * @default 262144
   */
  readonly conntrackMax?: number;
  /**
   * The member that may take new user data or a new AMI in this apply: one letter for every pair,
   * or a map per pair index (the standby can differ between pairs). The named member gets
   * `user_data_replace_on_change = true`; the others have `ignore_changes = ["user_data_base64", "ami"]`,
   * so one apply can never replace both: roll the standby, fail over, roll the other (README, "Upgrades").
   * @default 'none'
   */
  readonly rollingUpdate?: RollingUpdate;
  /**
   * Ceiling on each member's user data after gzip (EC2 counts the raw bytes, before base64). Raise it only for plans that
   * never reach EC2 (emulation, benchmarks with more tenants than any instance has ENIs).
   * @default 16384 (EC2's limit)
   */
  readonly maxUserDataBytes?: number;
  /**
   * Seconds between each member's reads of its pair document (SSM GetParameter), an integer
   * from 1 to 300. A tenant change is live within about this plus 2 seconds. Every member polls,
   * so a region with P pairs makes 2P / configPollIntervalSec calls a second: keep that under
   * the account's GetParameter quota (40 a second by default; README, "Live tenant changes").
   * @default 5
   */
  readonly configPollIntervalSec?: number;
  /**
   * Ceiling on a pair document after gzip and base64. Raise it only for plans that never reach
   * AWS (emulation, benchmarks with more tenants on a pair than any instance has ENIs).
   * @default 8192 (SSM Parameter Store's advanced tier)
   */
  readonly maxConfigDocumentBytes?: number;
  /**
   * CIDRs allowed to scrape each member's Prometheus metrics (node_exporter with crossvpc's
   * textfile) on its function-side address and `metricsPort` (literals, strict dotted-quad).
   * Giving this or `metricsSecurityGroupId` turns the metrics on: the members then run
   * crossvpc-metrics and node_exporter (README, "Gateway metrics").
   * @default - none: no metrics, no ingress rule
   */
  readonly metricsSources?: string[];
  /**
   * A security group (e.g. the Prometheus servers') allowed to scrape the members' metrics; as
   * `metricsSources`, it turns the metrics on.
   * @default - none: no metrics, no ingress rule
   */
  readonly metricsSecurityGroupId?: string;
  /**
   * TCP port node_exporter listens on, on each member's function-side address: an integer from
   * 1024 to 65535, other than the tunnel's and the session sync's.
   * @default 9100 (node_exporter's)
   */
  readonly metricsPort?: number;
}

/** The proxy pairs: where they run and what every pair takes. */
export interface GatewayInput extends ProxyNodePairOptions {
  /** Function-VPC subnet of every pair: both members and the HaVip live here (floating IPs move only within one subnet). */
  readonly subnetId: string;
  /**
   * Must be in the built-in ENI table unless tenantsPerMember is given. A Terraform token is
   * accepted with tenantsPerMember; the default AMI's architecture is then read at plan time
   * (`aws_ec2_instance_type.supported_architectures`).
   * @default 'c6in.xlarge'
   */
  readonly instanceType?: string;
  /**
   * Tenants per member, 1..1023 (maximum network interfaces - 1); the plan re-checks it
   * against `aws_ec2_instance_type.maximum_network_interfaces`.
   * @default - from the built-in table for instanceType
   */
  readonly tenantsPerMember?: number;
  /**
   * Number of pair indexes, 1..1000 (0..pairCount-1); more tenants than they hold is an
   * error. Only pairs holding active tenants are built, so this is a ceiling, and it allows
   * pins beyond the pairs the tenants need. Without it the model still stops at 1,000 pairs.
   * @default - as many as the tenants need
   */
  readonly pairCount?: number;
  /**
   * Tunnel between nodes and gateways: VXLAN costs 50 bytes, keyed GRE 28.
   * @default 'vxlan'
   */
  readonly tunnel?: TunnelType;
  /**
   * Underlay MTU between nodes and gateways; tunnel MTU = mtu - overhead (at least 1280), MSS = tunnel MTU - 40.
   * @default 9001
   */
  readonly mtu?: number;
  /**
   * AZ of the gateway subnet, when known at synth time; enables the synth-time AZ check of
   * tenants. A Terraform token is accepted (then only the plan-time check applies).
   * @default - unknown (checked at plan time)
   */
  readonly availabilityZone?: string;
  /**
   * HaVip per pair index: distinct literals, not in podCidrs; the plan checks each
   * (precondition on its reservation) is a host of the gateway subnet other than its
   * network, broadcast and the three AWS-reserved addresses.
   * @default - host -(2 + pair index) of the gateway subnet, reserved with an explicit subnet CIDR reservation
   */
  readonly haVips?: string[];
}
