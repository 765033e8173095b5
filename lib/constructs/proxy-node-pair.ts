import { Construct } from 'constructs';
import { Fn, Op, Token } from 'cdktf';
import { DataAwsEc2InstanceType } from '@cdktf/provider-aws/lib/data-aws-ec2-instance-type';
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { DataAwsSsmParameter } from '@cdktf/provider-aws/lib/data-aws-ssm-parameter';
import { DataAwsSubnet } from '@cdktf/provider-aws/lib/data-aws-subnet';
import { Ec2SubnetCidrReservation } from '@cdktf/provider-aws/lib/ec2-subnet-cidr-reservation';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { NetworkInterface } from '@cdktf/provider-aws/lib/network-interface';
import { PlacementGroup } from '@cdktf/provider-aws/lib/placement-group';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { checkConnLimitPerTenant, checkConntrackMax, CrossVpcModel, DEFAULT_CONN_LIMIT_PER_TENANT, DEFAULT_CONNTRACK_MAX, PairModel, ProxyNodePairOptions, VXLAN_PORT } from '../model/crossvpc-model';
import { CrossVpcError } from '../model/errors';
import { parseCidr, parseIp } from '../model/cidr';
import { isUnresolvedValue } from './tokens';
import { renderCloudConfig } from '../render/cloud-config';
import { renderGatewayFiles, renderGatewayUnits, renderPairDocumentText } from '../render/gateway-files';
import { buildGatewayMemberSpec, CONNTRACKD_SYNC_PORT, GatewayMemberSpec, MemberBindings } from '../render/gateway-spec';
import { estimatedUserDataBytes, MAX_USER_DATA_BYTES, packBase64Gzip, packUserData } from '../render/user-data';
import { userDataExpression } from './user-data-locals';
import { SSM_ADVANCED_VALUE_MAX_BYTES } from '../contract/pair-document';
import { GATEWAY_METRICS_PORT } from '../contract/gateway-metrics';
import { inboundSnatPorts } from '../contract/ingress';
import { packedDocumentBytes } from '../render/document-size';
import { AwsConstructProps } from './aws-construct-props';
import { EipEgress } from './eip-egress';
import { NatEni } from './nat-eni';

export { MAX_USER_DATA_BYTES } from '../render/user-data';

export interface ProxyNodePairProps extends ProxyNodePairOptions, AwsConstructProps {
  /** The validated model from CrossVpcNat (or buildCrossVpcModel). */
  readonly model: CrossVpcModel;
  /** Which pair of the model this is: an index of model.pairs holding active tenants. */
  readonly pairIndex: number;
  /**
   * The pair's HaVip (tunnel endpoint) in the gateway subnet: a literal; the plan checks it is
   * a usable host of the subnet (precondition on its reservation).
   * @default - host -(2 + pairIndex) of the gateway subnet, reserved with an explicit subnet CIDR reservation
   */
  readonly haVip?: string;
}

export interface ProxyMember {
  readonly name: 'a' | 'b';
  readonly instance: Instance;
  readonly primaryEni: NetworkInterface;
  /** NAT ENI of this member per tenant name. */
  readonly natEnis: Record<string, NatEni>;
}

const UBUNTU_SSM = (arch: string) => `/aws/service/canonical/ubuntu/server/24.04/stable/current/${arch}/hvm/ebs-gp3/ami-id`;
const isGraviton = (instanceType: string) => /^[a-z]+\d+[a-z]*g[a-z]*\./.test(instanceType);

/** The host numbers AWS keeps in every subnet: network, router, DNS, future use, broadcast. */
const AWS_RESERVED_HOSTS = [0, 1, 2, 3, -1];

/**
 * Plan-time test that `ip` is a usable host of `cidr` (a data-source attribute): same
 * network at the subnet's prefix length, and none of the addresses AWS reserves.
 */
function usableHostOf(ip: string, cidr: string): unknown {
  const prefix = Fn.element(Fn.split('/', cidr), 1);
  return Op.and(
    Op.eq(Fn.cidrhost(`${ip}/${Token.asString(prefix)}`, 0), Fn.cidrhost(cidr, 0)),
    Op.not(Fn.contains(AWS_RESERVED_HOSTS.map((h) => Fn.cidrhost(cidr, h)), ip)),
  );
}

