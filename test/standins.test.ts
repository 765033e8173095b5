/**
 * Stand-in placement: where the emulator puts tenant subnets, ENIs, NAT IPs and the Redis
 * probe for tenants of any width. Pure: synthesizes plans, needs no root.
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { TenantProps } from '../lib';
import { evaluate, Plan, readPlan } from '../lib/emulate/plan';
import { buildStandIns, StandIns, tenantSubnets } from '../lib/emulate/standins';
import { loadEmulatedPlan } from '../lib/emulate/member-image';
import { synthExample } from './helpers';
import { OverlappingTenantsOptions } from '../examples/overlapping-tenants/stack';

function planOf(opts: OverlappingTenantsOptions): Plan {
  const dir = mkdtempSync(join(tmpdir(), 'crossvpc-standins-'));
  writeFileSync(join(dir, 'cdk.tf.json'), synthExample(opts));
  return readPlan(join(dir, 'cdk.tf.json'));
}

/** As the emulator does: the agent table's literal destinations tell the stand-ins where tenants live. */
function standInsOf(plan: Plan): StandIns {
  const raw = JSON.parse(plan.agentConfigRaw.replace(/\$\{[^}]*\}/g, 'X'));
  return buildStandIns(plan, Object.fromEntries(raw.tenants.map((t: any) => [t.name, t.cidrs])));
}

/** Per tenant: its stand-in subnet, router, ENI IPs, NAT IP and probe, as the stand-ins resolve the plan. */
function layout(plan: Plan, s: StandIns) {
  const out: Record<string, { subnet: string; router: string; enis: string[]; natIp: string; probe: string; probeNet: string; prefix: number }> = {};
  const enis = plan.json.resource.aws_network_interface;
  const res = plan.json.resource.aws_ec2_subnet_cidr_reservation;
  const names = [...new Set(Object.values<any>(enis).map((e) => e.tags?.['crossvpc:tenant']).filter(Boolean))] as string[];
  for (const t of names) {
    const keys = Object.keys(enis).filter((k) => enis[k].tags?.['crossvpc:tenant'] === t).sort();
    const subnet = s.subnet(enis[keys[0]].subnet_id);
    const nat = Object.entries<any>(res).find(([k]) => k.includes(`Tenant-${t}-NatIp`))![1];
    const p = s.probe(t);
    out[t] = {
      subnet, router: s.router(subnet),
      enis: keys.map((k) => s.resolve(`aws_network_interface.${k}.private_ip`)),
      natIp: evaluate(nat.cidr_block, s.resolve).replace('/32', ''),
      probe: p.ip, probeNet: p.net, prefix: p.prefix,
    };
  }
  return out;
}

const t = (name: string, vni: number, cidrs: string[], extra: Partial<TenantProps> = {}): TenantProps =>
  ({ name, vpcId: `vpc-0${name}`, subnetId: `subnet-0${name}`, cidrs, vni, ...extra });

describe('stand-in placement', () => {
  test('the /16 example keeps its historical addresses', () => {
    const plan = planOf({});
    const s = standInsOf(plan);
    const l = layout(plan, s);
    for (const name of ['alpha', 'beta']) {
      expect(l[name]).toEqual({
        subnet: '172.16.255.0/24', router: '172.16.255.1', enis: ['172.16.255.10', '172.16.255.11'], natIp: '172.16.255.254',
        probe: '172.16.0.3', probeNet: '172.16.0.0/24', prefix: 24,
      });
    }
    expect(s.functionCidr).toBe('10.0.0.0/16');
    expect(s.nodeSubnet).toBe('10.0.1.0/24');
  });

  test('a /24 tenant gets that /24 as its subnet; a /32 destination is the probe, with the subnet beside it', () => {
    const plan = planOf({ tenants: [t('alpha', 1001, ['172.16.5.0/24']), t('beta', 1002, ['172.16.0.0/16'], { allowedDestinations: ['172.16.5.3/32'] })] });
    const l = layout(plan, standInsOf(plan));
    expect(l.alpha).toEqual({
      subnet: '172.16.5.0/24', router: '172.16.5.1', enis: ['172.16.5.10', '172.16.5.11'], natIp: '172.16.5.254',
      probe: '172.16.5.3', probeNet: '172.16.5.0/24', prefix: 32,
    });
    expect(l.beta).toEqual({
      subnet: '172.16.255.0/24', router: '172.16.255.1', enis: ['172.16.255.10', '172.16.255.11'], natIp: '172.16.255.254',
      probe: '172.16.5.3', probeNet: '172.16.255.0/24', prefix: 32,
    });
  });

  test('every tenant width from /16 to /28 and every destination down to /32 places without collisions', () => {
    for (let len = 16; len <= 28; len++) {
      const cidr = `172.16.0.0/${len}`;
      const tenants = [t('alpha', 1001, [cidr]), t('beta', 1002, ['172.16.0.0/16'], { allowedDestinations: [`172.16.0.${len - 16}/32`] })];
      const plan = planOf({ tenants });
      const l = layout(plan, standInsOf(plan));
      for (const [name, x] of Object.entries(l)) {
        const inSubnet = (ip: string) => contains(x.subnet, ip);
        const addrs = [x.router, ...x.enis, x.natIp];
        if (inSubnet(x.probe)) addrs.push(x.probe);
        expect({ len, name, distinct: new Set(addrs).size, inside: addrs.every(inSubnet) }).toEqual({ len, name, distinct: addrs.length, inside: true });
        expect(contains(name === 'alpha' ? cidr : `172.16.0.${len - 16}/32`, x.probe)).toBe(true);
      }
      // A tenant as narrow as its subnet gets exactly that subnet.
      if (len >= 23) expect(l.alpha.subnet).toBe(cidr);
    }
  });

  test('several subnets of one tenant split a narrow range without colliding', () => {
    expect(tenantSubnets('x', ['172.16.5.0/24'], 1)).toEqual(['172.16.5.0/24']);
    expect(tenantSubnets('x', ['172.16.5.0/24'], 3)).toEqual(['172.16.5.192/26', '172.16.5.128/26', '172.16.5.64/26']);
    expect(tenantSubnets('x', ['172.16.4.0/22'], 2)).toEqual(['172.16.7.0/24', '172.16.6.0/24']);
    // Too narrow to split into /28s: beside the destination, in its /16, never over a destination.
    expect(tenantSubnets('x', ['172.16.5.0/28'], 2)).toEqual(['172.16.255.0/24', '172.16.254.0/24']);
    expect(tenantSubnets('x', ['172.16.5.3/32', '172.16.255.0/24'], 1)).toEqual(['172.16.254.0/24']);
  });

  test('what cannot be placed fails naming the tenant, the CIDR and why', () => {
    expect(() => tenantSubnets('gamma', ['172.16.4.0/22'], 5)).toThrow('tenant gamma: 172.16.4.0/22 has no room for 5 stand-in /24 subnets');
    expect(() => tenantSubnets('gamma', ['172.0.0.0/12'], 1)).toThrow(/tenant gamma: destination 172.0.0.0\/12 is wider than a VPC/);
    // An explicit NAT IP the stand-in subnet does not hold is refused, never silently misplaced.
    const plan = planOf({ tenants: [t('alpha', 1001, ['172.16.0.0/16'], { natIp: '172.16.0.50' })] });
    expect(() => standInsOf(plan)).toThrow(/tenant alpha: reserved IP \S+ 172\.16\.0\.50 lies outside the stand-in subnet 172\.16\.255\.0\/24/);
  });
});

