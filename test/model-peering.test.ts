import { buildCrossVpcModel, TenantInput } from '../lib';
import { expectCrossVpcError } from './helpers';

const fv = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
const gw = { subnetId: 'subnet-g' };
const peering = { functionRouteTableIds: ['rtb-f1'], tenantRouteTableIds: ['rtb-t1'] };
const nat = (name: string, extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['172.16.0.0/16'], ...extra });
const peered = (name: string, cidrs: string[], extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, cidrs, path: 'peering', peering, ...extra });
const build = (tenants: TenantInput[], f: object = fv) => buildCrossVpcModel('Stack/CrossVpc', { functionVpc: f as any, tenants, gateway: gw as any });
const expectError = (fn: () => unknown, parts: Array<string | RegExp>) => expectCrossVpcError(fn, parts, 'Stack/CrossVpc');

describe('model: the peering path', () => {
  test('a peered tenant takes no slot, keeps its name-derived VNI as the node mark, and sees the node CIDRs as sources', () => {
    const m = build([nat('alpha'), peered('gamma', ['10.20.0.0/16']), nat('beta')]);
    expect(m.tenants.map((t) => [t.name, t.slot])).toEqual([['alpha', 1], ['beta', 2]]);
    expect(m.peered).toHaveLength(1);
    const g = m.peered[0];
    expect(g).toMatchObject({ name: 'gamma', cidrs: ['10.20.0.0/16'], destinations: ['10.20.0.0/16'], sources: ['10.0.0.0/16'] });
    expect(g.peering).toEqual({ ...peering, tenantSecurityGroupIds: [], ports: [{ protocol: 'all' }], peerOwnerId: undefined, peerRegion: undefined });
    expect(m.policies.map((p) => p.tenant)).not.toContain('gamma');
    // With pod CIDRs the tenant sees pod addresses.
    expect(build([peered('gamma', ['10.20.0.0/16']), nat('alpha')], { ...fv, podCidrs: ['100.64.0.0/16'] }).peered[0].sources).toEqual(['100.64.0.0/16']);
  });

  test('a NAT tenant may overlap a peered one; two peered tenants may not overlap', () => {
    const m = build([peered('gamma', ['172.16.0.0/16']), nat('alpha')]);
    expect([m.peered[0].name, m.tenants[0].name]).toEqual(['gamma', 'alpha']);
    expectError(() => build([peered('gamma', ['10.20.0.0/16']), peered('delta', ['10.20.128.0/17'])]),
      [/tenants\[1\]\.cidrs/, /overlaps the peered tenant "gamma"/, /path 'nat' \(or 'auto'\)/]);
  });

  test("'auto' peers unless an earlier peered tenant overlaps, and a later tenant never flips it", () => {
    const auto = (name: string, cidrs: string[]) => nat(name, { cidrs, path: 'auto', peering });
    const m = build([auto('gamma', ['10.20.0.0/16']), auto('delta', ['10.20.0.0/16']), auto('eps', ['10.30.0.0/16'])]);
    expect(m.peered.map((t) => t.name)).toEqual(['gamma', 'eps']);
    expect(m.tenants.map((t) => t.name)).toEqual(['delta']);
    const later = build([auto('gamma', ['10.20.0.0/16']), auto('delta', ['10.20.0.0/16']), auto('eps', ['10.30.0.0/16']), auto('zeta', ['10.30.0.0/16'])]);
    expect(later.peered.map((t) => t.name)).toEqual(['gamma', 'eps']);
  });

  test('moving a tenant from NAT to peering moves nobody when it keeps its pair and slot', () => {
    const before = build([nat('alpha'), nat('beta'), nat('delta')]);
    const after = build([peered('alpha', ['172.16.0.0/16'], { pair: 0, slot: 1 }), nat('beta'), nat('delta')]);
    expect(after.tenants.map((t) => [t.name, t.pairIndex, t.slot, t.vni])).toEqual(before.tenants.slice(1).map((t) => [t.name, t.pairIndex, t.slot, t.vni]));
    expect(after.peered[0].vni).toBe(before.tenants[0].vni);
    // Control: without the pins, beta would move into alpha's slot.
    expect(build([peered('alpha', ['172.16.0.0/16']), nat('beta'), nat('delta')]).tenants.map((t) => t.slot)).toEqual([1, 2]);
  });

  test('ports parse strictly', () => {
    const withPorts = (ports: string[]) => build([peered('gamma', ['10.20.0.0/16'], { peering: { ...peering, tenantSecurityGroupIds: ['sg-1'], ports } }), nat('alpha')]).peered[0].peering.ports;
    expect(withPorts(['tcp:6379', 'udp:53', 'tcp:5432-5433', 'icmp'])).toEqual([
      { protocol: 'tcp', fromPort: 6379, toPort: 6379 }, { protocol: 'udp', fromPort: 53, toPort: 53 }, { protocol: 'tcp', fromPort: 5432, toPort: 5433 }, { protocol: 'icmp' },
    ]);
    for (const bad of ['tcp:06379', 'tcp:70000', 'tcp:10-5', 'TCP:80', 'tcp: 80', 'sctp:1', 'tcp:']) {
      expectError(() => withPorts([bad]), [/tenants\[0\]\.peering\.ports\[0\]/, /not a port rule/, /'tcp:6379'/]);
    }
    expectError(() => withPorts([]), [/tenants\[0\]\.peering\.ports/, /opens nothing/]);
  });

  describe('bad input names the prop and the fix', () => {
    const cases: Array<[string, TenantInput, RegExp[]]> = [
      ['unknown path', nat('a', { path: 'vpn' as any }), [/tenants\[0\]\.path/, /"vpn"/, /one of 'nat', 'peering', 'auto'/]],
      ['peering settings on the NAT path', nat('a', { peering }), [/tenants\[0\]\.peering/, /takes the NAT path/, /set path: 'peering'/]],
      ['peering path without settings', peered('a', ['10.20.0.0/16'], { peering: undefined }), [/tenants\[0\]\.peering/, /no route tables/]],
      ['auto without a subnet', { name: 'a', vpcId: 'vpc-a', cidrs: ['10.20.0.0/16'], path: 'auto', peering }, [/tenants\[0\]\.subnetId/, /needs a subnet/]],
      ['NAT without a subnet', { name: 'a', vpcId: 'vpc-a', cidrs: ['10.20.0.0/16'] }, [/tenants\[0\]\.subnetId/, /needs a subnet/]],
      ['a subnet on the peering path', peered('a', ['10.20.0.0/16'], { subnetId: 'subnet-a' }), [/tenants\[0\]\.subnetId/, /drop subnetId/]],
      ['a NAT IP on the peering path', peered('a', ['10.20.0.0/16'], { natIp: '10.20.0.5' }), [/tenants\[0\]\.natIp/, /no NAT ENI/]],
      ['slot without pair', peered('a', ['10.20.0.0/16'], { slot: 1 }), [/tenants\[0\]\.slot/, /takes both/]],
      ['no function route table', peered('a', ['10.20.0.0/16'], { peering: { ...peering, functionRouteTableIds: [] } }), [/peering\.functionRouteTableIds/, /at least one/]],
      ['not a route table', peered('a', ['10.20.0.0/16'], { peering: { ...peering, tenantRouteTableIds: ['sg-1'] } }), [/peering\.tenantRouteTableIds\[0\]/, /not a rtb-… id/]],
      ['a table twice', peered('a', ['10.20.0.0/16'], { peering: { ...peering, tenantRouteTableIds: ['rtb-1', 'rtb-1'] } }), [/peering\.tenantRouteTableIds\[1\]/, /listed twice/]],
      ['bad account', peered('a', ['10.20.0.0/16'], { peering: { ...peering, peerOwnerId: '1234' } }), [/peering\.peerOwnerId/, /12 digits/]],
      ['bad region', peered('a', ['10.20.0.0/16'], { peering: { ...peering, peerRegion: 'Europe' } }), [/peering\.peerRegion/, /not an AWS region/]],
      ['peered tenant inside the function VPC', peered('a', ['10.0.128.0/17']), [/tenants\[0\]\.cidrs\[0\]/, /overlaps/]],
      ['no NAT tenant at all', peered('a', ['10.20.0.0/16']), [/tenants = \["a"\]/, /no active tenant takes the NAT path/, /keep at least one NAT tenant/]],
    ];
    test.each(cases)('%s', (_, tenant, parts) => expectError(() => build([tenant]), parts));
  });
});

describe('model: internet egress', () => {
  test("'tenantVpc' on the NAT path; 'none' by default", () => {
    const m = build([nat('alpha', { internetEgress: 'tenantVpc' }), nat('beta')]);
    expect(m.tenants.map((t) => [t.name, t.internetEgress])).toEqual([['alpha', 'tenantVpc'], ['beta', 'none']]);
  });
  test.each<[string, TenantInput, RegExp[]]>([
    ['an unknown mode', nat('a', { internetEgress: 'internet' as any }), [/tenants\[0\]\.internetEgress/, /"internet"/, /'none', 'tenantVpc' or \{ eipAllocationId, privateIp \}/]],
    ['egress on the peering path', peered('a', ['10.20.0.0/16'], { internetEgress: 'tenantVpc' }), [/tenants\[0\]\.internetEgress/, /needs path 'nat'/]],
    ['egress on the auto path', nat('a', { path: 'auto', peering, internetEgress: 'none' }), [/tenants\[0\]\.internetEgress/, /path 'auto'/]],
  ])('refuses %s', (_, tenant, parts) => expectError(() => build([tenant, nat('b')]), parts));
});
