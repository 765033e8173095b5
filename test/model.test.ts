import { buildCrossVpcModel, pairsInUse, TenantInput } from '../lib';
import { derivedVni } from '../lib/model/identity';
import { expectCrossVpcError } from './helpers';

const fv = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
const gw = { subnetId: 'subnet-g' };
const t = (name: string, extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['172.16.0.0/16'], ...extra });
const build = (tenants: TenantInput[], g: object = gw, f: object = fv) => buildCrossVpcModel('Stack/CrossVpc', { functionVpc: f as any, tenants, gateway: g as any });

const expectError = (fn: () => unknown, parts: Array<string | RegExp>) => expectCrossVpcError(fn, parts, 'Stack/CrossVpc');

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
    expectError(() => build([t('a', { subnetId: 'subnet-s', natIp: '172.16.9.9' }), t('b', { subnetId: 'subnet-s', natIp: '172.16.9.9', pair: 1 })], { ...gw, pairCount: 2 }), [/tenants\[1\]\.natIp/, /already uses NAT IP 172\.16\.9\.9/]));
});

describe('bad input: strict IPv4 parsing', () => {
  // ipaddr.js (like inet_aton) accepts all of these; we refuse them rather than rewrite them.
  test.each([
    ['octal first octet', '010.200.0.0/16'],
    ['leading zero octet', '172.016.0.0/16'],
    ['short form', '172.16.0/16'],
    ['hex octet', '0xac.16.0.0/16'],
    ['bare integer', '3232235520/24'],
    ['octet over 255', '172.256.0.0/16'],
    ['prefix with a leading zero', '172.16.0.0/016'],
    ['signed prefix', '172.16.0.0/+16'],
    ['no prefix', '172.16.0.0'],
    ['surrounding space', ' 172.16.0.0/16'],
  ])('tenant CIDR refused: %s (%s)', (_what, cidr) =>
    expectError(() => build([t('a', { cidrs: [cidr] })]), [/tenants\[0\]\.cidrs\[0\]/, JSON.stringify(cidr), /strict notation/, /e\.g\. "172\.16\.0\.0\/16"/]));

  test('strict forms with zeros are accepted', () => {
    expect(build([t('a', { cidrs: ['172.16.0.0/16'], natIp: '172.16.0.10' })], gw, { ...fv, vpcCidr: '10.0.0.0/16' }).tenants[0].cidrs).toEqual(['172.16.0.0/16']);
  });

  test.each(['172.016.0.3', '0xac.16.0.3', '2886729731', '172.16.3'])('natIp refused: %s', (ip) =>
    expectError(() => build([t('a', { natIp: ip })]), [/tenants\[0\]\.natIp/, JSON.stringify(ip), /strict notation/]));

  test('function VPC CIDR in octal form', () =>
    expectError(() => build([t('a')], gw, { ...fv, vpcCidr: '010.0.0.0/16' }), [/functionVpc\.vpcCidr/, /"010\.0\.0\.0\/16"/, /no octal/]));
});

