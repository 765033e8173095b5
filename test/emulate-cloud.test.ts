/**
 * The emulator's cloud and plan readers without root: the SSM and EC2 fakes' request
 * handling, the role policies read from a plan, each pair's configuration document, and
 * stand-ins that stay put across plans of one run.
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { authenticate, CloudIdentities, CloudIdentity, ec2Authorize, ec2AuthorizeAssociate, elasticIpArn, eniArn, parseSigV4, REGION, ssmParameterArn, ssmRequest, SsmStore } from '../lib/emulate/cloud-api';
import { instancePermissions, isAllowed, wildcardMatch } from '../lib/emulate/iam';
import { loadEmulatedPlan, memberRows } from '../lib/emulate/member-image';
import { readPairDocuments } from '../lib/emulate/pair-documents';
import { readPlan } from '../lib/emulate/plan';
import { decodePairDocumentValue, parseTenantTable, renderPairDocument } from '../lib/contract';
import { synthJson } from './helpers';
import { OverlappingTenantsOptions } from '../examples/overlapping-tenants/stack';

const SIG = 'SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=' + 'ab'.repeat(32);
const auth = (ak: string, service = 'ssm', region = REGION) => `AWS4-HMAC-SHA256 Credential=${ak}/20260101/${region}/${service}/aws4_request, ${SIG}`;

const identity = (member: string, statements: CloudIdentity['statements']): CloudIdentity => ({
  member, accessKeyId: `ASIA${member.toUpperCase()}000000000000`.slice(0, 20), secretAccessKey: 's', token: `tok-${member}`, role: 'crossvpc-pair0-role', statements,
});
const PARAM = '/crossvpc/pair0-abcdef123456';
const OTHER = '/crossvpc/pair1-abcdef123456';
const ids: CloudIdentities = {
  '169.254.170.1': identity('g0a', [{ effect: 'Allow', actions: ['ssm:GetParameter'], resources: [ssmParameterArn(PARAM)] }, { effect: 'Allow', actions: ['ec2:AssignPrivateIpAddresses'], resources: [eniArn('eni-1')] }]),
  '169.254.170.2': identity('g0b', [{ effect: 'Allow', actions: ['ssm:*'], resources: ['*'] }, { effect: 'Deny', actions: ['ssm:GetParameter'], resources: [`arn:aws:ssm:*:*:parameter/crossvpc/pair1-*`] }]),
};
const store: SsmStore = { [PARAM]: { value: 'H4sIAAAA', version: 3, lastModified: 1700000000 }, [OTHER]: { value: 'x', version: 1, lastModified: 1700000000 } };
const g0a = ids['169.254.170.1'];
const headers = (id: CloudIdentity, over: Record<string, string> = {}) => ({
  authorization: auth(id.accessKeyId), 'x-amz-security-token': id.token, 'x-amz-target': 'AmazonSSM.GetParameter', 'content-type': 'application/x-amz-json-1.1', ...over,
});
const get = (h: Record<string, string>, name = PARAM) => {
  const r = ssmRequest(h, JSON.stringify({ Name: name }), ids, store);
  return { status: r.status, body: JSON.parse(r.body), log: r.log };
};

describe('emulated SSM GetParameter (AWS JSON 1.1)', () => {
  test('a member serves its own pair\'s parameter with AWS\'s shape, and the call is logged', () => {
    const r = get(headers(g0a));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ Parameter: { ARN: `arn:aws:ssm:${REGION}:000000000000:parameter/crossvpc/pair0-abcdef123456`, DataType: 'text', LastModifiedDate: 1700000000, Name: PARAM, Selector: null, SourceResult: null, Type: 'String', Value: 'H4sIAAAA', Version: 3 } });
    expect(r.log).toEqual({ service: 'ssm', action: 'GetParameter', member: 'g0a', name: PARAM, version: 3, result: 'served' });
  });

  test('a parameter the role does not allow is AccessDeniedException, even when it exists', () => {
    const r = get(headers(g0a), OTHER);
    expect(r.status).toBe(400);
    expect(r.body.__type).toBe('AccessDeniedException');
    expect(r.body.message).toMatch(/assumed-role\/crossvpc-pair0-role\/g0a is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:emu-west-1:000000000000:parameter\/crossvpc\/pair1-/);
    // Explicit deny wins over ssm:* on *.
    expect(get(headers(ids['169.254.170.2']), OTHER).body.__type).toBe('AccessDeniedException');
    expect(get(headers(ids['169.254.170.2'])).status).toBe(200);
  });

  test('an allowed name that does not exist is ParameterNotFound', () => {
    const r = get(headers(ids['169.254.170.2']), '/crossvpc/pair0-gone');
    expect([r.status, r.body.__type, r.body.message]).toEqual([400, 'ParameterNotFound', 'Parameter /crossvpc/pair0-gone not found.']);
  });

  test.each([
    ['no Authorization header', 'MissingAuthenticationTokenException', { authorization: '' }],
    ['a header that is not SigV4', 'IncompleteSignatureException', { authorization: 'Bearer x' }],
    ['an unknown access key', 'UnrecognizedClientException', { authorization: auth('ASIAUNKNOWN000000000') }],
    ['another member\'s session token', 'UnrecognizedClientException', { 'x-amz-security-token': 'tok-g0b' }],
    ['a credential scoped to ec2', 'InvalidSignatureException', { authorization: auth(g0a.accessKeyId, 'ec2') }],
    ['a credential scoped to another region', 'InvalidSignatureException', { authorization: auth(g0a.accessKeyId, 'ssm', 'eu-west-1') }],
    ['another operation', 'UnknownOperationException', { 'x-amz-target': 'AmazonSSM.PutParameter' }],
    ['a form-encoded body', 'SerializationException', { 'content-type': 'application/x-www-form-urlencoded' }],
  ])('%s is refused: %s', (_what, code, over) => {
    const r = get(headers(g0a, over as Record<string, string>));
    expect([r.status, r.body.__type, r.log.result]).toEqual([400, code, code]);
  });

  test('a request without Name is a ValidationException', () => {
    const r = ssmRequest(headers(g0a), '{}', ids, store);
    expect(JSON.parse(r.body).__type).toBe('ValidationException');
  });

  test('SigV4 headers as curl --aws-sigv4 writes them parse; others do not', () => {
    expect(parseSigV4(auth('ASIAABC', 'ssm'))).toEqual({ accessKeyId: 'ASIAABC', region: REGION, service: 'ssm' });
    expect(parseSigV4('AWS4-HMAC-SHA256 Credential=ASIAABC/20260101/emu-west-1/ssm/aws4_request')).toBeUndefined();
    expect(authenticate({}, 'ssm', ids)).toMatchObject({ ok: false, code: 'MissingAuthenticationTokenException' });
  });
});

describe('emulated EC2 AssignPrivateIpAddresses', () => {
  const q = (eni: string) => new URLSearchParams({ Action: 'AssignPrivateIpAddresses', NetworkInterfaceId: eni, 'PrivateIpAddress.1': '10.0.255.253', AllowReassignment: 'true' });
  const h = { authorization: auth(g0a.accessKeyId, 'ec2'), 'x-amz-security-token': g0a.token };
  test('the role\'s ENIs only', () => {
    expect(ec2Authorize(h, q('eni-1'), ids, ['eni-1', 'eni-2'])).toEqual({ ok: true, member: 'g0a', eni: 'eni-1', ip: '10.0.255.253' });
    const denied = ec2Authorize(h, q('eni-2'), ids, ['eni-1', 'eni-2']) as any;
    expect([denied.status, denied.log.result]).toEqual([403, 'UnauthorizedOperation']);
    expect((ec2Authorize(h, q('eni-9'), ids, ['eni-1']) as any).log.result).toBe('invalid');
    expect((ec2Authorize({ ...h, authorization: auth(g0a.accessKeyId, 'ssm') }, q('eni-1'), ids, ['eni-1']) as any).log.result).toBe('unsigned');
  });
});

describe('emulated EC2 AssociateAddress', () => {
  const EIP = 'eipalloc-0b0b0b0b0b0b0b0b0';
  const OTHER_EIP = 'eipalloc-0c0c0c0c';
  const withEip: CloudIdentities = { '169.254.170.1': identity('g0a', [{ effect: 'Allow', actions: ['ec2:AssociateAddress'], resources: [elasticIpArn(EIP), eniArn('eni-1')] }]) };
  const q = (eni: string, allocation = EIP, extra: Record<string, string> = {}) => new URLSearchParams({ Action: 'AssociateAddress', AllocationId: allocation, NetworkInterfaceId: eni, PrivateIpAddress: '10.0.255.20', AllowReassociation: 'true', ...extra });
  const h = { authorization: auth(g0a.accessKeyId, 'ec2'), 'x-amz-security-token': g0a.token };
  const result = (r: unknown) => (r as any).log?.result ?? 'ok';
  test("the role's EIPs onto the role's ENIs only, with AllowReassociation", () => {
    expect(ec2AuthorizeAssociate(h, q('eni-1'), withEip, ['eni-1', 'eni-2'], [EIP, OTHER_EIP])).toEqual({ ok: true, member: 'g0a', eni: 'eni-1', ip: '10.0.255.20', allocationId: EIP });
    expect(result(ec2AuthorizeAssociate(h, q('eni-2'), withEip, ['eni-1', 'eni-2'], [EIP]))).toBe('UnauthorizedOperation');
    expect(result(ec2AuthorizeAssociate(h, q('eni-1', OTHER_EIP), withEip, ['eni-1'], [EIP, OTHER_EIP]))).toBe('UnauthorizedOperation');
    expect(result(ec2AuthorizeAssociate(h, q('eni-1', 'eipalloc-0d0d0d0d'), withEip, ['eni-1'], [EIP]))).toBe('InvalidAllocationID.NotFound');
    expect(result(ec2AuthorizeAssociate(h, q('eni-1', EIP, { AllowReassociation: 'false' }), withEip, ['eni-1'], [EIP]))).toBe('invalid');
    expect(result(ec2AuthorizeAssociate({ ...h, authorization: auth(g0a.accessKeyId, 'ssm') }, q('eni-1'), withEip, ['eni-1'], [EIP]))).toBe('unsigned');
    // The move permission alone does not associate.
    expect(result(ec2AuthorizeAssociate(h, q('eni-1'), ids, ['eni-1'], [EIP]))).toBe('UnauthorizedOperation');
  });
});

describe('IAM statements', () => {
  test('wildcards and actions match as IAM matches them', () => {
    expect(wildcardMatch('arn:aws:ssm:*:*:parameter/crossvpc/pair0-*', ssmParameterArn(PARAM))).toBe(true);
    expect(wildcardMatch('arn:aws:ssm:*:*:parameter/crossvpc/pair?-x', 'arn:aws:ssm:r:a:parameter/crossvpc/pair10-x')).toBe(false);
    expect(isAllowed([{ effect: 'Allow', actions: ['SSM:Get*'], resources: ['*'] }], 'ssm:GetParameter', 'arn:x')).toBe(true);
    expect(isAllowed([], 'ssm:GetParameter', 'arn:x')).toBe(false);
  });
});

/** The synthesized example; its pair document and the role policy reading it come from the constructs. */
const withPairDocument = (opts: OverlappingTenantsOptions = {}): any => synthJson(opts);
const docKey = (json: any) => Object.keys(json.resource.aws_ssm_parameter)[0];

