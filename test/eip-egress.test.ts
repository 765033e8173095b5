import { TerraformStack, Testing } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { buildCrossVpcModel, CrossVpcNat, FunctionVpcLink, TenantInput, TenantProps } from '../lib';
import { parseTenantTable } from '../lib/contract';
import { parseConfig } from '../agent/config';
import { execFileSync } from 'child_process';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { asDeployed, documentOf, expectCrossVpcError, haveTool, isRootLinux, userDataOf } from './helpers';

const EIP_A = 'eipalloc-0123456789abcdef0';
const EIP_B = 'eipalloc-0fedcba9';
const fv = { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' };
const nat = (name: string, vni: number, extra: Partial<TenantInput> = {}): TenantInput => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['172.16.0.0/16'], vni, ...extra });
const eip = (eipAllocationId: string, privateIp: string) => ({ internetEgress: { eipAllocationId, privateIp } });
const build = (tenants: TenantInput[], gateway: object = { subnetId: 'subnet-g' }, functionVpc: object = fv) =>
  buildCrossVpcModel('Stack/CrossVpc', { functionVpc: functionVpc as any, tenants, gateway: gateway as any });
const expectError = (fn: () => unknown, parts: Array<string | RegExp>) => expectCrossVpcError(fn, parts, 'Stack/CrossVpc');

