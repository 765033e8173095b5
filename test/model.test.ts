import { buildCrossVpcModel, CrossVpcError, derivedVni, TenantInput } from '../lib';

const fv = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
const gw = { subnetId: 'subnet-g' };
const t = (name: string, extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['172.16.0.0/16'], ...extra });
const build = (tenants: TenantInput[], g: object = gw, f: object = fv) => buildCrossVpcModel('Stack/CrossVpc', { functionVpc: f as any, tenants, gateway: g as any });

function expectError(fn: () => unknown, parts: Array<string | RegExp>) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CrossVpcError);
  const msg = (caught as Error).message;
  expect(msg).toContain('Stack/CrossVpc');
  expect(msg).toContain('Fix:');
  for (const p of parts) expect(msg).toMatch(p);
}

describe('model', () => {
  test('overlapping tenants get distinct VNIs, zones, tables and MACs on one pair', () => {
    const m = build([t('alpha', { vni: 1001 }), t('beta', { vni: 1002 })]);
    expect(m.pairs).toHaveLength(1);
    const [a, b] = m.tenants;
    expect([a.vni, b.vni]).toEqual([1001, 1002]);
    expect(a.zone).not.toBe(b.zone);
    expect(a.table).not.toBe(b.table);
    expect(a.gatewayMac).toBe('0a:00:00:03:e9:01');
    expect([a.slot, b.slot]).toEqual([1, 2]);
    expect(m.tunnelMtu).toBe(8951);
    expect(m.policies).toEqual([
      { tenant: 'alpha', vni: 1001, sourceCidr: '10.0.0.0/16', destinationCidr: '172.16.0.0/16' },
      { tenant: 'beta', vni: 1002, sourceCidr: '10.0.0.0/16', destinationCidr: '172.16.0.0/16' },
    ]);
  });

  test('derived VNIs depend on the name only', () => {
    const one = build([t('alpha')]).tenants[0].vni;
    const two = build([t('zeta'), t('alpha')]).tenants[1].vni;
    expect(one).toBe(two);
    expect(one).toBe(derivedVni('alpha'));
    expect(one).toBeGreaterThanOrEqual(65536);
  });

  test('tenants are packed by ENI capacity, then spill to a new pair', () => {
    // c6in.xlarge: 4 ENIs -> 3 tenants per member.
    const m = build(['a', 'b', 'c', 'd'].map((n) => t(n)));
    expect(m.pairs.map((p) => p.tenants.map((x) => x.name))).toEqual([['a', 'b', 'c'], ['d']]);
    expect(build([t('a')], { ...gw, instanceType: 'c6in.large' }).tenantsPerMember).toBe(2);
    expect(build([t('a')], { ...gw, instanceType: 'x9.huge', tenantsPerMember: 5 }).tenantsPerMember).toBe(5);
  });

  test('a retired tenant keeps its slot so nobody moves', () => {
    const before = build([t('a'), t('b'), t('c')]);
    const after = build([t('a', { retired: true }), t('b'), t('c')]);
    expect(after.tenants.map((x) => [x.name, x.pairIndex, x.slot, x.vni])).toEqual(
      before.tenants.filter((x) => x.name !== 'a').map((x) => [x.name, x.pairIndex, x.slot, x.vni]),
    );
  });

  test('pinned slots are honoured and conflicts named', () => {
    const m = build([t('a', { pair: 0, slot: 3 }), t('b')]);
    expect(m.tenants.map((x) => x.slot)).toEqual([3, 1]);
    expectError(() => build([t('a', { pair: 0, slot: 2 }), t('b', { pair: 0, slot: 2 })]), [/tenants\[1\]\.slot/, /already held by tenant "a"/]);
  });

  describe('bad input', () => {
    test('invalid CIDR', () => expectError(() => build([t('a', { cidrs: ['172.16.0.0/33'] })]), [/tenants\[0\]\.cidrs\[0\]/, /"172\.16\.0\.0\/33"/, /not an IPv4 CIDR/]));
    test('CIDR with host bits', () => expectError(() => build([t('a', { cidrs: ['172.16.0.1/16'] })]), [/host bits/, /172\.16\.0\.0\/16/]));
    test('invalid IP', () => expectError(() => build([t('a', { natIp: '300.1.1.1' })]), [/tenants\[0\]\.natIp/, /"300\.1\.1\.1"/]));
    test('invalid function VPC CIDR', () => expectError(() => build([t('a')], gw, { ...fv, vpcCidr: 'ten/8' }), [/functionVpc\.vpcCidr/]));
    test('tenant CIDR overlapping the function VPC names both sides', () =>
      expectError(() => build([t('a', { cidrs: ['10.0.128.0/17'] })]), [/tenants\[0\]\.cidrs\[0\]/, /10\.0\.128\.0\/17/, /functionVpc\.vpcCidr 10\.0\.0\.0\/16/]));
    test('tenant CIDR overlapping a pod CIDR names both sides', () =>
      expectError(() => build([t('a', { cidrs: ['100.64.0.0/16'] })], gw, { ...fv, podCidrs: ['100.64.0.0/10'] }), [/100\.64\.0\.0\/16/, /functionVpc\.podCidrs\[0\] 100\.64\.0\.0\/10/]));
    test('duplicate tenant names', () => expectError(() => build([t('a'), t('a')]), [/tenants\[1\]\.name/, /duplicate/, /tenants\[0\]/]));
    test('VNI out of range', () => {
      expectError(() => build([t('a', { vni: 0 })]), [/tenants\[0\]\.vni/, /= 0/, /1 to 16777215/]);
      expectError(() => build([t('a', { vni: 16777216 })]), [/16777216/]);
    });
    test('VNI shared by two tenants', () => expectError(() => build([t('a', { vni: 7 }), t('b', { vni: 7 })]), [/tenants\[1\]\.vni/, /already used by tenant "a"/]));
    test('empty tenant list', () => expectError(() => build([]), [/invalid tenants/, /empty/]));
    test('more tenants than fixed pairs hold', () =>
      expectError(() => build(['a', 'b', 'c', 'd'].map((n) => t(n)), { ...gw, pairCount: 1 }), [/1 pair\(s\) of c6in\.xlarge hold 3 tenants/, /"d"/, /raise gateway\.pairCount/]));
    test('tenant AZ differs from the gateway AZ', () =>
      expectError(() => build([t('a', { availabilityZone: 'eu-west-1b' })], { ...gw, availabilityZone: 'eu-west-1a' }), [/tenants\[0\]\.availabilityZone/, /eu-west-1b/, /multi-VPC ENI/]));
    test('MTU below what the tunnel needs', () => {
      expectError(() => build([t('a')], { ...gw, mtu: 1300 }), [/gateway\.mtu/, /1300/, /vxlan tunnel costs 50 bytes/, /at least 1330/]);
      expect(build([t('a')], { ...gw, mtu: 1500, tunnel: 'gre' }).tunnelMtu).toBe(1472);
    });
    test('tenant name invalid in Kubernetes', () => expectError(() => build([t('Alpha_1')]), [/tenants\[0\]\.name/, /"Alpha_1"/, /DNS label/]));
    test('CIDR given as an unresolved token says why', () =>
      expectError(() => build([t('a', { cidrs: ['${TfToken[TOKEN.42]}'] })]), [/unresolved Terraform token/, /needs its literal value at synth time/]));
    test('destination outside the tenant CIDRs', () => expectError(() => build([t('a', { allowedDestinations: ['192.168.0.0/24'] })]), [/allowedDestinations\[0\]/, /not inside/]));
    test('unknown instance type without override', () => expectError(() => build([t('a')], { ...gw, instanceType: 'x9.huge' }), [/gateway\.instanceType/, /tenantsPerMember/]));
  });
});

describe('model limits', () => {
  test('1,000 tenants fit without a pair count: pairs are added as needed', () => {
    const m = build(Array.from({ length: 1000 }, (_, i) => t(`t${i}`, { vni: i + 1 })));
    expect(m.pairs).toHaveLength(334);
    expect(m.tenants.every((x) => x.slot >= 1 && x.slot <= 3)).toBe(true);
  });

  test('two tenants with the same explicit NAT IP in one subnet are refused', () =>
    expectError(() => build([t('a', { subnetId: 'subnet-s', natIp: '172.16.9.9' }), t('b', { subnetId: 'subnet-s', natIp: '172.16.9.9', pair: 1 })]), [/tenants\[1\]\.natIp/, /already uses NAT IP 172\.16\.9\.9/]));
});