/**
 * Two proxy instances, active/standby, in one function subnet (floating IPs move only
 * within a subnet) and one AZ (multi-VPC ENIs attach only within their AZ), spread
 * over separate hosts. keepalived elects the active member; conntrackd keeps sessions;
 * the notify script moves the HaVip and every tenant's NAT IP.
 */
export class ProxyNodePair extends Construct {
  public readonly pair: PairModel;
  /** The tunnel endpoint nodes send to (deploy-time unless given). */
  public readonly haVip: string;
  /** The gateway (function-side) subnet's CIDR (deploy-time). */
  public readonly gatewaySubnetCidr: string;
  public readonly securityGroup: SecurityGroup;
  public readonly role: IamRole;
  public readonly members: [ProxyMember, ProxyMember];
  /** Floating NAT IP per tenant name (deploy-time unless given). */
  public readonly natIps: Record<string, string>;
  /**
   * The pair document: an SSM parameter (advanced tier) holding every tenant-specific file of
   * both members. Terraform updates it in place; each member's crossvpc-reconcile applies it.
   */
  public readonly configDocument: SsmParameter;

  constructor(scope: Construct, id: string, props: ProxyNodePairProps) {
    super(scope, id);
    const { model, provider } = props;
    const pair = model.pairs[props.pairIndex];
    if (!pair) {
      throw new CrossVpcError({ path: this.node.path, prop: 'pairIndex', value: props.pairIndex, problem: `the model has pairs 0..${model.pairs.length - 1}`, fix: 'pass an index of model.pairs' });
    }
    if (pair.tenants.length === 0) {
      throw new CrossVpcError({ path: this.node.path, prop: 'pairIndex', value: props.pairIndex, problem: `pair ${props.pairIndex} holds no active tenants, so it would run two idle instances`, fix: 'build only the pairs of pairsInUse(model), as CrossVpcNat does' });
    }
    const where = (prop: string) => ({ path: this.node.path, prop, isUnresolved: isUnresolvedValue });
    const conntrackMax = checkConntrackMax(props.conntrackMax ?? DEFAULT_CONNTRACK_MAX, where('conntrackMax'));
    const connLimitPerTenant = checkConnLimitPerTenant(props.connLimitPerTenant ?? DEFAULT_CONN_LIMIT_PER_TENANT, conntrackMax, where('connLimitPerTenant'));
    (props.sshCidrs ?? []).forEach((c, i) => parseCidr(c, where(`sshCidrs[${i}]`)));
    const metricsSources = props.metricsSources ?? [];
    if (!isUnresolvedValue(metricsSources) && !Array.isArray(metricsSources)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'metricsSources', value: metricsSources, problem: 'must be a list of CIDRs', fix: 'pass literal CIDRs, e.g. ["10.0.8.0/24"] (the Prometheus servers)' });
    }
    metricsSources.forEach((c, i) => parseCidr(c, where(`metricsSources[${i}]`)));
    const metricsSg = props.metricsSecurityGroupId;
    if (metricsSg !== undefined && !isUnresolvedValue(metricsSg) && !/^sg-[0-9a-f]{8}([0-9a-f]{9})?$/.test(metricsSg)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'metricsSecurityGroupId', value: metricsSg, problem: 'is not a security group id (sg- and 8 or 17 hex digits)', fix: "pass the Prometheus servers' security group id, e.g. a SecurityGroup's .id" });
    }
    const metricsPort = props.metricsPort ?? GATEWAY_METRICS_PORT;
    if (!isUnresolvedValue(metricsPort) && !(Number.isInteger(metricsPort) && metricsPort >= 1024 && metricsPort <= 65535 && metricsPort !== VXLAN_PORT && metricsPort !== CONNTRACKD_SYNC_PORT)) {
      throw new CrossVpcError({
        path: this.node.path, prop: 'metricsPort', value: metricsPort,
        problem: `must be an integer from 1024 to 65535, other than the tunnel's (${VXLAN_PORT}) and the session sync's (${CONNTRACKD_SYNC_PORT})`,
        fix: `use ${GATEWAY_METRICS_PORT} (the default, node_exporter's)`,
      });
    }
    const metrics = metricsSources.length > 0 || metricsSg !== undefined;
    this.pair = pair;
    const spec = props.rollingUpdate ?? 'none';
    const rolling = typeof spec === 'object' ? spec[props.pairIndex] ?? 'none' : spec;
    if (!['none', 'a', 'b'].includes(rolling)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'rollingUpdate', value: rolling, problem: 'must name at most one member', fix: "use 'none', 'a' or 'b'; roll the standby first, fail over, then roll the other" });
    }
    const pollSec = props.configPollIntervalSec ?? 5;
    if (!isUnresolvedValue(pollSec) && !(Number.isInteger(pollSec) && pollSec >= 1 && pollSec <= 300)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'configPollIntervalSec', value: pollSec, problem: 'must be an integer from 1 to 300 seconds', fix: 'use 5 (the default): a tenant change is then live within about 7 seconds' });
    }
    const maxDocBytes = props.maxConfigDocumentBytes ?? SSM_ADVANCED_VALUE_MAX_BYTES;
    if (!(Number.isInteger(maxDocBytes) && maxDocBytes > 0)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'maxConfigDocumentBytes', value: maxDocBytes, problem: 'must be a positive integer', fix: `leave it unset (${SSM_ADVANCED_VALUE_MAX_BYTES}, the SSM advanced tier's limit)` });
    }
    const advert = props.advertIntervalSec ?? 0.1;
    if (!(advert >= 0.01 && advert <= 40)) {
      throw new CrossVpcError({ path: this.node.path, prop: 'advertIntervalSec', value: advert, problem: 'VRRPv3 adverts range from 0.01 to 40 seconds', fix: 'leave it unset (0.1 s: traffic back within 1 s of a hard kill, npm run bench:failover) or use 0.3 on members short of CPU' });
    }
    const tags = { ...props.tags, 'crossvpc:pair': String(pair.index) };
    const p = pair.index;

    const subnet = new DataAwsSubnet(this, 'GatewaySubnet', { provider, id: model.gatewaySubnetId });
    this.gatewaySubnetCidr = subnet.cidrBlock;
    if (props.haVip !== undefined) parseIp(props.haVip, where('haVip'));
    this.haVip = props.haVip ?? Fn.cidrhost(subnet.cidrBlock, -(2 + p));
    new Ec2SubnetCidrReservation(this, 'HaVipReservation', {
      provider, subnetId: model.gatewaySubnetId, cidrBlock: `${this.haVip}/32`, reservationType: 'explicit', description: `crossvpc pair ${p} HaVip`,
      // A given HaVip is checked against the subnet at plan time; the default is a host of it by construction.
      lifecycle: props.haVip === undefined ? undefined : {
        precondition: [{
          condition: usableHostOf(props.haVip, subnet.cidrBlock),
          errorMessage: `crossvpc pair ${p}: HaVip ${props.haVip} (gateway.haVips[${p}]) must be a usable host of the gateway subnet ${model.gatewaySubnetId}: inside its CIDR, and not its network, broadcast or the three AWS-reserved addresses after the network. Pick a free address of that subnet, or leave haVips unset.`,
        }],
      },
    });

    // Function-side security group: tunnels only from nodes, VRRP and session sync only between members.
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      provider, vpcId: model.functionVpc.vpcId, namePrefix: `crossvpc-pair${p}-`,
      description: `crossvpc proxy pair ${p}: tunnels from nodes, VRRP and conntrackd between members`,
      tags: { ...tags, Name: `crossvpc-pair${p}-sg` }, lifecycle: { createBeforeDestroy: true },
    });
    const sg = this.securityGroup.id;
    const fromNodes = model.functionVpc.nodeSecurityGroupId
      ? [{ referencedSecurityGroupId: model.functionVpc.nodeSecurityGroupId }]
      : model.functionVpc.nodeCidrs.map((c) => ({ cidrIpv4: c }));
    fromNodes.forEach((src, i) => {
      new VpcSecurityGroupIngressRule(this, `TunnelFromNodes${i}`, {
        provider, securityGroupId: sg, description: `${model.tunnel} from cluster nodes`,
        ...(model.tunnel === 'vxlan' ? { ipProtocol: 'udp', fromPort: VXLAN_PORT, toPort: VXLAN_PORT } : { ipProtocol: '47' }),
        ...src,
      });
    });
    new VpcSecurityGroupIngressRule(this, 'VrrpFromPeer', { provider, securityGroupId: sg, referencedSecurityGroupId: sg, ipProtocol: '112', description: 'VRRP between members' });
    new VpcSecurityGroupIngressRule(this, 'SyncFromPeer', {
      provider, securityGroupId: sg, referencedSecurityGroupId: sg, ipProtocol: 'udp', fromPort: CONNTRACKD_SYNC_PORT, toPort: CONNTRACKD_SYNC_PORT, description: 'conntrackd session sync between members',
    });
    // Metrics: closed unless someone is named; the ruleset drops tunnels and tenant ENIs at input anyway.
    metricsSources.forEach((c, i) => {
      new VpcSecurityGroupIngressRule(this, `Metrics${i}`, { provider, securityGroupId: sg, cidrIpv4: c, ipProtocol: 'tcp', fromPort: metricsPort, toPort: metricsPort, description: 'Prometheus scrapes (node_exporter)' });
    });
    if (metricsSg !== undefined) {
      new VpcSecurityGroupIngressRule(this, 'MetricsFromGroup', { provider, securityGroupId: sg, referencedSecurityGroupId: metricsSg, ipProtocol: 'tcp', fromPort: metricsPort, toPort: metricsPort, description: 'Prometheus scrapes (node_exporter)' });
    }
    (props.sshCidrs ?? []).forEach((c, i) => {
      new VpcSecurityGroupIngressRule(this, `Ssh${i}`, { provider, securityGroupId: sg, cidrIpv4: c, ipProtocol: 'tcp', fromPort: 22, toPort: 22, description: 'SSH' });
    });
    if (model.functionVpc.nodeSecurityGroupId) {
      // Return tunnel traffic from the gateways to the nodes.
      new VpcSecurityGroupIngressRule(this, 'NodesFromGateways', {
        provider, securityGroupId: model.functionVpc.nodeSecurityGroupId, referencedSecurityGroupId: sg, description: `crossvpc pair ${p} ${model.tunnel} to nodes`,
        ...(model.tunnel === 'vxlan' ? { ipProtocol: 'udp', fromPort: VXLAN_PORT, toPort: VXLAN_PORT } : { ipProtocol: '47' }),
      });
    }
    // The egress default of a new group is "all"; members need the EC2 API, package mirrors and tenant VPCs.
    new VpcSecurityGroupEgressRule(this, 'EgressAll', {
      provider, securityGroupId: sg, cidrIpv4: '0.0.0.0/0', ipProtocol: '-1', description: 'EC2 API, package mirrors',
    });

    const placement = new PlacementGroup(this, 'Spread', { provider, name: `crossvpc-pair${p}-${this.node.addr.slice(0, 8)}`, strategy: 'spread', tags });
    // An instance-type token gives no name to guess the architecture from: read it at plan time.
    const typeIsToken = isUnresolvedValue(model.instanceType);
    const typeLabel = typeIsToken ? 'the instance type' : model.instanceType;
    const typeInfo = new DataAwsEc2InstanceType(this, 'InstanceTypeInfo', { provider, instanceType: model.instanceType });
    const arch = typeIsToken
      ? Token.asString(Fn.conditional(Fn.contains(typeInfo.supportedArchitectures, 'arm64'), 'arm64', 'amd64'))
      : isGraviton(model.instanceType) ? 'arm64' : 'amd64';
    const ami = props.amiId ?? new DataAwsSsmParameter(this, 'UbuntuAmi', { provider, name: UBUNTU_SSM(arch) }).insecureValue;

    // Primary ENIs first: each member's user data names its peer's address without a cycle.
    const primaries = (['a', 'b'] as const).map(
      (m) => new NetworkInterface(this, `Member${m.toUpperCase()}PrimaryEni`, {
        provider, subnetId: model.gatewaySubnetId, securityGroups: [sg], sourceDestCheck: false,
        description: `crossvpc pair ${p} member ${m} (function side)`, tags: { ...tags, 'crossvpc:member': m, Name: `crossvpc-pair${p}-${m}-primary` },
      }),
    );
    // Read once, like the tenant subnets' attributes below.
    const primaryRefs = primaries.map((e) => ({ id: e.id, arn: e.arn, ip: e.privateIp }));

    this.role = new IamRole(this, 'Role', {
      provider, namePrefix: `crossvpc-pair${p}-`,
      assumeRolePolicy: new DataAwsIamPolicyDocument(this, 'AssumeRole', {
        provider, statement: [{ actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: ['ec2.amazonaws.com'] }] }],
      }).json,
      tags,
    });
    const profile = new IamInstanceProfile(this, 'InstanceProfile', { provider, namePrefix: `crossvpc-pair${p}-`, role: this.role.name, tags });

    // Each attribute read once per tenant: cdktf captures a stack trace for every reference it
    // creates, and at 1,000 tenants re-reading them per member cost a tenth of a second.
    const tenantSubnets: Record<string, { readonly cidr: string; readonly routerIp: string; readonly az: string }> = {};
    this.natIps = {};
    for (const t of pair.tenants) {
      const s = new DataAwsSubnet(this, `Tenant-${t.name}-Subnet`, { provider, id: t.subnetId });
      const cidr = s.cidrBlock;
      tenantSubnets[t.name] = { cidr, routerIp: Fn.cidrhost(cidr, 1), az: s.availabilityZone };
      // Counting down per pair: tenants sharing a subnet on different pairs never collide.
      this.natIps[t.name] = t.natIp ?? Fn.cidrhost(cidr, -(2 + p));
      new Ec2SubnetCidrReservation(this, `Tenant-${t.name}-NatIpReservation`, {
        provider, subnetId: t.subnetId, cidrBlock: `${this.natIps[t.name]}/32`, reservationType: 'explicit', description: `crossvpc pair ${p} NAT IP of tenant ${t.name}`,
        // A given NAT IP is checked against the tenant subnet at plan time (its CIDR is a data
        // source); the default is a host of it by construction.
        lifecycle: t.natIp === undefined ? undefined : {
          precondition: [{
            condition: usableHostOf(t.natIp, cidr),
            errorMessage: `crossvpc tenant ${t.name}: natIp ${t.natIp} must be a usable host of the tenant subnet ${t.subnetId}: inside its CIDR, and not its network, broadcast or the three AWS-reserved addresses after the network. Pick a free address of that subnet, or leave natIp unset.`,
          }],
        },
      });
    }

    this.admitForwardReplies(pair, subnet.cidrBlock, provider);

    const members = (['a', 'b'] as const).map((m, i) => {
      // Nothing here may depend on the tenants: a tenant change must leave every instance as it is.
      const instance = new Instance(this, `Member${m.toUpperCase()}`, {
        provider, ami, instanceType: model.instanceType, keyName: props.keyName,
        primaryNetworkInterface: { networkInterfaceId: primaryRefs[i].id },
        iamInstanceProfile: profile.name, placementGroup: placement.name,
        metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 },
        tags: { ...tags, 'crossvpc:member': m, Name: `crossvpc-pair${p}-${m}` },
        // New user data or a new AMI replaces a member (both force a new instance); only the member
        // being rolled may take them, so an AMI release (the default AMI follows Canonical's
        // `current` parameter) never replaces both members in one apply.
        userDataReplaceOnChange: rolling === m,
        lifecycle: { ignoreChanges: rolling === m ? undefined : ['user_data_base64', 'ami'] },
      });
      return { name: m, instance, primaryEni: primaries[i], natEnis: {} as Record<string, NatEni> };
    }) as [ProxyMember, ProxyMember];
    this.members = members;

    const gatewaySubnetAz = model.gatewayAvailabilityZone ?? subnet.availabilityZone;
    const instanceIds = members.map((m) => m.instance.id);
    for (const t of pair.tenants) {
      const inGatewayAz = Op.eq(tenantSubnets[t.name].az, gatewaySubnetAz);
      for (const [i, member] of members.entries()) {
        member.natEnis[t.name] = new NatEni(this, `Tenant-${t.name}-Member${member.name.toUpperCase()}`, {
          provider, tenantName: t.name, vpcId: t.vpcId, subnetId: t.subnetId, instanceId: instanceIds[i],
          deviceIndex: t.slot, egressCidrs: t.destinations, tags, name: `crossvpc-pair${p}-${t.name}-${member.name}`,
          inboundPorts: t.inbound.map((f) => ({ protocol: f.protocol, port: f.port })), inboundCidrs: t.cidrs,
          attachmentPreconditions: [{
            condition: inGatewayAz,
            errorMessage: `crossvpc tenant ${t.name}: its subnet ${t.subnetId} must be in the gateway subnet's AZ, because EC2 attaches a multi-VPC ENI only within its own AZ.`,
          }],
        });
      }
    }

    // The role may move exactly this pair's floating IPs: only onto this pair's ENIs.
    const enis = [...primaryRefs.map((e) => e.arn), ...members.flatMap((m) => Object.values(m.natEnis).map((n) => n.eniArn))];
    new IamRolePolicy(this, 'MoveFloatingIps', {
      provider, role: this.role.id,
      policy: new DataAwsIamPolicyDocument(this, 'MoveFloatingIpsPolicy', {
        provider, statement: [{ sid: 'MoveFloatingIps', actions: ['ec2:AssignPrivateIpAddresses'], resources: enis }],
      }).json,
    });

    new EipEgress(this, 'EipEgress', {
      provider, pair, gatewaySubnetId: model.gatewaySubnetId, gatewaySubnetCidr: subnet.cidrBlock, haVip: this.haVip, role: this.role,
      primaryEniArns: primaryRefs.map((e) => e.arn), usableHostOf,
    });

    const configParameter = `/crossvpc/pair${p}-${this.node.addr.slice(0, 12)}`;
    const specs = members.map((member, i) => {
      const tenants: MemberBindings['tenants'] = {};
      for (const t of pair.tenants) {
        const eni = member.natEnis[t.name];
        const subnet = tenantSubnets[t.name];
        tenants[t.name] = { natIp: this.natIps[t.name], eniId: eni.eniId, eniMac: eni.macAddress, eniIp: eni.privateIp, subnetCidr: subnet.cidr, routerIp: subnet.routerIp };
      }
      return buildGatewayMemberSpec(model, p, member.name, {
        selfIp: primaryRefs[i].ip, peerIp: primaryRefs[1 - i].ip, selfEniId: primaryRefs[i].id, peerEniId: primaryRefs[1 - i].id, haVip: this.haVip, tenants,
      }, { advertIntervalSec: advert, connLimitPerTenant, configParameter, configPollSec: pollSec, metricsPort, metrics });
    }) as [GatewayMemberSpec, GatewayMemberSpec];

    // Everything tenant-specific lives in the pair document, updated in place on apply.
    const document = renderPairDocumentText(specs[0], specs[1]);
    const docBytes = packedDocumentBytes(document);
    if (docBytes > maxDocBytes) {
      throw new CrossVpcError({
        path: this.node.path, prop: 'tenants', value: pair.tenants.map((t) => t.name),
        problem: `pair ${p}'s configuration document is about ${docBytes} bytes after gzip and base64, over the ${maxDocBytes}-byte limit (SSM's advanced tier holds ${SSM_ADVANCED_VALUE_MAX_BYTES})`,
        fix: 'lower gateway.tenantsPerMember so fewer tenants share a pair, or give those tenants fewer allowedDestinations',
      });
    }
    this.configDocument = new SsmParameter(this, 'ConfigDocument', {
      provider, name: configParameter, type: 'String', tier: 'Advanced', dataType: 'text',
      description: `crossvpc pair ${p} configuration document (base64 gzip JSON); read by the pair's members`,
      insecureValue: packBase64Gzip(document), tags,
      // On the document, not the instances: the tenant count changes with every onboarding, and
      // an instance's configuration must not (it names its members' only replace-free state).
      lifecycle: {
        precondition: [{
          condition: Op.gte(typeInfo.maximumNetworkInterfaces, pair.tenants.length + 1),
          errorMessage: `crossvpc pair ${p}: ${typeLabel} takes fewer network interfaces than the ${pair.tenants.length} tenants + 1 primary placed on it; set gateway.tenantsPerMember to the real maximum minus one, or pick a larger type.`,
        }],
      },
    });
    // The members may read exactly this parameter, nothing else in Parameter Store.
    new IamRolePolicy(this, 'ReadConfigDocument', {
      provider, role: this.role.id,
      policy: new DataAwsIamPolicyDocument(this, 'ReadConfigDocumentPolicy', {
        provider, statement: [{ sid: 'ReadPairDocument', actions: ['ssm:GetParameter'], resources: [this.configDocument.arn] }],
      }).json,
    });

    // User data: scripts, units and member settings, constant for the member's life.
    members.forEach((member, i) => {
      const files = renderGatewayFiles(specs[i], { conntrackMax });
      const cloudConfig = renderCloudConfig(files, renderGatewayUnits(metrics).map((u) => u.name));
      const packed = packUserData(cloudConfig);
      // EC2 takes at most 16 KB of user data; cloud-init reads gzip natively, so it ships compressed.
      const estimate = estimatedUserDataBytes(cloudConfig, packed);
      const limit = props.maxUserDataBytes ?? MAX_USER_DATA_BYTES;
      if (estimate > limit) {
        throw new CrossVpcError({
          path: this.node.path, prop: 'maxUserDataBytes', value: limit,
          problem: `member ${member.name}'s gzipped user data is about ${estimate} bytes, over the ${limit}-byte limit (EC2 takes ${MAX_USER_DATA_BYTES})`,
          fix: `leave maxUserDataBytes unset (${MAX_USER_DATA_BYTES}); user data holds no tenant data, so this limit is reached only when it is lowered`,
        });
      }
      member.instance.userDataBase64 = userDataExpression(this, packed);
    });
  }

  /**
   * Port forwards (seed 001): the targets' replies come to the HaVip on the tenant's SNAT ports.
   * The member that opened the flow has it tracked, but after a failover the other member
   * holds the HaVip with no record of it in EC2's connection tracking: admit them here. The plan
   * checks each target is neither the HaVip nor a reserved host of the gateway subnet. One rule
   * per (protocol, port), named by it: removing one forward never replaces the others.
   */
  private admitForwardReplies(pair: PairModel, gatewaySubnetCidr: string, provider: AwsConstructProps['provider']): void {
    for (const t of pair.tenants) {
      const ports = t.inbound.length ? inboundSnatPorts(t.slot) : undefined;
      t.inbound.forEach((f) => {
        new VpcSecurityGroupIngressRule(this, `Tenant-${t.name}-ForwardReplies-${f.protocol}-${f.port}`, {
          provider, securityGroupId: this.securityGroup.id, cidrIpv4: `${f.targetIp}/32`, ipProtocol: f.protocol, fromPort: ports!.from, toPort: ports!.to,
          description: `replies of tenant ${t.name} port forward ${f.protocol}/${f.port}`,
          lifecycle: {
            precondition: [{
              condition: Op.not(Fn.contains([this.haVip, ...AWS_RESERVED_HOSTS.map((h) => Fn.cidrhost(gatewaySubnetCidr, h))], f.targetIp)),
              errorMessage: `crossvpc tenant ${t.name}: port forward target ${f.targetIp} is pair ${pair.index}'s HaVip or an AWS-reserved address of the gateway subnet (network, router, DNS, future use, broadcast); give the address of the service in the function VPC.`,
            }],
          },
        });
      });
    }
  }
}
