import { App, Testing, TerraformStack, TerraformVariable } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { NetworkInterface } from '@cdktf/provider-aws/lib/network-interface';
import { NetworkInterfaceAttachmentA } from '@cdktf/provider-aws/lib/network-interface-attachment';
import { DaemonSetV1 } from '@cdktf/provider-kubernetes/lib/daemon-set-v1';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { CrossVpcNat, CrossVpcError, FunctionVpcLink, ProxyNodePair, ProxyNodePairOptions } from '../lib';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';
import { asDeployed, documentOf, expectCrossVpcError, synthExample, synthJson, userDataOf } from './helpers';
import { MAX_USER_DATA_BYTES, packedUserDataBytes } from '../lib/render/user-data';

const gamma = { name: 'gamma', vpcId: 'vpc-0c3c3c3c3c3c3c3c3', subnetId: 'subnet-0c3c3c3c3c3c3c3c3', cidrs: ['172.16.0.0/16'], vni: 1003 };

describe('example stack', () => {
  const out = synthExample();

  test('NAT ENIs: tenant subnet, source/dest check off, attached per member', () => {
    expect(out).toHaveResourceWithProperties(NetworkInterface, { subnet_id: 'subnet-0a1a1a1a1a1a1a1a1', source_dest_check: false });
    expect(out).toHaveResourceWithProperties(NetworkInterface, { subnet_id: 'subnet-0b2b2b2b2b2b2b2b2', source_dest_check: false });
    expect(out).toHaveResourceWithProperties(NetworkInterfaceAttachmentA, { device_index: 1 });
    expect(out).toHaveResourceWithProperties(NetworkInterfaceAttachmentA, { device_index: 2 });
    const json = JSON.parse(out);
    expect(Object.keys(json.resource.aws_network_interface_attachment)).toHaveLength(4);
  });

  test('members use primaryNetworkInterface, IMDSv2 and a spread placement group', () => {
    const json = JSON.parse(out);
    const instances = Object.values<any>(json.resource.aws_instance);
    expect(instances).toHaveLength(2);
    for (const i of instances) {
      expect(i.primary_network_interface.network_interface_id).toMatch(/^\$\{aws_network_interface\..*PrimaryEni.*\.id\}$/);
      expect(i.network_interface).toBeUndefined();
      expect(i.metadata_options.http_tokens).toBe('required');
      expect(i.placement_group).toMatch(/aws_placement_group/);
      expect(i.ami).toMatch(/data\.aws_ssm_parameter/);
      expect(i.lifecycle).toEqual({ ignore_changes: ['user_data_base64', 'ami'] });
    }
    // The ENI-capacity check depends on the tenant count, so it sits on the pair document, never on an instance.
    expect(Object.values<any>(json.resource.aws_ssm_parameter)[0].lifecycle.precondition[0].condition).toMatch(/maximum_network_interfaces >= 3/);
    expect(out).toHaveResourceWithProperties(Instance, { instance_type: 'c6in.xlarge' });
    expect(Object.values<any>(json.data.aws_ssm_parameter)[0].name).toBe('/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id');
    expect(Object.values<any>(json.resource.aws_placement_group)[0].strategy).toBe('spread');
  });

  test('security groups: tunnel only from nodes, VRRP and sync only between members, no SSH', () => {
    const rules = Object.values<any>(JSON.parse(out).resource.aws_vpc_security_group_ingress_rule);
    const tunnel = rules.find((r) => r.description === 'vxlan from cluster nodes');
    expect(tunnel).toMatchObject({ ip_protocol: 'udp', from_port: 4789, to_port: 4789, referenced_security_group_id: 'sg-0f00000000000e0de' });
    const vrrp = rules.find((r) => r.ip_protocol === '112');
    expect(vrrp.referenced_security_group_id).toBe(vrrp.security_group_id);
    const sync = rules.find((r) => r.from_port === 3780);
    expect(sync.referenced_security_group_id).toBe(sync.security_group_id);
    expect(rules.some((r) => r.from_port === 22)).toBe(false);
    const natSgs = Object.values<any>(JSON.parse(out).resource.aws_security_group).filter((g) => /NAT ENI/.test(g.description));
    expect(natSgs).toHaveLength(4);
    for (const g of natSgs) expect(g.ingress).toEqual([]);
  });

  test('IAM: only AssignPrivateIpAddresses, only on this pair\'s ENIs', () => {
    const json = JSON.parse(out);
    const doc = Object.entries<any>(json.data.aws_iam_policy_document).find(([k]) => k.includes('MoveFloatingIps'))![1];
    expect(doc.statement).toHaveLength(1);
    expect(doc.statement[0].actions).toEqual(['ec2:AssignPrivateIpAddresses']);
    expect(doc.statement[0].resources).toHaveLength(6);
    for (const r of doc.statement[0].resources) expect(r).toMatch(/^\$\{aws_network_interface\.[^.]+\.arn\}$/);
  });

  test('pair document: one advanced-tier SSM parameter per pair, readable by exactly that pair\'s role', () => {
    const json = JSON.parse(out);
    const params = Object.entries<any>(json.resource.aws_ssm_parameter);
    expect(params).toHaveLength(1);
    const [id, p] = params[0];
    expect(p).toMatchObject({ type: 'String', tier: 'Advanced', data_type: 'text', tags: { 'crossvpc:pair': '0' } });
    expect(p.name).toMatch(/^\/crossvpc\/pair0-[0-9a-f]{12}$/);
    expect(p.insecure_value).toMatch(/^\$\{base64gzip\("\{\\"format\\":1,/);
    // Least privilege: one statement, one action, this parameter's ARN only, attached to this pair's role only.
    const readers = Object.entries<any>(json.data.aws_iam_policy_document).filter(([, d]) => JSON.stringify(d).includes('ssm:'));
    expect(readers).toHaveLength(1);
    expect(readers[0][1].statement).toEqual([{ sid: 'ReadPairDocument', actions: ['ssm:GetParameter'], resources: [`\${aws_ssm_parameter.${id}.arn}`] }]);
    const policies = Object.values<any>(json.resource.aws_iam_role_policy).filter((r) => r.policy === `\${data.aws_iam_policy_document.${readers[0][0]}.json}`);
    expect(policies).toHaveLength(1);
    const role = /aws_iam_role\.([^.]+)\.id/.exec(policies[0].role)![1];
    const profileRoles = Object.values<any>(json.resource.aws_iam_instance_profile).map((x) => x.role);
    expect(profileRoles).toEqual([`\${aws_iam_role.${role}.name}`]);
    // The members' user data names exactly this parameter, and holds no tenant.
    for (const i of Object.values<any>(json.resource.aws_instance)) {
      const ud = userDataOf(i, json);
      expect(ud).toContain(`CONFIG_PARAMETER='${p.name}'`);
      expect(ud).not.toMatch(/alpha|beta|path: \/etc\/crossvpc\/(tenants\.tsv|ruleset\.nft)/);
    }
    const doc = documentOf(json);
    expect(JSON.parse(doc).members.a.tenants).toMatch(/^#name\tvni\t/);
  });

  test('pair document: two pairs, two parameters, each role reads only its own', () => {
    const json = synthJson({ extraTenants: [{ ...gamma, pair: 1 }], gateway: { pairCount: 2 } });
    const params = Object.entries<any>(json.resource.aws_ssm_parameter).map(([id, p]) => ({ id, pair: p.tags['crossvpc:pair'], name: p.name }));
    expect(params.map((p) => p.pair).sort()).toEqual(['0', '1']);
    expect(new Set(params.map((p) => p.name)).size).toBe(2);
    const readers = Object.values<any>(json.data.aws_iam_policy_document).filter((d) => JSON.stringify(d).includes('ssm:'));
    expect(readers.map((d) => d.statement[0].resources).sort()).toEqual(params.map((p) => [`\${aws_ssm_parameter.${p.id}.arn}`]).sort());
    expect(JSON.parse(documentOf(json, 1)).members.a.tenants).toMatch(/\ngamma\t/);
    expect(JSON.parse(documentOf(json, 0)).members.a.tenants).not.toMatch(/gamma/);
  });

  test('user data: references resolve in Terraform, literal ${ is escaped', () => {
    const json = JSON.parse(out);
    for (const i of Object.values<any>(json.resource.aws_instance)) {
      expect(i.user_data).toBeUndefined();
      expect(i.user_data_base64).toMatch(/^\$\{base64gzip\("#cloud-config\\n/);
      const ud = userDataOf(i, json);
      expect(ud.startsWith('#cloud-config\n')).toBe(true);
      // EC2 takes 16 KB of user data in raw form (the gzip bytes, before base64); cloud-init gunzips it.
      expect(packedUserDataBytes(asDeployed(ud))).toBeLessThan(MAX_USER_DATA_BYTES);
      // Every unescaped interpolation is a reference to something in this plan.
      const refs = ud.match(/(?<!\$)\$\{[^}]*\}/g) ?? [];
      expect(refs.length).toBeGreaterThan(5);
      for (const r of refs) expect(r).toMatch(/^\$\{(aws_network_interface|data\.aws_subnet|cidrhost\(data\.aws_subnet)[^}]*\}$/);
      expect(ud).toContain('$${');
      expect(ud).not.toMatch(/(?<!%)%\{/);
      expect(ud).not.toContain('TfToken');
    }
  });

  test('FunctionVpcLink: typed V1 resources, NET_ADMIN only, tenant table', () => {
    expect(out).toHaveResourceWithProperties(DaemonSetV1, {});
    const json = JSON.parse(out);
    const ds = Object.values<any>(json.resource.kubernetes_daemon_set_v1)[0];
    const pod = ds.spec.template.spec;
    expect(pod.host_network).toBe(true);
    expect(pod.container[0].security_context).toMatchObject({ privileged: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } });
    const role = Object.values<any>(json.resource.kubernetes_cluster_role_v1)[0];
    expect(role.rule).toEqual([{ api_groups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    const cm = Object.values<any>(json.resource.kubernetes_config_map_v1)[0];
    const table = JSON.parse(cm.data['tenants.json'].replace(/\$\{[^}]*\}/g, 'X'));
    expect(table.tenants.map((t: any) => [t.name, t.vni, t.cidrs, t.gatewayMac, t.haVip])).toEqual([
      ['alpha', 1001, ['172.16.0.0/16'], '0a:00:00:03:e9:01', 'X'],
      ['beta', 1002, ['172.16.0.0/16'], '0a:00:00:03:ea:01', 'X'],
    ]);
    expect(table.mtu).toBe(8951);
    expect(Object.keys(json.resource)).not.toContain('kubernetes_manifest');
  });

  test('FunctionVpcLink: the agent serves /metrics and /healthz on the metrics host port, which the probes use', () => {
    const c = Object.values<any>(JSON.parse(out).resource.kubernetes_daemon_set_v1)[0].spec.template.spec.container[0];
    expect(c.args.slice(-2)).toEqual(['--metrics-addr', ':9740']);
    expect(c.port).toEqual([{ name: 'metrics', container_port: 9740, host_port: 9740, protocol: 'TCP' }]);
    for (const probe of ['startup_probe', 'readiness_probe', 'liveness_probe']) expect(c[probe].http_get).toEqual({ path: '/healthz', port: 'metrics' });
  });

  test('Name tags on every ENI and security group (and instance), one scheme, no two alike', () => {
    const json = JSON.parse(out);
    const names = (type: string) => Object.values<any>(json.resource[type]).map((r) => r.tags?.Name);
    expect(names('aws_network_interface').sort()).toEqual([
      'crossvpc-pair0-a-primary', 'crossvpc-pair0-alpha-a', 'crossvpc-pair0-alpha-b', 'crossvpc-pair0-b-primary', 'crossvpc-pair0-beta-a', 'crossvpc-pair0-beta-b',
    ]);
    expect(names('aws_security_group').sort()).toEqual([
      'crossvpc-pair0-alpha-a-sg', 'crossvpc-pair0-alpha-b-sg', 'crossvpc-pair0-beta-a-sg', 'crossvpc-pair0-beta-b-sg', 'crossvpc-pair0-sg',
    ]);
    expect(names('aws_instance').sort()).toEqual(['crossvpc-pair0-a', 'crossvpc-pair0-b']);
    // Each NAT ENI and its group carry the tenant and member they serve.
    for (const eni of Object.values<any>(json.resource.aws_network_interface).filter((e) => e.tags['crossvpc:tenant'])) {
      const sgRef = /aws_security_group\.([^.]+)\.id/.exec(eni.security_groups[0])![1];
      expect(json.resource.aws_security_group[sgRef].tags.Name).toBe(`${eni.tags.Name}-sg`);
      expect(eni.tags.Name).toMatch(new RegExp(`^crossvpc-pair0-${eni.tags['crossvpc:tenant']}-[ab]$`));
    }
  });

  test('user tags reach every ENI and security group; the constructs\' Name wins over a user Name', () => {
    const json = synthJson({ tags: { Name: 'mine', team: 'net' } });
    for (const type of ['aws_network_interface', 'aws_security_group', 'aws_instance']) {
      for (const r of Object.values<any>(json.resource[type])) {
        expect(r.tags.team).toBe('net');
        expect(r.tags.Name).toMatch(/^crossvpc-pair0-/);
      }
    }
  });

  test('no Terraform outputs by default', () => {
    expect(JSON.parse(out).output).toBeUndefined();
  });

  test('outputs: opted in, the HaVip of each pair and each tenant\'s NAT IP (deploy-time values)', () => {
    const json = synthJson({ outputs: true });
    expect(Object.keys(json.output).sort()).toEqual([
      'crossvpc-CrossVpc-pair0-havip', 'crossvpc-CrossVpc-tenant-alpha-nat-ip', 'crossvpc-CrossVpc-tenant-beta-nat-ip',
    ]);
    const o = json.output;
    expect(o['crossvpc-CrossVpc-pair0-havip'].value).toMatch(/^\$\{cidrhost\(data\.aws_subnet\.CrossVpc_Pair0_GatewaySubnet_[^.]+\.cidr_block, -2\)\}$/);
    expect(o['crossvpc-CrossVpc-tenant-alpha-nat-ip'].value).toMatch(/^\$\{cidrhost\(data\.aws_subnet\.CrossVpc_Pair0_Tenant-alpha-Subnet_[^.]+\.cidr_block, -2\)\}$/);
    expect(o['crossvpc-CrossVpc-tenant-beta-nat-ip'].value).toMatch(/Tenant-beta-Subnet/);
    // The same expressions the resources use: the HaVip reservation and the agent's table.
    const reservations = Object.values<any>(json.resource.aws_ec2_subnet_cidr_reservation).map((r) => r.cidr_block);
    for (const v of Object.values<any>(o)) expect(reservations).toContain(`${v.value}/32`);
    expect(o['crossvpc-CrossVpc-pair0-havip'].description).toMatch(/HaVip/);
    expect(o['crossvpc-CrossVpc-tenant-alpha-nat-ip'].description).toMatch(/tenant alpha.*allow/);
    for (const v of Object.values<any>(o)) expect(v.sensitive).toBeUndefined();
  });

  test('outputs: given addresses come out as literals; the construct id is made a valid output name', () => {
    const app = Testing.app();
    const s = new TerraformStack(app, 'S');
    new CrossVpcNat(s, 'Nat.prod', {
      functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
      gateway: { subnetId: 'subnet-g', haVips: ['10.0.255.200'] },
      tenants: [{ name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], natIp: '172.16.255.9' }],
      outputs: true,
    });
    const json = JSON.parse(Testing.synth(s));
    expect(json.output).toEqual({
      'crossvpc-Nat_prod-pair0-havip': expect.objectContaining({ value: '10.0.255.200' }),
      'crossvpc-Nat_prod-tenant-alpha-nat-ip': expect.objectContaining({ value: '172.16.255.9' }),
    });
  });

  test('outputs: two CrossVpcNat of one id in one stack are refused rather than sharing output names (ids that merely share a prefix are fine)', () => {
    const s = new TerraformStack(Testing.app(), 'S');
    const nat = (group: string, vpcId: string) => new CrossVpcNat(new Construct(s, group), 'Nat', {
      functionVpc: { vpcId, nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' }, gateway: { subnetId: `subnet-${group}` },
      tenants: [{ name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'] }], outputs: true,
    });
    nat('A', 'vpc-1');
    new CrossVpcNat(new Construct(s, 'C'), 'Nat-pair0', {
      functionVpc: { vpcId: 'vpc-3', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' }, gateway: { subnetId: 'subnet-C' },
      tenants: [{ name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'] }], outputs: true,
    });
    expectCrossVpcError(() => nat('B', 'vpc-2'), [/invalid outputs = true/, /crossvpc-Nat-pair0-havip \(S\/A\/Nat\//, /give this CrossVpcNat an id/], 'S/B/Nat');
  });

  test('snapshot of the synthesized example', () => {
    expect(out).toMatchSnapshot();
  });

  test('synthesizing twice gives byte-identical output', () => {
    expect(synthExample()).toBe(out);
  });

  test('validations pass: constructs rely on the stack\'s providers', () => {
    const app = Testing.app();
    const stack = new OverlappingTenantsStack(app, 'validated');
    expect(() => Testing.synth(stack, true)).not.toThrow();
  });
});

describe('stability', () => {
  /** Every resource and data source, with its full configuration, keyed by logical id. */
  function flat(json: any): Map<string, string> {
    const m = new Map<string, string>();
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byId] of Object.entries<any>(json[kind] ?? {})) {
        for (const [id, cfg] of Object.entries<any>(byId)) m.set(`${kind}.${type}.${id}`, JSON.stringify(cfg));
      }
    }
    for (const [name, cfg] of Object.entries<any>(json.output ?? {})) m.set(`output.${name}`, JSON.stringify(cfg));
    return m;
  }
  // Resources whose content legitimately lists all tenants of the pair (never an instance: user data is constant).
  const sharedByPair = /ConfigDocument|MoveFloatingIps|kubernetes_config_map_v1/;

  test('adding a tenant changes no other tenant\'s resources, addresses or VNI', () => {
    const before = flat(synthJson({ outputs: true }));
    const after = flat(synthJson({ extraTenants: [gamma], outputs: true }));
    expect([...before.keys()].filter((k) => k.startsWith('output.'))).toHaveLength(3);
    expect(after.get('output.crossvpc-CrossVpc-tenant-gamma-nat-ip')).toBeDefined();
    const changed = [...before.keys()].filter((k) => after.get(k) !== before.get(k));
    const removed = [...before.keys()].filter((k) => !after.has(k));
    const added = [...after.keys()].filter((k) => !before.has(k));
    expect(removed).toEqual([]);
    expect(changed.filter((k) => !sharedByPair.test(k))).toEqual([]);
    expect(changed.some((k) => k.includes('aws_ssm_parameter'))).toBe(true);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((k) => k.includes('gamma'))).toBe(true);
  });

  test('retiring a tenant removes only its own resources', () => {
    const base = [
      { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'] },
      { name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'] },
      { name: 'gamma', vpcId: 'vpc-c', subnetId: 'subnet-c', cidrs: ['172.16.0.0/16'] },
    ];
    const before = flat(synthJson({ tenants: base, outputs: true }));
    const after = flat(synthJson({ tenants: base.map((t) => (t.name === 'alpha' ? { ...t, retired: true } : t)), outputs: true }));
    expect([...before.keys()].filter((k) => k.startsWith('output.'))).toHaveLength(4);
    expect([...after.keys()].filter((k) => k.startsWith('output.')).sort()).toEqual([
      'output.crossvpc-CrossVpc-pair0-havip', 'output.crossvpc-CrossVpc-tenant-beta-nat-ip', 'output.crossvpc-CrossVpc-tenant-gamma-nat-ip',
    ]);
    const removed = [...before.keys()].filter((k) => !after.has(k));
    const added = [...after.keys()].filter((k) => !before.has(k));
    const changed = [...before.keys()].filter((k) => after.has(k) && after.get(k) !== before.get(k));
    expect(added).toEqual([]);
    expect(removed.length).toBeGreaterThan(0);
    expect(removed.every((k) => k.includes('alpha'))).toBe(true);
    expect(changed.filter((k) => !sharedByPair.test(k))).toEqual([]);
    // The pair document still carries beta and gamma exactly as before.
    const b = synthJson({ tenants: base.map((t) => (t.name === 'alpha' ? { ...t, retired: true } : t)) });
    const doc = documentOf(b);
    expect(doc).toMatch(/beta\\t\d+\\t/);
    expect(doc).not.toMatch(/alpha\\t/);
  });
});

describe('construct errors name the construct path', () => {
  function stack() {
    const app = new App();
    const s = new TerraformStack(app, 'S');
    new AwsProvider(s, 'aws', { region: 'eu-west-1' });
    return s;
  }
  const base = {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
    gateway: { subnetId: 'subnet-g' },
    tenants: [{ name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'] }],
  };

  test('CrossVpcNat', () => {
    expect(() => new CrossVpcNat(stack(), 'Nat', { ...base, tenants: [] })).toThrow(/^S\/Nat: invalid tenants/);
  });

  test('FunctionVpcLink rejects invalid Kubernetes names and a missing image', () => {
    const s = stack();
    const nat = new CrossVpcNat(s, 'Nat', base);
    expect(() => new FunctionVpcLink(s, 'L1', { nat, agentImage: 'img:1', podLabelKey: 'bad key!' })).toThrow(/S\/L1: invalid podLabelKey = "bad key!".*Fix:/);
    expect(() => new FunctionVpcLink(s, 'L2', { nat, agentImage: 'img:1', namespace: 'Crossvpc_System' })).toThrow(/S\/L2: invalid namespace/);
    expect(() => new FunctionVpcLink(s, 'L3', { nat, agentImage: '' })).toThrow(/S\/L3: invalid agentImage.*agent\/Dockerfile/);
    expect(() => new FunctionVpcLink(s, 'L4', { nat, agentImage: 'img:1', nodeSelector: { pool: 'bad value!' } })).toThrow(CrossVpcError);
    expect(() => new FunctionVpcLink(s, 'L5', { agentImage: 'img:1' } as any)).toThrow(/exactly one of nat and linkSpec/);
  });

  test('FunctionVpcLink: metricsPort moves the agent\'s listen address, host port and probes', () => {
    const s = stack();
    const nat = new CrossVpcNat(s, 'Nat', base);
    const link = new FunctionVpcLink(s, 'Link', { nat, agentImage: 'img:1', metricsPort: 19740 });
    expect(link.metricsPort).toBe(19740);
    const c2 = Object.values<any>(JSON.parse(Testing.synth(s)).resource.kubernetes_daemon_set_v1)[0].spec.template.spec.container[0];
    expect(c2.args.slice(-2)).toEqual(['--metrics-addr', ':19740']);
    expect(c2.port[0]).toMatchObject({ container_port: 19740, host_port: 19740 });
  });

  test('FunctionVpcLink: metricsPort must be a TCP port; a Terraform number token passes through', () => {
    for (const bad of [0, 65536, 80.5, -1]) {
      const s = stack();
      expect(() => new FunctionVpcLink(s, 'L', { nat: new CrossVpcNat(s, 'Nat', base), agentImage: 'img:1', metricsPort: bad })).toThrow(/S\/L: invalid metricsPort.*not a TCP port.*Fix:.*9740/s);
    }
    const s = stack();
    const v = new TerraformVariable(s, 'port', { type: 'number' });
    new FunctionVpcLink(s, 'L', { nat: new CrossVpcNat(s, 'Nat', base), agentImage: 'img:1', metricsPort: v.numberValue });
    const c = Object.values<any>(JSON.parse(Testing.synth(s)).resource.kubernetes_daemon_set_v1)[0].spec.template.spec.container[0];
    expect(c.args.slice(-2)).toEqual(['--metrics-addr', ':${var.port}']);
    expect(c.port[0]).toMatchObject({ container_port: '${var.port}', host_port: '${var.port}' });
  });
});

describe('pair document limits and options', () => {
  const many = (k: number) => Array.from({ length: k }, (_, i) => ({ name: `t${i}`, vpcId: `vpc-t${i}`, subnetId: `subnet-t${i}`, cidrs: [`10.${100 + (i % 100)}.0.0/16`], vni: 3000 + i }));
  test('a document over SSM\'s 8 KB is refused at synth, naming the pair, its size and the fix', () => {
    expectCrossVpcError(() => synthJson({ extraTenants: many(60), gateway: { tenantsPerMember: 62, maxUserDataBytes: 1 << 20 } }),
      [/invalid tenants/, /configuration document is about \d+ bytes after gzip and base64, over the 8192-byte limit/, /lower gateway\.tenantsPerMember/]);
    // Raised for emulation only, it synthesizes; user data stays far below 16 KB whatever the tenants.
    const json = synthJson({ extraTenants: many(60), gateway: { tenantsPerMember: 62, maxConfigDocumentBytes: 1 << 20 } });
    for (const i of Object.values<any>(json.resource.aws_instance)) expect(packedUserDataBytes(asDeployed(userDataOf(i, json)))).toBeLessThan(MAX_USER_DATA_BYTES * 0.8);
  });
  test('user data over a lowered maxUserDataBytes is refused at synth, naming the member, its size and the fix', () => {
    const json = synthJson({});
    const sizes = Object.values<any>(json.resource.aws_instance).map((i) => packedUserDataBytes(userDataOf(i, json)));
    const below = Math.min(...sizes) - 200;
    expectCrossVpcError(() => synthJson({ gateway: { maxUserDataBytes: below } }),
      [new RegExp(`invalid maxUserDataBytes = ${below}`), /member a's gzipped user data is about \d+ bytes, over the \d+-byte limit \(EC2 takes 16384\)/, /leave maxUserDataBytes unset/]);
    // Control: just above the largest member it synthesizes.
    expect(() => synthJson({ gateway: { maxUserDataBytes: Math.max(...sizes) + 200 } })).not.toThrow();
  });
  test('configPollIntervalSec is an integer of 1..300 seconds', () => {
    for (const bad of [0, 301, 2.5]) {
      expectCrossVpcError(() => synthJson({ gateway: { configPollIntervalSec: bad } }), [new RegExp(`invalid configPollIntervalSec = ${bad}`), /integer from 1 to 300/]);
    }
    const polled = synthJson({ gateway: { configPollIntervalSec: 30 } });
    expect(userDataOf(Object.values<any>(polled.resource.aws_instance)[0], polled)).toContain("CONFIG_POLL_SEC='30'");
  });
  test('adding, editing or retiring tenants never changes any member\'s user data or AMI', () => {
    const members = (json: any) => Object.values<any>(json.resource.aws_instance).map((i) => ({ ud: i.user_data_base64, ami: i.ami }));
    const base = members(synthJson({}));
    expect(members(synthJson({ extraTenants: [gamma] }))).toEqual(base);
    expect(members(synthJson({ extraTenants: [{ ...gamma, cidrs: ['192.168.0.0/16'] }] }))).toEqual(base);
  });
});

describe('upgrades never replace both members in one apply', () => {
  function instances(rollingUpdate?: 'none' | 'a' | 'b', amiId?: string): any[] {
    const app = Testing.app();
    const s = new TerraformStack(app, 'S');
    new AwsProvider(s, 'aws', { region: 'eu-west-1' });
    new CrossVpcNat(s, 'Nat', {
      functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
      gateway: { subnetId: 'subnet-g', rollingUpdate, amiId },
      tenants: [{ name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'] }],
    });
    return Object.values<any>(JSON.parse(Testing.synth(s)).resource.aws_instance);
  }
  function members(rollingUpdate?: 'none' | 'a' | 'b') {
    return instances(rollingUpdate).map((i) => ({ member: i.tags['crossvpc:member'], ignores: i.lifecycle.ignore_changes ?? [], replaceOnChange: i.user_data_replace_on_change }));
  }

  test('by default both members ignore user data and AMI changes', () => {
    expect(members()).toEqual([
      { member: 'a', ignores: ['user_data_base64', 'ami'], replaceOnChange: false },
      { member: 'b', ignores: ['user_data_base64', 'ami'], replaceOnChange: false },
    ]);
  });

  test('rolling one member lets exactly that one take the new user data and AMI', () => {
    expect(members('b')).toEqual([
      { member: 'a', ignores: ['user_data_base64', 'ami'], replaceOnChange: false },
      { member: 'b', ignores: [], replaceOnChange: true },
    ]);
  });

  test('an AMI release changes only `ami`, which every member not being rolled ignores', () => {
    const [before, after] = [instances('none', 'ami-0000000000000000a'), instances('none', 'ami-0000000000000000b')];
    for (const [i, old] of before.entries()) {
      const changed = Object.keys({ ...old, ...after[i] }).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(after[i][k]));
      expect(changed).toEqual(['ami']);
      expect(after[i].lifecycle.ignore_changes).toContain('ami');
    }
    // Rolling member b: only b may take the new AMI.
    expect(instances('b', 'ami-0000000000000000b').map((i) => (i.lifecycle.ignore_changes ?? []).includes('ami'))).toEqual([true, false]);
  });

  test('a bad rollingUpdate value is named', () => {
    expect(() => members('both' as any)).toThrow(/invalid rollingUpdate = "both".*Fix:/);
  });
});

test('rollingUpdate can name a different member per pair', () => {
  const app = Testing.app();
  const s = new TerraformStack(app, 'S');
  new AwsProvider(s, 'aws', { region: 'eu-west-1' });
  new CrossVpcNat(s, 'Nat', {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
    gateway: { subnetId: 'subnet-g', instanceType: 'c6in.large', rollingUpdate: { 0: 'b', 1: 'a' } },
    tenants: ['a', 'b', 'c'].map((n) => ({ name: n, vpcId: `vpc-${n}`, subnetId: `subnet-${n}`, cidrs: ['172.16.0.0/16'] })),
  });
  const json = JSON.parse(Testing.synth(s));
  const rolled = Object.values<any>(json.resource.aws_instance).filter((i) => i.user_data_replace_on_change).map((i) => `${i.tags['crossvpc:pair']}${i.tags['crossvpc:member']}`);
  expect(rolled.sort()).toEqual(['0b', '1a']);
});

test('a pair document over SSM\'s 8 KB is refused at synth, naming the fix', () => {
  const app = Testing.app();
  const s = new TerraformStack(app, 'S');
  new AwsProvider(s, 'aws', { region: 'eu-west-1' });
  expect(() => new CrossVpcNat(s, 'Nat', {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
    gateway: { subnetId: 'subnet-g', instanceType: 'x.huge', tenantsPerMember: 300 },
    tenants: Array.from({ length: 300 }, (_, i) => ({ name: `t${i}`, vpcId: `vpc-${i}`, subnetId: `subnet-${i}`, cidrs: ['172.16.0.0/16'], vni: i + 1 })),
  })).toThrow(/S\/Nat\/Pair0: invalid tenants = .*configuration document is about \d+ bytes after gzip and base64, over the 8192-byte limit.*Fix: lower gateway.tenantsPerMember/);
});

describe('bad input at synth: constructs', () => {
  const fvp = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
  const alpha = { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'] };
  function stackIn(app: App, id = 'S') {
    const s = new TerraformStack(app, id);
    new AwsProvider(s, 'aws', { region: 'eu-west-1' });
    new KubernetesProvider(s, 'k8s', { configPath: '~/.kube/config' });
    return s;
  }
  const expectError = expectCrossVpcError;
  const synth = (s: TerraformStack) => JSON.parse(Testing.synth(s));

  describe('tokens', () => {
    test('a number token as vni says it is a token and why a literal is needed', () => {
      const s = stackIn(Testing.app());
      const v = new TerraformVariable(s, 'vni', { type: 'number' });
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [{ ...alpha, vni: v.numberValue }] }),
        [/^S\/Nat: invalid tenants\[0\]\.vni/, /unresolved Terraform token/, /literal value at synth time because it keys the tenant's tunnel/]);
    });
    test.each([
      ['cidrs (string token)', (v: TerraformVariable) => ({ cidrs: [v.stringValue] }), /tenants\[0\]\.cidrs\[0\]/],
      ['cidrs (list token)', (v: TerraformVariable) => ({ cidrs: v.listValue }), /tenants\[0\]\.cidrs/],
      ['natIp', (v: TerraformVariable) => ({ natIp: v.stringValue }), /tenants\[0\]\.natIp/],
      ['allowedDestinations', (v: TerraformVariable) => ({ allowedDestinations: [v.stringValue] }), /tenants\[0\]\.allowedDestinations\[0\]/],
      ['name', (v: TerraformVariable) => ({ name: v.stringValue }), /tenants\[0\]\.name/],
    ])('a token as tenant %s is refused with the reason', (_what, extra, prop) => {
      const s = stackIn(Testing.app());
      const v = new TerraformVariable(s, 'v', {});
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [{ ...alpha, ...extra(v) }] }), [prop, /unresolved Terraform token/, /needs its literal value at synth time/]);
    });
    test.each([
      ['pair', { pair: 0 }, /tenants\[0\]\.pair/, /to place the tenant/],
      ['slot', { slot: 1 }, /tenants\[0\]\.slot/, /ENI device index/],
    ])('a number token as tenant %s is refused', (key, _lit, prop, why) => {
      const s = stackIn(Testing.app());
      const v = new TerraformVariable(s, 'v', { type: 'number' });
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [{ ...alpha, [key]: v.numberValue }] }), [prop, /unresolved Terraform token/, why]);
    });
    test('tokens as gateway haVips, pairCount, mtu, connLimitPerTenant and function vpcCidr are refused', () => {
      const s = stackIn(Testing.app());
      const str = new TerraformVariable(s, 'str', {});
      const num = new TerraformVariable(s, 'num', { type: 'number' });
      const nat = (gateway: object, functionVpc: object = fvp) => () => new CrossVpcNat(s, `Nat${Math.random()}`.replace('.', ''), { functionVpc: functionVpc as any, gateway: { subnetId: 'subnet-g', ...gateway }, tenants: [alpha] });
      expectError(nat({ haVips: [str.stringValue] }), [/gateway\.haVips\[0\]/, /unresolved Terraform token/]);
      expectError(nat({ pairCount: num.numberValue }), [/gateway\.pairCount/, /unresolved Terraform token/, /which pairs exist/]);
      expectError(nat({ mtu: num.numberValue }), [/gateway\.mtu/, /unresolved Terraform token/, /tunnel MTU/]);
      expectError(nat({ connLimitPerTenant: num.numberValue }), [/gateway\.connLimitPerTenant/, /unresolved Terraform token/, /ct count over/]);
      expectError(nat({ sshCidrs: [str.stringValue] }), [/gateway\.sshCidrs\[0\]/, /unresolved Terraform token/]);
      expectError(nat({}, { ...fvp, vpcCidr: str.stringValue }), [/functionVpc\.vpcCidr/, /unresolved Terraform token/]);
      expectError(nat({}, { ...fvp, nodeCidrs: str.listValue }), [/functionVpc\.nodeCidrs/, /unresolved Terraform token/]);
    });
    test('an AZ token on the gateway and the tenant is accepted; the plan-time AZ precondition remains', () => {
      const s = stackIn(Testing.app());
      const gwAz = new TerraformVariable(s, 'gwAz', {});
      const tAz = new TerraformVariable(s, 'tAz', {});
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', availabilityZone: gwAz.stringValue }, tenants: [{ ...alpha, availabilityZone: tAz.stringValue }] });
      const att = Object.values<any>(synth(s).resource.aws_network_interface_attachment);
      expect(att).toHaveLength(2);
      for (const a of att) expect(a.lifecycle.precondition[0].condition).toMatch(/^\$\{\(data\.aws_subnet\.[^.]+\.availability_zone == var\.gwAz\)\}$/);
    });
    test('an instance-type token needs tenantsPerMember', () => {
      const s = stackIn(Testing.app());
      const type = new TerraformVariable(s, 'type', {});
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', instanceType: type.stringValue }, tenants: [alpha] }),
        [/gateway\.instanceType/, /unresolved Terraform token, so the built-in ENI table cannot/, /set gateway\.tenantsPerMember/]);
    });
    test('an instance-type token with tenantsPerMember: the AMI architecture is read at plan time, the ENI precondition stays', () => {
      const s = stackIn(Testing.app());
      const type = new TerraformVariable(s, 'type', {});
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', instanceType: type.stringValue, tenantsPerMember: 3 }, tenants: [alpha] });
      const json = synth(s);
      const ssm = Object.values<any>(json.data.aws_ssm_parameter)[0].name;
      expect(ssm).toMatch(/^\/aws\/service\/canonical\/ubuntu\/server\/24\.04\/stable\/current\/\$\{contains\(data\.aws_ec2_instance_type\.[^.]+\.supported_architectures, "arm64"\) \? "arm64" : "amd64"\}\/hvm/);
      for (const i of Object.values<any>(json.resource.aws_instance)) expect(i.instance_type).toBe('${var.type}');
      const doc = Object.values<any>(json.resource.aws_ssm_parameter)[0];
      expect(doc.lifecycle.precondition[0].condition).toMatch(/maximum_network_interfaces >= 2/);
      expect(doc.lifecycle.precondition[0].error_message).not.toContain('TfToken');
    });
  });

  describe('plan-time preconditions', () => {
    test('a given natIp: its reservation checks it is a usable host of the tenant subnet', () => {
      const s = stackIn(Testing.app());
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [{ ...alpha, natIp: '172.16.9.9' }] });
      const res = Object.entries<any>(synth(s).resource.aws_ec2_subnet_cidr_reservation).find(([k]) => k.includes('NatIpReservation'))![1];
      expect(res.cidr_block).toBe('172.16.9.9/32');
      const [pre] = res.lifecycle.precondition;
      const sub = /data\.aws_subnet\.[A-Za-z0-9_-]*Tenant-alpha-Subnet[A-Za-z0-9_-]*\.cidr_block/.source;
      expect(pre.condition).toMatch(new RegExp(`cidrhost\\("172\\.16\\.9\\.9/\\$\\{element\\(split\\("/", ${sub}\\), 1\\)\\}", 0\\) == cidrhost\\(${sub}, 0\\)`));
      expect(pre.condition).toMatch(new RegExp(`!contains\\(\\[cidrhost\\(${sub}, 0\\), cidrhost\\(${sub}, 1\\), cidrhost\\(${sub}, 2\\), cidrhost\\(${sub}, 3\\), cidrhost\\(${sub}, -1\\)\\], "172\\.16\\.9\\.9"\\)`));
      expect(pre.error_message).toMatch(/natIp 172\.16\.9\.9 must be a usable host of the tenant subnet subnet-a.*network, broadcast/);
    });
    test('a given HaVip: its reservation checks it is a usable host of the gateway subnet', () => {
      const s = stackIn(Testing.app());
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', haVips: ['10.0.255.250'] }, tenants: [alpha] });
      const res = Object.entries<any>(synth(s).resource.aws_ec2_subnet_cidr_reservation).find(([k]) => k.includes('HaVipReservation'))![1];
      const [pre] = res.lifecycle.precondition;
      expect(pre.condition).toMatch(/cidrhost\("10\.0\.255\.250\/\$\{element\(split\("\/", data\.aws_subnet\.[^.]+GatewaySubnet[^.]*\.cidr_block\), 1\)\}", 0\) == cidrhost\(data\.aws_subnet/);
      expect(pre.condition).toMatch(/!contains\(\[cidrhost\(.*-1\)\], "10\.0\.255\.250"\)/);
      expect(pre.error_message).toMatch(/HaVip 10\.0\.255\.250 \(gateway\.haVips\[0\]\) must be a usable host of the gateway subnet subnet-g/);
    });
    test('default addresses carry no precondition (they are hosts of the subnet by construction)', () => {
      const json = synthJson();
      for (const r of Object.values<any>(json.resource.aws_ec2_subnet_cidr_reservation)) expect(r.lifecycle).toBeUndefined();
    });
  });

  describe('cost guards', () => {
    test('a pin to pair 4 (with pairCount) builds pair 4 only; links and lookups cope with the gap', () => {
      const s = stackIn(Testing.app());
      const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', pairCount: 5 }, tenants: [{ ...alpha, pair: 4 }] });
      new FunctionVpcLink(s, 'Link', { nat, agentImage: 'img:1' });
      expect(nat.pairs.map((p) => p.pair.index)).toEqual([4]);
      expect(Object.keys(nat.pairsByIndex)).toEqual(['4']);
      expect(Object.keys(nat.linkSpec.haVips)).toEqual(['4']);
      expect(nat.natIp('alpha')).toMatch(/TfToken/);
      const json = synth(s);
      const pairsBuilt = new Set(Object.values<any>(json.resource.aws_instance).map((i) => i.tags['crossvpc:pair']));
      expect([...pairsBuilt]).toEqual(['4']);
      expect(Object.keys(json.resource.aws_ec2_subnet_cidr_reservation).every((k) => k.includes('Pair4'))).toBe(true);
      const table = JSON.parse(Object.values<any>(json.resource.kubernetes_config_map_v1)[0].data['tenants.json']);
      expect(table.gatewayEndpoints).toHaveLength(1);
      expect(table.gatewayEndpoints[0]).toMatch(/cidrhost\(data\.aws_subnet\.[^.]*Pair4/);
      expect(table.tenants[0].haVip).toBe(table.gatewayEndpoints[0]);
    });
    test('a pair whose tenants are all retired is not built, and the others do not move', () => {
      const tenants = ['a', 'b', 'c'].map((n) => ({ name: n, vpcId: `vpc-${n}`, subnetId: `subnet-${n}`, cidrs: ['172.16.0.0/16'] }));
      const build = (retireC: boolean) => {
        const s = stackIn(Testing.app());
        new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', instanceType: 'c6in.large' }, tenants: tenants.map((t) => (t.name === 'c' && retireC ? { ...t, retired: true } : t)), outputs: true });
        return synth(s);
      };
      const before = build(false);
      const after = build(true);
      expect(Object.keys(before.output).sort()).toEqual(['crossvpc-Nat-pair0-havip', 'crossvpc-Nat-pair1-havip', 'crossvpc-Nat-tenant-a-nat-ip', 'crossvpc-Nat-tenant-b-nat-ip', 'crossvpc-Nat-tenant-c-nat-ip']);
      // The retired tenant and the pair no longer built have no outputs; the others are untouched.
      expect(Object.keys(after.output).sort()).toEqual(['crossvpc-Nat-pair0-havip', 'crossvpc-Nat-tenant-a-nat-ip', 'crossvpc-Nat-tenant-b-nat-ip']);
      for (const [k, v] of Object.entries<any>(after.output)) expect(v).toEqual(before.output[k]);
      expect(new Set(Object.values<any>(before.resource.aws_instance).map((i) => i.tags['crossvpc:pair']))).toEqual(new Set(['0', '1']));
      expect(new Set(Object.values<any>(after.resource.aws_instance).map((i) => i.tags['crossvpc:pair']))).toEqual(new Set(['0']));
      for (const [k, v] of Object.entries<any>(after.resource.aws_instance)) expect(v).toEqual(before.resource.aws_instance[k]);
    });
    test('a typo pin (pair: 999) without pairCount is refused, not 1,000 pairs', () => {
      const s = stackIn(Testing.app());
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [{ ...alpha, pair: 999 }] }),
        [/^S\/Nat: invalid tenants\[0\]\.pair = 999/, /without gateway\.pairCount a pin may name pairs 0\.\.0/, /set gateway\.pairCount to at least 1000/]);
    });
    test('ProxyNodePair refuses to build an empty pair', () => {
      const s = stackIn(Testing.app());
      const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', pairCount: 2 }, tenants: [{ ...alpha, pair: 1 }] });
      expectError(() => new ProxyNodePair(s, 'Extra', { model: nat.model, pairIndex: 0 }), [/^S\/Extra: invalid pairIndex = 0/, /no active tenants/, /pairsInUse/]);
    });
    test.each([
      ['metricsSources', { metricsSources: ['10.0.8.0/33'] }, /invalid metricsSources\[0\]/],
      ['metricsSecurityGroupId', { metricsSecurityGroupId: 'prometheus' }, /invalid metricsSecurityGroupId = "prometheus".*not a security group id/],
      ['metricsPort (tunnel)', { metricsPort: 4789 }, /invalid metricsPort = 4789.*other than the tunnel's/],
      ['metricsPort (privileged)', { metricsPort: 80 }, /invalid metricsPort = 80.*from 1024 to 65535/],
      ['metricsPort (fraction)', { metricsPort: 9100.5 }, /invalid metricsPort = 9100.5/],
    ])('ProxyNodePair refuses a bad %s', (_name, opts, re) => {
      const s = stackIn(Testing.app());
      expectError(() => new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', ...opts }, tenants: [alpha] }), [re, /Fix:/]);
    });
    test('metrics are closed by default: no ingress rule, no exporter in user data; given sources or a group, one rule each on metricsPort', () => {
      const rulesOf = (json: any) => Object.values<any>(json.resource.aws_vpc_security_group_ingress_rule).filter((r) => /Prometheus/.test(r.description ?? ''));
      const udOf = (json: any) => userDataOf(Object.values<any>(json.resource.aws_instance)[0], json);
      const off = stackIn(Testing.app());
      new CrossVpcNat(off, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] });
      const offJson = synth(off);
      expect(rulesOf(offJson)).toEqual([]);
      expect(udOf(offJson)).not.toContain('/bin/crossvpc-metrics');
      expect(udOf(offJson)).not.toContain('crossvpc-node-exporter');
      expect(udOf(offJson)).not.toContain('METRIC_HELP');
      const on = stackIn(Testing.app());
      new CrossVpcNat(on, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', metricsSources: ['10.0.8.0/24', '10.0.9.0/24'], metricsSecurityGroupId: 'sg-0123456789abcdef0' }, tenants: [alpha] });
      const onJson = synth(on);
      const rules = rulesOf(onJson);
      expect(rules.map((r) => [r.cidr_ipv4 ?? r.referenced_security_group_id, r.ip_protocol, r.from_port, r.to_port])).toEqual([
        ['10.0.8.0/24', 'tcp', 9100, 9100], ['10.0.9.0/24', 'tcp', 9100, 9100], ['sg-0123456789abcdef0', 'tcp', 9100, 9100],
      ]);
      const ud = udOf(onJson);
      for (const u of ['crossvpc-metrics.service', 'crossvpc-node-exporter.service', 'prometheus-node-exporter']) expect(ud).toContain(u);
      // Over the 80 % the default keeps (README, "Gateway metrics"), but under EC2's limit.
      expect(packedUserDataBytes(asDeployed(ud))).toBeLessThan(MAX_USER_DATA_BYTES);
    });
    test('ProxyNodePair refuses a connLimitPerTenant above its conntrackMax', () => {
      const s = stackIn(Testing.app());
      const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', pairCount: 2 }, tenants: [{ ...alpha, pair: 1 }] });
      expectError(() => new ProxyNodePair(s, 'Extra', { model: nat.model, pairIndex: 1, conntrackMax: 1000, connLimitPerTenant: 2000 }), [/^S\/Extra: invalid connLimitPerTenant = 2000/, /nf_conntrack_max \(1000\)/]);
    });
  });

  test('every ProxyNodePair option is reachable through CrossVpcNat.gateway', () => {
    const options: Required<ProxyNodePairOptions> = {
      amiId: 'ami-0123456789abcdef0', keyName: 'ops', sshCidrs: ['203.0.113.0/24'], advertIntervalSec: 0.5,
      connLimitPerTenant: 400_000, conntrackMax: 1_000_000, rollingUpdate: 'b', maxUserDataBytes: 1 << 20, configPollIntervalSec: 7, maxConfigDocumentBytes: 1 << 20,
      metricsSources: ['10.0.8.0/24'], metricsSecurityGroupId: 'sg-0123456789abcdef0', metricsPort: 9200,
    };
    const s = stackIn(Testing.app());
    const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g', ...options }, tenants: [alpha] });
    const synthed = JSON.parse(Testing.synth(s));
    const b = synthed.resource.aws_instance[nat.pairs[0].members[1].instance.friendlyUniqueId];
    expect(b.ami).toBe('ami-0123456789abcdef0');
    expect(b.key_name).toBe('ops');
    expect(b.user_data_replace_on_change).toBe(true);
    const ud = userDataOf(b, synthed);
    expect(ud).toContain("CONNTRACK_MAX='1000000'");
    expect(ud).toContain("CONFIG_POLL_SEC='7'");
    expect(documentOf(JSON.parse(Testing.synth(s)))).toContain('ct count over 400000');
    expect(ud).toContain("METRICS_PORT='9200'");
    expect(ud).toContain('crossvpc-node-exporter.service');
  });

  describe('one CrossVpcNat and one FunctionVpcLink per App', () => {
    test('a second CrossVpcNat for the same function VPC, in another stack of the app, names both paths', () => {
      const app = Testing.app();
      new CrossVpcNat(stackIn(app, 'One'), 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] });
      expectError(() => new CrossVpcNat(stackIn(app, 'Two'), 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g2' }, tenants: [{ ...alpha, name: 'beta' }] }),
        [/^Two\/Nat: invalid functionVpc\.vpcId = "vpc-f"/, /One\/Nat already uses this functionVpc\.vpcId/, /put all tenants in one CrossVpcNat \(it manages up to 1000 pairs\)/]);
    });
    test('a second CrossVpcNat on the same gateway subnet is refused', () => {
      const app = Testing.app();
      const s = stackIn(app);
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] });
      expectError(() => new CrossVpcNat(s, 'Nat2', { functionVpc: { ...fvp, vpcId: 'vpc-other' }, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] }),
        [/^S\/Nat2: invalid gateway\.subnetId = "subnet-g"/, /S\/Nat already uses/]);
    });
    test('CrossVpcNat in other function VPCs and a failed construct are no rivals', () => {
      const app = Testing.app();
      const s = stackIn(app);
      expect(() => new CrossVpcNat(s, 'Broken', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [] })).toThrow(CrossVpcError);
      new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] });
      expect(() => new CrossVpcNat(s, 'Nat2', { functionVpc: { ...fvp, vpcId: 'vpc-2' }, gateway: { subnetId: 'subnet-g2' }, tenants: [alpha] })).not.toThrow();
      expect(CrossVpcNat.isCrossVpcNat(s.node.findChild('Nat'))).toBe(true);
      expect(CrossVpcNat.isCrossVpcNat(s)).toBe(false);
    });
    test('a second FunctionVpcLink in the App is refused', () => {
      const app = Testing.app();
      const s = stackIn(app);
      const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fvp, gateway: { subnetId: 'subnet-g' }, tenants: [alpha] });
      new FunctionVpcLink(s, 'Link', { nat, agentImage: 'img:1' });
      expectError(() => new FunctionVpcLink(stackIn(app, 'Other'), 'Link', { linkSpec: nat.linkSpec, agentImage: 'img:1' }),
        [/^Other\/Link: invalid linkSpec/, /S\/Link is already a FunctionVpcLink in this App/, /crossvpc_node/, /one agent per cluster/]);
    });
  });
});
