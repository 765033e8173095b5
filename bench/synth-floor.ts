/**
 * The synth benchmark's floor: the same resource set as our stack (each Terraform type, as
 * many of each) built with plain cdktf and the provider classes: no model, no placement,
 * no rendering, fixed short attribute values. Each block references others the way any
 * hand-written stack of these types would (attachments name an ENI and an instance, rules
 * a group, ...), so cdktf's token and reference costs are in the floor too. What our stack
 * costs above this is ours.
 */
import { TerraformProvider, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { ClusterRoleBindingV1 } from '@cdktf/provider-kubernetes/lib/cluster-role-binding-v1';
import { ClusterRoleV1 } from '@cdktf/provider-kubernetes/lib/cluster-role-v1';
import { ConfigMapV1 } from '@cdktf/provider-kubernetes/lib/config-map-v1';
import { DaemonSetV1 } from '@cdktf/provider-kubernetes/lib/daemon-set-v1';
import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1';
import { ServiceAccountV1 } from '@cdktf/provider-kubernetes/lib/service-account-v1';
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
import { NetworkInterfaceAttachmentA as NetworkInterfaceAttachment } from '@cdktf/provider-aws/lib/network-interface-attachment';
import { PlacementGroup } from '@cdktf/provider-aws/lib/placement-group';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';

/** Blocks per Terraform address prefix: `resource.aws_instance`, `data.aws_subnet`. */
export type BlockCounts = Readonly<Record<string, number>>;

/** Counts the resource and data blocks of a synthesized cdk.tf.json, by `resource.<type>` / `data.<type>`. */
export function blockCounts(plan: any): BlockCounts {
  const counts: Record<string, number> = {};
  for (const section of ['resource', 'data']) {
    for (const [type, blocks] of Object.entries<Record<string, unknown>>(plan[section] ?? {})) counts[`${section}.${type}`] = Object.keys(blocks).length;
  }
  return counts;
}

/** What a factory may refer to: the i-th block already made of a type (round robin). */
type Pick = (address: string, i: number) => any;
type Factory = (scope: Construct, id: string, i: number, pick: Pick, provider: { aws: TerraformProvider; k8s: TerraformProvider }) => unknown;

const hex = (i: number) => i.toString(16).padStart(17, '0');
const labels = { app: 'floor' };

/**
 * One factory per type our stack creates, in an order where every reference points back.
 * A type missing here fails the floor loudly: the floor must hold the same set.
 */
const FACTORIES: ReadonlyArray<[string, Factory]> = [
  ['data.aws_ec2_instance_type', (s, id, i, _, p) => new DataAwsEc2InstanceType(s, id, { provider: p.aws, instanceType: 'c6in.xlarge' })],
  ['data.aws_ssm_parameter', (s, id, i, _, p) => new DataAwsSsmParameter(s, id, { provider: p.aws, name: '/aws/service/debian/images/cloud/bookworm/latest/amd64' })],
  ['data.aws_subnet', (s, id, i, _, p) => new DataAwsSubnet(s, id, { provider: p.aws, id: `subnet-${hex(i)}` })],
  ['data.aws_iam_policy_document', (s, id, i, _, p) => new DataAwsIamPolicyDocument(s, id, { provider: p.aws, statement: [{ actions: ['ec2:AssignPrivateIpAddresses'], resources: ['*'] }] })],
  ['resource.aws_placement_group', (s, id, i, _, p) => new PlacementGroup(s, id, { provider: p.aws, name: `floor-${i}`, strategy: 'spread' })],
  ['resource.aws_iam_role', (s, id, i, pick, p) => new IamRole(s, id, { provider: p.aws, name: `floor-${i}`, assumeRolePolicy: pick('data.aws_iam_policy_document', i).json })],
  ['resource.aws_iam_role_policy', (s, id, i, pick, p) => new IamRolePolicy(s, id, { provider: p.aws, role: pick('resource.aws_iam_role', i).id, policy: pick('data.aws_iam_policy_document', i).json })],
  ['resource.aws_iam_instance_profile', (s, id, i, pick, p) => new IamInstanceProfile(s, id, { provider: p.aws, name: `floor-${i}`, role: pick('resource.aws_iam_role', i).name })],
  ['resource.aws_security_group', (s, id, i, pick, p) => new SecurityGroup(s, id, { provider: p.aws, name: `floor-${i}`, description: 'floor', vpcId: pick('data.aws_subnet', i).vpcId, tags: { Name: `floor-${i}` } })],
  ['resource.aws_vpc_security_group_ingress_rule', (s, id, i, pick, p) => new VpcSecurityGroupIngressRule(s, id, { provider: p.aws, securityGroupId: pick('resource.aws_security_group', i).id, ipProtocol: 'udp', fromPort: 4789, toPort: 4789, cidrIpv4: '10.0.1.0/24' })],
  ['resource.aws_vpc_security_group_egress_rule', (s, id, i, pick, p) => new VpcSecurityGroupEgressRule(s, id, { provider: p.aws, securityGroupId: pick('resource.aws_security_group', i).id, ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' })],
  ['resource.aws_ec2_subnet_cidr_reservation', (s, id, i, pick, p) => new Ec2SubnetCidrReservation(s, id, { provider: p.aws, subnetId: pick('data.aws_subnet', i).id, cidrBlock: '172.16.255.252/30', reservationType: 'explicit' })],
  ['resource.aws_network_interface', (s, id, i, pick, p) => new NetworkInterface(s, id, { provider: p.aws, subnetId: pick('data.aws_subnet', i).id, securityGroups: [pick('resource.aws_security_group', i).id], sourceDestCheck: false, tags: { Name: `floor-${i}` } })],
  ['resource.aws_ssm_parameter', (s, id, i, _, p) => new SsmParameter(s, id, { provider: p.aws, name: `/floor/${i}`, type: 'String', tier: 'Advanced', insecureValue: 'floor' })],
  ['resource.aws_instance', (s, id, i, pick, p) => new Instance(s, id, {
    provider: p.aws, ami: pick('data.aws_ssm_parameter', i).value, instanceType: pick('data.aws_ec2_instance_type', i).instanceType,
    iamInstanceProfile: pick('resource.aws_iam_instance_profile', i).name, placementGroup: pick('resource.aws_placement_group', i).name,
    primaryNetworkInterface: { networkInterfaceId: pick('resource.aws_network_interface', i).id }, userDataBase64: 'Zmxvb3I=',
    metadataOptions: { httpTokens: 'required' }, tags: { Name: `floor-${i}` },
  })],
  ['resource.aws_network_interface_attachment', (s, id, i, pick, p) => new NetworkInterfaceAttachment(s, id, { provider: p.aws, instanceId: pick('resource.aws_instance', i).id, networkInterfaceId: pick('resource.aws_network_interface', i).id, deviceIndex: 1 + (i % 3) })],
  ['resource.kubernetes_namespace_v1', (s, id, i, _, p) => new NamespaceV1(s, id, { provider: p.k8s, metadata: { name: `floor-${i}`, labels } })],
  ['resource.kubernetes_service_account_v1', (s, id, i, pick, p) => new ServiceAccountV1(s, id, { provider: p.k8s, metadata: { name: 'floor', namespace: pick('resource.kubernetes_namespace_v1', i).metadata.name } })],
  ['resource.kubernetes_cluster_role_v1', (s, id, i, _, p) => new ClusterRoleV1(s, id, { provider: p.k8s, metadata: { name: `floor-${i}` }, rule: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] })],
  ['resource.kubernetes_cluster_role_binding_v1', (s, id, i, pick, p) => new ClusterRoleBindingV1(s, id, {
    provider: p.k8s, metadata: { name: `floor-${i}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: pick('resource.kubernetes_cluster_role_v1', i).metadata.name },
    subject: [{ kind: 'ServiceAccount', name: pick('resource.kubernetes_service_account_v1', i).metadata.name, namespace: 'floor' }],
  })],
  ['resource.kubernetes_config_map_v1', (s, id, i, pick, p) => new ConfigMapV1(s, id, { provider: p.k8s, metadata: { name: `floor-${i}`, namespace: pick('resource.kubernetes_namespace_v1', i).metadata.name }, data: { 'tenants.json': '{}' } })],
  ['resource.kubernetes_daemon_set_v1', (s, id, i, pick, p) => new DaemonSetV1(s, id, {
    provider: p.k8s, metadata: { name: `floor-${i}`, namespace: pick('resource.kubernetes_namespace_v1', i).metadata.name },
    spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { hostNetwork: true, container: [{ name: 'agent', image: 'floor:1' }] } } },
  })],
];

/** The floor stack: `counts` blocks of each type; throws on a type it has no factory for. */
export class FloorStack extends TerraformStack {
  constructor(scope: Construct, id: string, counts: BlockCounts) {
    super(scope, id);
    const unknown = Object.keys(counts).filter((a) => !FACTORIES.some(([known]) => known === a));
    if (unknown.length) throw new Error(`the synth floor has no factory for ${unknown.join(', ')}: add one to bench/synth-floor.ts`);
    const provider = { aws: new AwsProvider(this, 'aws', { region: 'eu-west-1' }), k8s: new KubernetesProvider(this, 'k8s', {}) };
    const made = new Map<string, any[]>();
    const pick: Pick = (address, i) => {
      const list = made.get(address);
      if (!list?.length) throw new Error(`the synth floor refers to ${address} before making any`);
      return list[i % list.length];
    };
    for (const [address, factory] of FACTORIES) {
      const list: any[] = [];
      made.set(address, list);
      for (let i = 0; i < (counts[address] ?? 0); i++) list.push(factory(this, `${address.replace(/\./g, '-')}-${i}`, i, pick, provider));
    }
  }
}
