import { TerraformStack, Testing } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { CrossVpcNat, TenantProps } from '../lib';
import { parseTenantTable } from '../lib/contract';
import { documentOf, userDataOf } from './helpers';

const web = { protocol: 'tcp' as const, port: 443, target: '10.0.5.10:8443' };
const alpha: TenantProps = { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16', '172.17.0.0/16'], vni: 1001 };
const beta: TenantProps = { name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'], vni: 1002 };

function synth(tenants: TenantProps[]): any {
  const s = new TerraformStack(Testing.app(), 'S');
  new AwsProvider(s, 'aws', { region: 'eu-west-1' });
  new CrossVpcNat(s, 'Nat', { functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' }, gateway: { subnetId: 'subnet-g' }, tenants });
  return JSON.parse(Testing.synth(s));
}
const of = (json: any, type: string) => Object.entries<any>(json.resource[type] ?? {});
const natEniGroups = (json: any, tenant: string) => of(json, 'aws_security_group').filter(([, g]) => g.tags?.['crossvpc:tenant'] === tenant).map(([, g]) => g);

describe('CrossVpcNat: ingress port forwards (seed 001)', () => {
  const plain = synth([alpha, beta]);
  const json = synth([{ ...alpha, inbound: [web, { protocol: 'udp', port: 53, target: '10.0.0.2:53' }] }, beta]);

  test("alpha's NAT ENI groups (both members) admit exactly its forwarded ports from its CIDRs; beta's admit nothing", () => {
    const groups = natEniGroups(json, 'alpha');
    expect(groups).toHaveLength(2);
    for (const g of groups) {
      expect(g.ingress.map((r: any) => [r.protocol, r.from_port, r.to_port, r.cidr_blocks])).toEqual([
        ['tcp', 443, 443, ['172.16.0.0/16', '172.17.0.0/16']],
        ['udp', 53, 53, ['172.16.0.0/16', '172.17.0.0/16']],
      ]);
    }
    for (const g of natEniGroups(json, 'beta')) expect(g.ingress).toEqual([]);
    // Control: without forwards alpha's groups admit nothing either.
    for (const g of natEniGroups(plain, 'alpha')) expect(g.ingress).toEqual([]);
  });

  test("the pair group admits each target's replies on alpha's SNAT ports, with a plan-time check that the target is no HaVip or reserved host", () => {
    const rules = of(json, 'aws_vpc_security_group_ingress_rule').filter(([id]) => id.includes('ForwardReplies')).map(([, r]) => r);
    expect(rules.map((r) => [r.cidr_ipv4, r.ip_protocol, r.from_port, r.to_port])).toEqual([['10.0.5.10/32', 'tcp', 21000, 21999], ['10.0.0.2/32', 'udp', 21000, 21999]]);
    expect(rules[1].lifecycle.precondition[0].condition).toMatch(/contains\(\[.*cidrhost\(.*, 2\).*\], "10\.0\.0\.2"\)/);
    expect(of(plain, 'aws_vpc_security_group_ingress_rule').filter(([id]) => id.includes('ForwardReplies'))).toEqual([]);
  });

  test("removing one forward leaves the other's reply rule as it was (named by protocol and port, not position)", () => {
    const replies = (j: any) => Object.fromEntries(of(j, 'aws_vpc_security_group_ingress_rule').filter(([id]) => id.includes('ForwardReplies')));
    const both = replies(json);
    const udpOnly = replies(synth([{ ...alpha, inbound: [{ protocol: 'udp', port: 53, target: '10.0.0.2:53' }] }, beta]));
    expect(Object.keys(udpOnly)).toHaveLength(1);
    const [id] = Object.keys(udpOnly);
    expect(both[id]).toEqual(udpOnly[id]);
    expect(Object.keys(both)).toHaveLength(2); // control: the tcp rule was there and went
  });

  test("forwards live in the pair document only: user data, AMIs and beta's resources do not change", () => {
    const rows = parseTenantTable(JSON.parse(documentOf(json, 0)).members.a.tenants);
    expect(rows.map((r) => [r.name, r.inbound])).toEqual([
      ['alpha', [{ protocol: 'tcp', port: 443, targetIp: '10.0.5.10', targetPort: 8443 }, { protocol: 'udp', port: 53, targetIp: '10.0.0.2', targetPort: 53 }]],
      ['beta', []],
    ]);
    expect(JSON.parse(documentOf(json, 0)).members.b.ruleset).toContain('"tn1001" . ${');
    expect(documentOf(json, 0)).not.toBe(documentOf(plain, 0)); // control: the document did change
    for (const [id, inst] of of(json, 'aws_instance')) {
      expect(userDataOf(inst, json)).toBe(userDataOf(plain.resource.aws_instance[id], plain));
      expect(inst.ami).toBe(plain.resource.aws_instance[id].ami);
    }
    const betaResources = (j: any) => Object.entries<any>(j.resource).flatMap(([type, rs]) => Object.entries<any>(rs).filter(([id]) => id.includes('beta')).map(([id, r]) => [type, id, r]));
    expect(betaResources(json)).toEqual(betaResources(plain));
    expect(betaResources(plain).length).toBeGreaterThan(3);
  });
});