function contains(cidr: string, ip: string): boolean {
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const [base, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

describe('peered tenants as the emulator reads them', () => {
  const delta = (extra: Partial<TenantProps> = {}): TenantProps => ({
    name: 'delta', vpcId: 'vpc-0delta', cidrs: ['172.16.0.0/16', '10.20.0.0/16'], vni: 1004, path: 'peering',
    peering: { functionRouteTableIds: ['rtb-0f1', 'rtb-0f2'], tenantRouteTableIds: ['rtb-0d1'], tenantSecurityGroupIds: ['sg-0d1'], ports: ['tcp:6379', 'all'] }, ...extra,
  });
  const fileOf = (opts: OverlappingTenantsOptions, edit: (json: any) => void = () => undefined): string => {
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-standins-'));
    const json = JSON.parse(synthExample(opts));
    edit(json);
    writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(json));
    return join(dir, 'cdk.tf.json');
  };

  test('routes split by side (function side: the destinations once per CIDR; tenant side: the sources), rules, and a probe on the first range', () => {
    const p = loadEmulatedPlan(fileOf({ extraTenants: [delta()] }));
    expect(p.peerings).toEqual([{
      tenant: 'delta', connection: expect.stringContaining('Peering-delta_Connection'),
      toTenant: ['10.20.0.0/16', '172.16.0.0/16'], toFunction: ['10.0.0.0/16'],
      ingress: [{ protocol: '-1', fromPort: undefined, toPort: undefined, cidr: '10.0.0.0/16' }, { protocol: 'tcp', fromPort: 6379, toPort: 6379, cidr: '10.0.0.0/16' }],
    }]);
    expect(p.standIns.probe('delta')).toEqual({ ip: '172.16.0.3', net: '172.16.0.0/24', prefix: 24 });
    // What Terraform would build is what is routed: a route missing from the plan is missing here too.
    const bug = loadEmulatedPlan(fileOf({ extraTenants: [delta()] }, (j) => {
      for (const k of Object.keys(j.resource.aws_route)) if (k.includes('TenantRoute')) delete j.resource.aws_route[k];
    }));
    expect(bug.peerings[0].toFunction).toEqual([]);
    expect(loadEmulatedPlan(fileOf({})).peerings).toEqual([]);
  });

  test('a peering the ConfigMap does not list, or pods the emulation cannot stand in for, fail with the reason', () => {
    expect(() => loadEmulatedPlan(fileOf({ extraTenants: [delta()] }, (j) => delete j.resource.aws_vpc_peering_connection))).toThrow(/the ConfigMap's peered tenants \(delta\) are not the tenants of the aws_vpc_peering_connection resources \(none\)/);
    expect(() => loadEmulatedPlan(fileOf({ extraTenants: [delta()], functionVpc: { podCidrs: ['100.64.0.0/16'] } }))).toThrow(/functionVpc.podCidrs \(100.64.0.0\/16\).*not supported yet/);
  });
});