function planFile(json: any): string {
  const dir = mkdtempSync(join(tmpdir(), 'crossvpc-emu-plan-'));
  writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(json));
  return join(dir, 'cdk.tf.json');
}

describe('pair documents in the plan', () => {
  test('each pair\'s document is read, interpolated, checked and stored as SSM would store it', () => {
    const file = planFile(withPairDocument());
    const p = loadEmulatedPlan(file);
    const doc = p.documents.get(0)!;
    expect(doc.parameter).toMatchObject({ pair: 0, type: 'String', tier: 'Advanced' });
    expect(doc.parameter.name).toMatch(/^\/crossvpc\/pair0-[0-9a-f]{12}$/);
    expect(decodePairDocumentValue(doc.value)).toBe(doc.text);
    expect(doc.text).not.toMatch(/\$\{/);
    const a = memberRows(p, { pair: 0, member: 'a' });
    expect(a.map((r) => r.name)).toEqual(['alpha', 'beta']);
    expect(a[0].eniMac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(a[0].subnetCidr).toBe('172.16.255.0/24');
    // The member's rows come from the document, resolved by the same stand-ins as its user data.
    expect(parseTenantTable(JSON.parse(doc.text).members.b.tenants)).toEqual(memberRows(p, { pair: 0, member: 'b' }));
  });

  test('the role of each member may read its pair\'s document and move its pair\'s IPs, resolved to ARNs', () => {
    const file = planFile(withPairDocument());
    const p = loadEmulatedPlan(file);
    const inst = Object.keys(p.plan.json.resource.aws_instance)[0];
    const perms = instancePermissions(p.plan.json, inst, p.standIns.resolve);
    expect(perms.role).toMatch(/^CrossVpc_Pair0_Role/);
    expect(isAllowed(perms.statements, 'ssm:GetParameter', ssmParameterArn(p.documents.get(0)!.parameter.name))).toBe(true);
    expect(isAllowed(perms.statements, 'ssm:GetParameter', ssmParameterArn(OTHER))).toBe(false);
    expect(isAllowed(perms.statements, 'ssm:PutParameter', ssmParameterArn(p.documents.get(0)!.parameter.name))).toBe(false);
    const eni = p.standIns.resolve(`aws_network_interface.${Object.keys(p.plan.json.resource.aws_network_interface)[0]}.id`);
    expect(isAllowed(perms.statements, 'ec2:AssignPrivateIpAddresses', eniArn(eni))).toBe(true);
    expect(isAllowed(perms.statements, 'ec2:AssignPrivateIpAddresses', eniArn('eni-0000'))).toBe(false);
  });

  test('a document that SSM or a member would refuse fails naming the parameter and why', () => {
    const wrongPair = withPairDocument();
    wrongPair.resource.aws_ssm_parameter[docKey(wrongPair)].tags['crossvpc:pair'] = '1';
    expect(() => loadEmulatedPlan(planFile(wrongPair))).toThrow(/aws_ssm_parameter.\S+ \(pair 1\): pair document: it is pair 0's, expected pair 1's/);
    const secure = withPairDocument();
    secure.resource.aws_ssm_parameter[docKey(secure)].type = 'SecureString';
    expect(() => loadEmulatedPlan(planFile(secure))).toThrow(/type "SecureString"; the members read a String parameter/);
    const token = withPairDocument();
    token.resource.aws_ssm_parameter[docKey(token)].name = '${var.x}';
    expect(() => readPlan(planFile(token))).toThrow(/name "\$\{var.x\}" is not a literal/);
    const dup = withPairDocument();
    dup.resource.aws_ssm_parameter.Again = dup.resource.aws_ssm_parameter[docKey(dup)];
    expect(() => readPlan(planFile(dup))).toThrow(/pair 0 already has a document/);
    const raw = withPairDocument();
    raw.resource.aws_ssm_parameter[docKey(raw)].insecure_value = 'eyJ9';
    expect(() => readPlan(planFile(raw))).toThrow(/insecure_value: not a base64gzip/);
  });

  test('a value over the tier\'s limit is refused as SSM would refuse the put', () => {
    const big = withPairDocument();
    big.resource.aws_ssm_parameter[docKey(big)].tier = 'Standard';
    const text = renderPairDocument({ format: 1, pair: 0, members: { a: { tenants: 'x', ruleset: 'y' }, b: { tenants: 'x', ruleset: 'y' } } });
    expect(text.length).toBeLessThan(4096);
    const p = readPlan(planFile(big));
    const huge = { ...p, parameters: [{ ...p.parameters[0], template: p.parameters[0].template.replace('"ruleset":"', `"ruleset":"# ${require('crypto').randomBytes(4000).toString('hex')}\\n`) }] };
    expect(() => readPairDocuments(huge, loadEmulatedPlan(planFile(big)).standIns.resolve)).toThrow(/over the 4096-byte limit of SSM's Standard tier/);
  });

  test('a plan whose pair has no document is refused naming the pair', () => {
    const json = synthJson({});
    delete json.resource.aws_ssm_parameter;
    const p = loadEmulatedPlan(planFile(json));
    expect(p.documents.size).toBe(0);
    expect(() => memberRows(p, { pair: 0, member: 'a' })).toThrow(/pair 0 has no configuration document \(an aws_ssm_parameter tagged crossvpc:pair=0\)/);
  });
});

describe('stand-ins across plans of one run', () => {
  test('an edit that moves a tenant\'s destinations keeps its subnet, ENI addresses and NAT IP; the probe moves', () => {
    const a = loadEmulatedPlan(planFile(withPairDocument()));
    const edited = withPairDocument({ tenants: [
      { name: 'alpha', vpcId: 'vpc-0a1a1a1a1a1a1a1a1', subnetId: 'subnet-0a1a1a1a1a1a1a1a1', cidrs: ['172.16.0.0/16', '172.20.0.0/16'], allowedDestinations: ['172.20.0.0/16'], vni: 1001, availabilityZone: 'eu-west-1a' },
      { name: 'beta', vpcId: 'vpc-0b2b2b2b2b2b2b2b2', subnetId: 'subnet-0b2b2b2b2b2b2b2b2', cidrs: ['172.16.0.0/16'], vni: 1002, availabilityZone: 'eu-west-1a' },
    ] });
    const fresh = loadEmulatedPlan(planFile(edited));
    const kept = loadEmulatedPlan(planFile(edited), a.standIns.placed);
    const alpha = (p: typeof a) => memberRows(p, { pair: 0, member: 'a' }).find((r) => r.name === 'alpha')!;
    // Alone, the new plan would put alpha's subnet on its new destination; in a running emulation the subnet exists already.
    expect(alpha(fresh).subnetCidr).toBe('172.20.255.0/24');
    expect(alpha(kept)).toMatchObject({ subnetCidr: alpha(a).subnetCidr, eniIp: alpha(a).eniIp, natIp: alpha(a).natIp, destinations: ['172.20.0.0/16'] });
    expect(kept.standIns.probe('alpha').ip).toBe('172.20.0.3');
    expect(a.standIns.probe('alpha').ip).toBe('172.16.0.3');
  });

  test('a new tenant takes fresh stand-ins without moving the others', () => {
    const a = loadEmulatedPlan(planFile(withPairDocument()));
    const b = loadEmulatedPlan(planFile(withPairDocument({ extraTenants: [{ name: 'gamma', vpcId: 'vpc-0c3', subnetId: 'subnet-0c3', cidrs: ['172.16.0.0/16'], vni: 1003 }] })), a.standIns.placed);
    const rows = (p: typeof a) => Object.fromEntries(memberRows(p, { pair: 0, member: 'b' }).map((r) => [r.name, r.eniIp]));
    expect(rows(b)).toMatchObject(rows(a));
    expect(rows(b).gamma).toMatch(/^172\.16\.255\.\d+$/);
  });
});
