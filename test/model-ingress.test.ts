import { buildCrossVpcModel, TenantInput } from '../lib';
import { INBOUND_MAX_SLOT, inboundSnatPorts, inboundTable, MARK_MAX, MARK_MIN } from '../lib/contract';
import { expectCrossVpcError } from './helpers';

const fv = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
const peering = { functionRouteTableIds: ['rtb-f1'], tenantRouteTableIds: ['rtb-t1'] };
const nat = (name: string, extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['172.16.0.0/16'], ...extra });
const web = { protocol: 'tcp' as const, port: 443, target: '10.0.5.10:8443' };
const build = (tenants: TenantInput[], gw: object = { subnetId: 'subnet-g' }) => buildCrossVpcModel('Stack/CrossVpc', { functionVpc: fv, tenants, gateway: gw as any });
const expectError = (fn: () => unknown, parts: Array<string | RegExp>) => expectCrossVpcError(fn, parts, 'Stack/CrossVpc');

describe('model: ingress port forwards (seed 001)', () => {
  test('forwards are parsed in order; a tenant without them has none', () => {
    const m = build([nat('alpha', { inbound: [web, { protocol: 'udp', port: 443, target: '10.0.200.1:53' }] }), nat('beta')]);
    expect(m.tenants[0].inbound).toEqual([
      { protocol: 'tcp', port: 443, targetIp: '10.0.5.10', targetPort: 8443 },
      { protocol: 'udp', port: 443, targetIp: '10.0.200.1', targetPort: 53 },
    ]);
    expect(m.tenants[1].inbound).toEqual([]);
  });

  test('adding a tenant with forwards moves nobody: slots, VNIs and zones of the others stay', () => {
    const before = build([nat('alpha'), nat('beta')]);
    const after = build([nat('alpha'), nat('beta'), nat('gamma', { inbound: [web] })]);
    expect(after.tenants.slice(0, 2)).toEqual(before.tenants);
  });

  test.each<[string, Partial<TenantInput>, Array<string | RegExp>]>([
    ['another protocol', { inbound: [{ ...web, protocol: 'icmp' as any }] }, [/tenants\[0\]\.inbound\[0\]\.protocol/, /"icmp"/, /'tcp' or 'udp'/]],
    ['port 0', { inbound: [{ ...web, port: 0 }] }, [/inbound\[0\]\.port/, /= 0/, /1 to 65535/]],
    ['port 65536', { inbound: [{ ...web, port: 65536 }] }, [/inbound\[0\]\.port/, /65536/]],
    ['a fractional port', { inbound: [{ ...web, port: 80.5 }] }, [/inbound\[0\]\.port/, /80\.5/]],
    ['a target without a port', { inbound: [{ ...web, target: '10.0.5.10' }] }, [/inbound\[0\]\.target/, /"10\.0\.5\.10"/, /a\.b\.c\.d:port/]],
    ['a target port 0', { inbound: [{ ...web, target: '10.0.5.10:0' }] }, [/inbound\[0\]\.target/, /a\.b\.c\.d:port/]],
    ['a target port with a leading zero', { inbound: [{ ...web, target: '10.0.5.10:080' }] }, [/inbound\[0\]\.target/]],
    ['a target address in loose notation', { inbound: [{ ...web, target: '10.0.5.010:80' }] }, [/inbound\[0\]\.target/, /strict notation/]],
    ['a target outside the function VPC', { inbound: [{ ...web, target: '172.16.0.5:80' }] }, [/inbound\[0\]\.target/, /outside functionVpc\.vpcCidr 10\.0\.0\.0\/16/, /address of the function VPC/]],
    ['the same protocol and port twice', { inbound: [web, { ...web, target: '10.0.5.11:80' }] }, [/inbound\[1\]\.port/, /already forwards tcp port 443 \(inbound\[0\]\)/, /once/]],
    ['forwards on the peering path', { path: 'peering', peering, subnetId: undefined, inbound: [web] }, [/tenants\[0\]\.inbound/, /path 'peering'/, /need path 'nat'/]],
    ['forwards on the auto path', { path: 'auto', peering, inbound: [web] }, [/tenants\[0\]\.inbound/, /path 'auto'/]],
    ['a list that is not one', { inbound: 'tcp:443' as any }, [/tenants\[0\]\.inbound/, /a list of port forwards/]],
  ])('refuses %s', (_, extra, parts) => expectError(() => build([nat('alpha', extra), nat('beta')]), parts));

  test("refuses a target that is a pair's HaVip (control: the next address is fine)", () => {
    const gw = { subnetId: 'subnet-g', haVips: ['10.0.255.250'] };
    expectError(() => build([nat('alpha', { inbound: [{ ...web, target: '10.0.255.250:443' }] })], gw), [/inbound\[0\]\.target/, /pair 0's HaVip/]);
    expect(build([nat('alpha', { inbound: [{ ...web, target: '10.0.255.251:443' }] })], gw).tenants[0].inbound[0].targetIp).toBe('10.0.255.251');
  });

  test(`a tenant with forwards must sit in slots 1..${INBOUND_MAX_SLOT}; one without may sit beyond`, () => {
    const gw = { subnetId: 'subnet-g', tenantsPerMember: 60 };
    expect(build([nat('alpha', { pair: 0, slot: INBOUND_MAX_SLOT, inbound: [web] })], gw).tenants[0].slot).toBe(INBOUND_MAX_SLOT);
    expect(build([nat('alpha', { pair: 0, slot: INBOUND_MAX_SLOT + 1 })], gw).tenants[0].slot).toBe(INBOUND_MAX_SLOT + 1);
    expectError(() => build([nat('beta'), nat('alpha', { pair: 0, slot: INBOUND_MAX_SLOT + 1, inbound: [web] })], gw),
      [/tenants\[1\]\.inbound/, new RegExp(`slot ${INBOUND_MAX_SLOT + 1} of pair 0`), new RegExp(`slots 1\\.\\.${INBOUND_MAX_SLOT}`), /pin the tenant to a free slot/]);
  });
});

describe('contract: ingress numbers', () => {
  test('every slot range lies within 1024..65535, clear of the others; the one past the last does not fit', () => {
    const ranges = Array.from({ length: INBOUND_MAX_SLOT }, (_, k) => inboundSnatPorts(k + 1));
    expect(ranges[0]).toEqual({ from: 21000, to: 21999 });
    expect(ranges[ranges.length - 1].to).toBeLessThanOrEqual(65535);
    for (let k = 1; k < ranges.length; k++) expect(ranges[k].from).toBe(ranges[k - 1].to + 1);
    expect(() => inboundSnatPorts(INBOUND_MAX_SLOT + 1)).toThrow(/outside/);
    expect(() => inboundSnatPorts(0)).toThrow(/outside/);
  });
  test('an inbound table is never a tenant table', () => {
    for (const t of [MARK_MIN, MARK_MIN + 1001, MARK_MAX]) {
      expect(inboundTable(t)).toBeGreaterThan(MARK_MAX);
      expect(inboundTable(t) & MARK_MAX).toBe(t & MARK_MAX);
    }
  });
});