describe('model: internet egress through a platform EIP', () => {
  test('the object form is kept on the NAT path, next to the other modes', () => {
    const m = build([nat('alpha', 1001, eip(EIP_A, '10.0.255.20')), nat('beta', 1002, { internetEgress: 'tenantVpc' }), nat('gamma', 1003)]);
    expect(m.tenants.map((t) => [t.name, t.internetEgress])).toEqual([['alpha', { eipAllocationId: EIP_A, privateIp: '10.0.255.20' }], ['beta', 'tenantVpc'], ['gamma', 'none']]);
  });
  // Each case with its control: the same tenants pass with the one value fixed.
  test.each<[string, TenantInput[], Array<string | RegExp>, TenantInput[]]>([
    ['a public IP for the allocation id', [nat('a', 1, eip('52.1.2.3', '10.0.255.20'))], [/tenants\[0\]\.internetEgress\.eipAllocationId = "52\.1\.2\.3"/, /allocation id/, /Fix:/], [nat('a', 1, eip(EIP_A, '10.0.255.20'))]],
    ['an association id', [nat('a', 1, eip('eipassoc-01234567', '10.0.255.20'))], [/eipAllocationId/, /not a public IP or an association id/], [nat('a', 1, eip(EIP_B, '10.0.255.20'))]],
    ['a loose private IP', [nat('a', 1, eip(EIP_A, '10.0.255.020'))], [/internetEgress\.privateIp/, /strict notation/], [nat('a', 1, eip(EIP_A, '10.0.255.20'))]],
    ['no private IP', [nat('a', 1, { internetEgress: { eipAllocationId: EIP_A } as any })], [/internetEgress\.privateIp/, /needs the private address/], [nat('a', 1, eip(EIP_A, '10.0.255.21'))]],
    ['an unknown field', [nat('a', 1, { internetEgress: { ...eip(EIP_A, '10.0.255.20').internetEgress, publicIp: '52.1.2.3' } as any })], [/internetEgress\.publicIp/, /takes only eipAllocationId and privateIp/], [nat('a', 1, eip(EIP_A, '10.0.255.20'))]],
    ['a private IP outside the function VPC', [nat('a', 1, eip(EIP_A, '10.1.0.20'))], [/internetEgress\.privateIp = "10\.1\.0\.20"/, /outside the function VPC 10\.0\.0\.0\/16/], [nat('a', 1, eip(EIP_A, '10.0.1.20'))]],
    ['two tenants on one EIP', [nat('a', 1, eip(EIP_A, '10.0.255.20')), nat('b', 2, eip(EIP_A, '10.0.255.21'))], [/tenants\[1\]\.internetEgress\.eipAllocationId/, /tenant "a" already egresses through/], [nat('a', 1, eip(EIP_A, '10.0.255.20')), nat('b', 2, eip(EIP_B, '10.0.255.21'))]],
    ['two tenants on one private IP', [nat('a', 1, eip(EIP_A, '10.0.255.20')), nat('b', 2, eip(EIP_B, '10.0.255.20'))], [/tenants\[1\]\.internetEgress\.privateIp/, /tenant "a" already uses 10\.0\.255\.20/], [nat('a', 1, eip(EIP_A, '10.0.255.20')), nat('b', 2, eip(EIP_B, '10.0.255.21'))]],
    ['EIP egress on the peering path', [nat('p', 3, { path: 'peering', subnetId: undefined, peering: { functionRouteTableIds: ['rtb-f'], tenantRouteTableIds: ['rtb-t'] }, cidrs: ['10.20.0.0/16'], ...eip(EIP_A, '10.0.255.20') }), nat('a', 1)], [/tenants\[0\]\.internetEgress/, /needs path 'nat'/], [nat('p', 3, eip(EIP_A, '10.0.255.20')), nat('a', 1)]],
  ])('refuses %s (control: the fixed value passes)', (_, bad, parts, good) => {
    expectError(() => build(bad), parts);
    expect(() => build(good)).not.toThrow();
  });
  test("refuses a literal HaVip and an overlay pod range (controls: another address passes); a retired tenant holds nothing", () => {
    const gw = { subnetId: 'subnet-g', haVips: ['10.0.255.20'] };
    expectError(() => build([nat('a', 1, eip(EIP_A, '10.0.255.20'))], gw), [/internetEgress\.privateIp/, /pair 0's HaVip \(gateway\.haVips\[0\]\)/]);
    expect(() => build([nat('a', 1, eip(EIP_A, '10.0.255.21'))], gw)).not.toThrow();
    const pods = { ...fv, vpcCidr: '10.0.0.0/16', podCidrs: ['100.64.0.0/16'] };
    expectError(() => build([nat('a', 1, eip(EIP_A, '100.64.0.20'))], undefined, pods), [/outside the function VPC|overlay pod range/]);
    expect(() => build([nat('a', 1, eip(EIP_A, '10.0.0.20'))], undefined, pods)).not.toThrow();
    expect(() => build([nat('a', 1, { ...eip(EIP_A, '10.0.255.20'), retired: true }), nat('b', 2, eip(EIP_A, '10.0.255.20'))])).not.toThrow();
  });
  test('a token allocation id is refused with the reason a literal is needed', () => {
    expectError(() => build([nat('a', 1, eip('${TfToken[TOKEN.1]}', '10.0.255.20'))]), [/eipAllocationId/, /unresolved Terraform token/, /names it/]);
  });
});

function synth(tenants: TenantProps[]): any {
  const s = new TerraformStack(Testing.app(), 'S');
  new AwsProvider(s, 'aws', { region: 'eu-west-1' });
  const nat = new CrossVpcNat(s, 'Nat', { functionVpc: fv, gateway: { subnetId: 'subnet-g' }, tenants, outputs: true });
  new FunctionVpcLink(s, 'Link', { nat, agentImage: 'img:1' });
  return JSON.parse(Testing.synth(s));
}
const entries = (json: any, type: string, part: string) => Object.entries<any>(json.resource?.[type] ?? {}).filter(([k]) => k.includes(part)).map(([, v]) => v);

describe('CrossVpcNat: EIP egress', () => {
  const alpha: TenantProps = { ...nat('alpha', 1001), ...eip(EIP_A, '10.0.255.20') } as TenantProps;
  const beta: TenantProps = nat('beta', 1002) as TenantProps;
  const json = synth([alpha, beta]);

  test("the pair document's rows carry the egress IP and allocation; the ruleset SNATs alpha's tunnel to it and finds replies by it", () => {
    const doc = JSON.parse(documentOf(json, 0));
    for (const m of ['a', 'b']) {
      const rows = parseTenantTable(asDeployed(doc.members[m].tenants));
      expect(rows.map((r) => [r.name, r.egress, r.egressIp, r.eipAllocationId])).toEqual([['alpha', 'eip', '10.0.255.20', EIP_A], ['beta', 'none', '-', '-']]);
    }
    const rs: string = doc.members.a.ruleset;
    expect(rs).toContain('map egress_ip_of_if { typeof iifname : ip saddr; elements = { "cx1001" : 10.0.255.20 } }');
    expect(rs).toMatch(/map zone_of_egress_ip \{ typeof ip daddr : ct zone; elements = \{ 10\.0\.255\.20 : \d+ \} \}/);
    expect(rs).toContain('iifname @eip_tunnels oifname != @tenant_ifs oifname != @tunnel_ifs ip saddr @node_cidrs ip daddr != @non_public snat ip to iifname map @egress_ip_of_if');
    expect(rs).toContain('ip daddr @egress_ips counter name to_gateway drop');
    // beta's tunnel is in no EIP set.
    expect(rs).not.toMatch(/eip_tunnels \{[^}]*cx1002/);
  });

  test('nft -c accepts the ruleset with EIP tenants (in a throwaway network namespace)', () => {
    if (!haveTool('nft', ['--version']) || !isRootLinux()) return;
    const f = join(mkdtempSync(join(tmpdir(), 'crossvpc-eip-')), 'ruleset.nft');
    writeFileSync(f, asDeployed(JSON.parse(documentOf(json, 0)).members.a.ruleset));
    execFileSync('unshare', ['-n', 'nft', '-c', '-f', f], { encoding: 'utf8' });
  });

  test('the egress IP is reserved in the gateway subnet, checked against it and the HaVip at plan time', () => {
    const [r] = entries(json, 'aws_ec2_subnet_cidr_reservation', 'EgressIpReservation');
    expect(r).toMatchObject({ subnet_id: 'subnet-g', cidr_block: '10.0.255.20/32', reservation_type: 'explicit' });
    const pre = r.lifecycle.precondition[0];
    expect(pre.condition).toContain('10.0.255.20');
    expect(pre.condition).toMatch(/cidrhost\(data\.aws_subnet\..*GatewaySubnet.*cidr_block, -2\)/);
    expect(pre.error_message).toMatch(/internetEgress\.privateIp 10\.0\.255\.20 must be a usable host of the gateway subnet subnet-g/);
  });

  test("the role may associate alpha's EIP, onto the pair's primary ENIs only; no Terraform-owned association", () => {
    const docs = json.data.aws_iam_policy_document;
    const stmt = Object.entries<any>(docs).find(([k]) => k.includes('AssociateEipsPolicy'))![1].statement[0];
    expect(stmt.actions).toEqual(['ec2:AssociateAddress']);
    expect(stmt.resources[0]).toMatch(/^arn:\$\{data\.aws_partition\..*\.partition\}:ec2:\$\{data\.aws_region\..*\.region\}:\$\{data\.aws_caller_identity\..*\.account_id\}:elastic-ip\/eipalloc-0123456789abcdef0$/);
    expect(stmt.resources.slice(1)).toHaveLength(2);
    for (const r of stmt.resources.slice(1)) expect(r).toMatch(/aws_network_interface\..*Member[AB]PrimaryEni.*\.arn/);
    expect(json.resource.aws_eip_association).toBeUndefined();
    // Without EIP tenants, no such permission at all.
    const plain = synth([beta]);
    expect(Object.keys(plain.data.aws_iam_policy_document).filter((k) => k.includes('AssociateEips'))).toEqual([]);
  });

  test('adding or retiring an EIP tenant leaves user data unchanged; the agent table sends its public traffic into the tunnel', () => {
    const userData = (j: any) => Object.values<any>(j.resource.aws_instance).map((i) => userDataOf(i, j));
    expect(userData(synth([beta]))).toEqual(userData(json));
    expect(userData(synth([{ ...alpha, retired: true }, beta]))).toEqual(userData(json));
    const parsed = parseConfig(asDeployed(Object.values<any>(json.resource.kubernetes_config_map_v1)[0].data['tenants.json']));
    expect(parsed.version).toBe(3);
    expect(parsed.tenants.map((t) => [t.name, t.internetEgress])).toEqual([['alpha', true], ['beta', undefined]]);
  });
});