describe('bad input: overlaps', () => {
  test('a tenant whose own CIDRs overlap each other', () =>
    expectError(() => build([t('a', { cidrs: ['172.16.0.0/16', '172.16.8.0/24'] })]), [/tenants\[0\]\.cidrs\[1\]/, /172\.16\.8\.0\/24 overlaps tenants\[0\]\.cidrs\[0\] 172\.16\.0\.0\/16/, /File exists/, /drop the narrower/]));
  test('a tenant listing one CIDR twice', () =>
    expectError(() => build([t('a', { cidrs: ['172.16.0.0/16', '172.16.0.0/16'] })]), [/tenants\[0\]\.cidrs\[1\]/]));
  test('duplicate allowedDestinations', () =>
    expectError(() => build([t('a', { allowedDestinations: ['172.16.0.0/24', '172.16.0.0/24'] })]), [/tenants\[0\]\.allowedDestinations\[1\]/, /overlaps tenants\[0\]\.allowedDestinations\[0\]/]));
  test('overlapping allowedDestinations', () =>
    expectError(() => build([t('a', { allowedDestinations: ['172.16.0.3/32', '172.16.0.0/24'] })]), [/tenants\[0\]\.allowedDestinations\[1\]/, /172\.16\.0\.0\/24 overlaps/]));
  test('tenant CIDR overlapping nodeCidrs names both sides', () =>
    expectError(() => build([t('a', { cidrs: ['100.64.0.0/16'] })], gw, { ...fv, nodeCidrs: ['10.0.0.0/16', '100.64.0.0/10'] }), [/tenants\[0\]\.cidrs\[0\]/, /functionVpc\.nodeCidrs\[1\] 100\.64\.0\.0\/10/, /node CIDRs/]));
  test('overlapping nodeCidrs', () =>
    expectError(() => build([t('a')], gw, { ...fv, nodeCidrs: ['10.0.0.0/16', '10.0.4.0/24'] }), [/functionVpc\.nodeCidrs\[1\]/, /"10\.0\.4\.0\/24"/, /overlaps functionVpc\.nodeCidrs\[0\] 10\.0\.0\.0\/16/]));
  test('overlapping podCidrs', () =>
    expectError(() => build([t('a')], gw, { ...fv, podCidrs: ['100.64.0.0/10', '100.64.0.0/16'] }), [/functionVpc\.podCidrs\[1\]/, /overlaps functionVpc\.podCidrs\[0\]/]));

  describe('serviceCidr', () => {
    test('is carried into the model, canonical', () => {
      expect(build([t('a')], gw, { ...fv, serviceCidr: '10.100.0.0/16' }).functionVpc.serviceCidr).toBe('10.100.0.0/16');
      expect(build([t('a')]).functionVpc.serviceCidr).toBeUndefined();
    });
    test('a tenant CIDR overlapping it is refused, naming both', () =>
      expectError(() => build([t('a', { cidrs: ['10.96.0.0/16'] })], gw, { ...fv, serviceCidr: '10.96.0.0/12' }), [/tenants\[0\]\.cidrs\[0\]/, /"10\.96\.0\.0\/16"/, /functionVpc\.serviceCidr 10\.96\.0\.0\/12/, /Service CIDR/]));
    test('a NAT IP inside it is fine: the tenant VPC never sees the Service CIDR', () =>
      expect(() => build([t('a', { natIp: '10.96.0.9' })], gw, { ...fv, serviceCidr: '10.96.0.0/12' })).not.toThrow());
    test.each([
      ['host bits', '10.96.0.1/12', /host bits are set/],
      ['short form', '10.96/12', /strict notation/],
      ['overlapping vpcCidr', '10.0.128.0/17', /overlaps functionVpc\.vpcCidr 10\.0\.0\.0\/16/],
      ['overlapping a pod CIDR', '100.64.0.0/16', /overlaps functionVpc\.podCidrs\[0\] 100\.64\.0\.0\/10/],
    ])('%s is refused', (_name, serviceCidr, why) =>
      expectError(() => build([t('a')], gw, { ...fv, podCidrs: ['100.64.0.0/10'], serviceCidr }), [/functionVpc\.serviceCidr/, why]));
    test('a token is refused with the reason', () =>
      expectError(() => build([t('a')], gw, { ...fv, serviceCidr: '${TfToken[TOKEN.1]}' }), [/functionVpc\.serviceCidr/, /unresolved Terraform token/]));
  });
});

describe('bad input: reserved tenant ranges', () => {
  test.each([
    ['0.0.0.0/8', /this network/],
    ['127.0.0.0/8', /loopback/],
    ['169.254.0.0/16', /link-local/],
    ['224.0.0.0/4', /multicast/],
    ['240.0.0.0/4', /class E/],
  ])('tenant CIDR inside %s', (cidr, label) => {
    const inside = cidr === '224.0.0.0/4' ? '239.1.0.0/16' : cidr.replace(/\/\d+$/, '/24');
    expectError(() => build([t('a', { cidrs: [inside] })]), [/tenants\[0\]\.cidrs\[0\]/, JSON.stringify(inside), label]);
  });
  test('a destination in a reserved range is refused too (it must lie inside the tenant CIDRs)', () =>
    expectError(() => build([t('a', { allowedDestinations: ['169.254.169.254/32'] })]), [/allowedDestinations\[0\]/, /not inside/]));
});

describe('bad input: NAT IP', () => {
  test('natIp inside the function VPC CIDR', () =>
    expectError(() => build([t('a', { natIp: '10.0.3.4' })]), [/tenants\[0\]\.natIp/, /"10\.0\.3\.4"/, /inside functionVpc\.vpcCidr 10\.0\.0\.0\/16/, /subnet-a/]));
  test('natIp inside a pod CIDR', () =>
    expectError(() => build([t('a', { natIp: '100.64.0.9' })], gw, { ...fv, podCidrs: ['100.64.0.0/10'] }), [/tenants\[0\]\.natIp/, /functionVpc\.podCidrs\[0\]/]));
  test('natIp inside a node CIDR', () =>
    expectError(() => build([t('a', { natIp: '100.100.0.9' })], gw, { ...fv, nodeCidrs: ['100.100.0.0/16'] }), [/tenants\[0\]\.natIp/, /functionVpc\.nodeCidrs\[0\]/]));
});

