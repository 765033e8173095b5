import { App, TerraformStack, Testing } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { CrossVpcNat, FunctionVpcLink, TenantProps } from '../lib';
import { parseConfig } from '../agent/config';
import { asDeployed, documentOf, expectCrossVpcError } from './helpers';

const alpha: TenantProps = { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], vni: 1001 };
const gamma: TenantProps = {
  name: 'gamma', vpcId: 'vpc-g', cidrs: ['10.20.0.0/16'], allowedDestinations: ['10.20.1.0/24', '10.20.2.0/24'], path: 'peering',
  peering: { functionRouteTableIds: ['rtb-f1', 'rtb-f2'], tenantRouteTableIds: ['rtb-g1'], tenantSecurityGroupIds: ['sg-redis'], ports: ['tcp:6379', 'icmp'] },
};
const delta: TenantProps = {
  name: 'delta', vpcId: 'vpc-d', cidrs: ['10.30.0.0/16'], path: 'peering',
  peering: { functionRouteTableIds: ['rtb-f1'], tenantRouteTableIds: ['rtb-d1'], peerOwnerId: '210987654321', peerRegion: 'eu-central-1' },
};

function synth(tenants: TenantProps[], withDeltaProvider = true, podCidrs?: string[]): any {
  const s = new TerraformStack(Testing.app(), 'S');
  new AwsProvider(s, 'aws', { region: 'eu-west-1' });
  const deltaAccount = new AwsProvider(s, 'delta', { region: 'eu-central-1', alias: 'delta' });
  const nat = new CrossVpcNat(s, 'Nat', {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16', podCidrs },
    gateway: { subnetId: 'subnet-g' },
    tenants,
    outputs: true,
    tenantProviders: withDeltaProvider && tenants.includes(delta) ? { delta: deltaAccount } : undefined,
  });
  new FunctionVpcLink(s, 'Link', { nat, agentImage: 'img:1' });
  return JSON.parse(Testing.synth(s));
}
const byKey = (json: any, type: string, part: string) => Object.entries<any>(json.resource[type] ?? {}).filter(([k]) => k.includes(part)).map(([, v]) => v);