describe('bad input: gateway', () => {
  test.each([0, -5, 1.5, 262145])('connLimitPerTenant %p', (v) =>
    expectError(() => build([t('a')], { ...gw, connLimitPerTenant: v }), [/gateway\.connLimitPerTenant/, new RegExp(`= ${String(v).replace('.', '\\.')}:`), /from 1 to the members' nf_conntrack_max \(262144\)/]));
  test('connLimitPerTenant in range is kept', () => expect(() => build([t('a')], { ...gw, connLimitPerTenant: 1000 })).not.toThrow());
  test('connLimitPerTenant up to a raised conntrackMax is kept', () =>
    expect(() => build([t('a')], { ...gw, conntrackMax: 1_000_000, connLimitPerTenant: 500_000 })).not.toThrow());
  test.each([0, 2.5])('conntrackMax %p', (v) =>
    expectError(() => build([t('a')], { ...gw, conntrackMax: v }), [/gateway\.conntrackMax/, /positive whole number/]));
  test('duplicate haVips', () =>
    expectError(() => build([t('a')], { ...gw, haVips: ['10.0.255.250', '10.0.255.250'] }), [/gateway\.haVips\[1\]/, /"10\.0\.255\.250"/, /pair 1 would share its HaVip with pair 0/]));
  test('a haVip in non-strict notation', () =>
    expectError(() => build([t('a')], { ...gw, haVips: ['10.0.255.0250'] }), [/gateway\.haVips\[0\]/, /strict notation/]));
  test('a haVip inside an overlay pod CIDR', () =>
    expectError(() => build([t('a')], { ...gw, haVips: ['100.64.1.1'] }, { ...fv, podCidrs: ['100.64.0.0/10'] }), [/gateway\.haVips\[0\]/, /podCidrs\[0\]/]));
  test('invalid sshCidrs', () => {
    expectError(() => build([t('a')], { ...gw, sshCidrs: ['203.0.113.0/24', '203.0.113/24'] }), [/gateway\.sshCidrs\[1\]/, /"203\.0\.113\/24"/, /strict notation/]);
    expectError(() => build([t('a')], { ...gw, sshCidrs: ['203.0.113.7/24'] }), [/gateway\.sshCidrs\[0\]/, /host bits/]);
  });
});

describe('cost guards: pair pins', () => {
  test('a pin beyond the pairs the tenants need requires gateway.pairCount', () =>
    expectError(() => build([t('a', { pair: 999 })]), [/tenants\[0\]\.pair = 999/, /1 listed tenant\(s\) need 1 pair\(s\) at 3 per member/, /pairs 0\.\.0/, /set gateway\.pairCount to at least 1000/]));
  test('pins inside the pairs the tenants need are fine without pairCount', () => {
    const m = build(['a', 'b', 'c', 'd'].map((n) => t(n, n === 'a' ? { pair: 1 } : {})));
    expect(m.tenants.map((x) => x.pairIndex)).toEqual([1, 0, 0, 0]);
  });
  test('with pairCount a far pin is allowed; pairs stay indexed and only pairs with tenants are in use', () => {
    const m = build([t('a', { pair: 4 })], { ...gw, pairCount: 5 });
    expect(m.pairs.map((p) => p.index)).toEqual([0, 1, 2, 3, 4]);
    expect(pairsInUse(m).map((p) => p.index)).toEqual([4]);
  });
  test('a pair whose tenants are all retired is not in use', () => {
    const m = build([t('a'), t('b'), t('c'), t('d', { retired: true }), t('e')], { ...gw, instanceType: 'c6in.large' });
    expect(m.tenants.map((x) => [x.name, x.pairIndex])).toEqual([['a', 0], ['b', 0], ['c', 1], ['e', 2]]);
    expect(pairsInUse(m).map((p) => p.index)).toEqual([0, 1, 2]);
    const m2 = build([t('a'), t('b'), t('c', { retired: true }), t('d', { retired: true }), t('e')], { ...gw, instanceType: 'c6in.large' });
    expect(pairsInUse(m2).map((p) => p.index)).toEqual([0, 2]);
  });
});