describe('CrossVpcNat: the peering path', () => {
  const json = synth([alpha, gamma, delta]);

  test('a connection accepted on the tenant side, for the same account and across accounts', () => {
    const conns = ['gamma', 'delta'].flatMap((t) => byKey(json, 'aws_vpc_peering_connection', `Peering-${t}`));
    expect(conns.map((c) => [c.vpc_id, c.peer_vpc_id, c.peer_owner_id, c.peer_region, c.auto_accept])).toEqual([
      ['vpc-f', 'vpc-g', undefined, undefined, undefined], ['vpc-f', 'vpc-d', '210987654321', 'eu-central-1', undefined],
    ]);
    const acc = ['gamma', 'delta'].flatMap((t) => byKey(json, 'aws_vpc_peering_connection_accepter', `Peering-${t}`));
    expect(acc.map((a) => [a.auto_accept, a.provider])).toEqual([[true, undefined], [true, 'aws.delta']]);
    expect(conns[0].tags).toMatchObject({ Name: 'crossvpc-peering-gamma', 'crossvpc:tenant': 'gamma' });
  });

  test('routes: the function tables to the allowed destinations only, the tenant tables back to the sources', () => {
    const routes = byKey(json, 'aws_route', 'Peering-gamma').map((r) => [r.route_table_id, r.destination_cidr_block]);
    expect(routes).toEqual([
      ['rtb-f1', '10.20.1.0/24'], ['rtb-f1', '10.20.2.0/24'], ['rtb-f2', '10.20.1.0/24'], ['rtb-f2', '10.20.2.0/24'], ['rtb-g1', '10.0.0.0/16'],
    ]);
    for (const r of byKey(json, 'aws_route', 'Peering-gamma')) expect(r.vpc_peering_connection_id).toMatch(/aws_vpc_peering_connection_accepter\..*Peering-gamma.*\.vpc_peering_connection_id/);
    expect(byKey(json, 'aws_route', 'Peering-delta').filter((r) => r.route_table_id === 'rtb-d1').map((r) => r.provider)).toEqual(['aws.delta']);
  });

  test("the tenant's security group admits the sources on the listed ports only; the pod CIDRs when pods keep their addresses", () => {
    const rules = byKey(json, 'aws_vpc_security_group_ingress_rule', 'Peering-');
    expect(rules.map((r) => [r.security_group_id, r.ip_protocol, r.from_port, r.to_port, r.cidr_ipv4])).toEqual([
      ['sg-redis', 'icmp', -1, -1, '10.0.0.0/16'], ['sg-redis', 'tcp', 6379, 6379, '10.0.0.0/16'],
    ]);
    const pods = synth([alpha, gamma], false, ['100.64.0.0/16']);
    expect(byKey(pods, 'aws_vpc_security_group_ingress_rule', 'Peering-').map((r) => r.cidr_ipv4)).toEqual(['100.64.0.0/16', '100.64.0.0/16']);
  });

  test('a peered tenant has no NAT ENI, slot or document row, and outputs its peering id', () => {
    expect(Object.keys(json.resource.aws_network_interface).filter((k) => /gamma|delta/.test(k))).toEqual([]);
    expect(Object.keys(json.output)).toEqual(expect.arrayContaining(['crossvpc-Nat-tenant-gamma-peering-id', 'crossvpc-Nat-tenant-alpha-nat-ip']));
    expect(Object.keys(json.output).filter((k) => k.includes('gamma-nat-ip'))).toEqual([]);
  });

  test("the agent ConfigMap lists peered tenants with their mark and allowed destinations, as version 3; without them it stays version 2", () => {
    const table = (j: any) => JSON.parse(Object.values<any>(j.resource.kubernetes_config_map_v1)[0].data['tenants.json'].replace(/\$\{[^}]*\}/g, 'X'));
    const t = table(json);
    expect(t.version).toBe(3);
    expect(t.tenants.map((x: any) => x.name)).toEqual(['alpha']);
    expect(t.peered.map((x: any) => [x.name, x.mark, x.cidrs])).toEqual([['gamma', 0x1000000 + t.peered[0].vni, ['10.20.1.0/24', '10.20.2.0/24']], ['delta', 0x1000000 + t.peered[1].vni, ['10.30.0.0/16']]]);
    const plain = table(synth([alpha]));
    expect([plain.version, plain.peered]).toEqual([2, undefined]);
  });

  test('adding a peered tenant changes no other resource', () => {
    const before = synth([alpha, gamma]);
    const after = synth([alpha, gamma, delta]);
    for (const [type, resources] of Object.entries<any>(before.resource)) {
      if (type === 'kubernetes_config_map_v1') continue; // the agent table lists every tenant
      for (const [k, v] of Object.entries<any>(resources)) expect([type, k, after.resource[type][k]]).toEqual([type, k, v]);
    }
  });

  test('retiring or dropping a peered tenant removes its peering resources only; the others keep every resource and ConfigMap entry', () => {
    const table = (j: any) => JSON.parse(Object.values<any>(j.resource.kubernetes_config_map_v1)[0].data['tenants.json'].replace(/\$\{[^}]*\}/g, 'X'));
    const before = synth([alpha, gamma, delta]);
    for (const after of [synth([alpha, { ...gamma, retired: true }, delta]), synth([alpha, delta])]) {
      const gone: string[] = [];
      for (const [type, resources] of Object.entries<any>(before.resource)) {
        if (type === 'kubernetes_config_map_v1') continue;
        for (const [k, v] of Object.entries<any>(resources)) {
          if (after.resource[type]?.[k] === undefined) gone.push(`${type}.${k}`);
          else expect([type, k, after.resource[type][k]]).toEqual([type, k, v]);
        }
      }
      // Control: what went is gamma's peering, all of it (connection, accepter, 2 tables x 2 destinations + 1 routes, 2 port rules).
      expect(gone.every((g) => g.includes('Peering-gamma'))).toBe(true);
      expect(gone.length).toBe(9);
      const [b, a] = [table(before), table(after)];
      expect(a.tenants).toEqual(b.tenants);
      expect(a.peered).toEqual(b.peered.filter((t: any) => t.name !== 'gamma'));
    }
  });

  test('a tenantProviders key that names no peered tenant is refused', () => {
    const s = new TerraformStack(new App(), 'S');
    const p = new AwsProvider(s, 'aws', { region: 'eu-west-1' });
    expectCrossVpcError(() => new CrossVpcNat(s, 'Nat', {
      functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' }, gateway: { subnetId: 'subnet-g' }, tenants: [alpha, gamma], tenantProviders: { alpha: p },
    }), [/tenantProviders\.alpha/, /no active tenant on the peering path/, /key tenantProviders by a peered tenant: gamma/], 'S/Nat');
  });
});

describe('CrossVpcNat: internet egress', () => {
  const json = synth([{ ...alpha, internetEgress: 'tenantVpc' }, { ...alpha, name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', vni: 1002 }]);
  test("the pair document's tenant rows say which tenant egresses; the agent table (version 3) adds the cluster ranges it throws", () => {
    const doc = JSON.parse(documentOf(json, 0));
    const egress = (text: string) => {
      const [header, ...rows] = text.trim().split('\n');
      const col = header.slice(1).split('\t').indexOf('egress');
      return Object.fromEntries(rows.map((r) => [r.split('\t')[0], r.split('\t')[col]]));
    };
    expect(egress(doc.members.a.tenants)).toEqual({ alpha: 'tenant_vpc', beta: 'none' });
    expect(doc.members.a.ruleset).toMatch(/set egress_ifs \{ typeof iifname \. oifname; elements = \{ "cx1001" \. "tn1001" \} \}/);
    const table = JSON.parse(Object.values<any>(json.resource.kubernetes_config_map_v1)[0].data['tenants.json'].replace(/\$\{[^}]*\}/g, 'X'));
    expect(table.version).toBe(3);
    expect(table.tenants.map((t: any) => [t.name, t.internetEgress])).toEqual([['alpha', true], ['beta', undefined]]);
    expect(table.cluster.vpcCidr).toBe('10.0.0.0/16');
    // The node agent accepts it: version 3 carries `peered` (empty here), which the agent requires.
    expect(table.peered).toEqual([]);
    const parsed = parseConfig(asDeployed(Object.values<any>(json.resource.kubernetes_config_map_v1)[0].data['tenants.json']));
    expect(parsed.tenants.map((t) => [t.name, t.internetEgress])).toEqual([['alpha', true], ['beta', undefined]]);
  });
});
