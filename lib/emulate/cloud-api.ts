/**
 * The emulated AWS APIs as pure request -> response functions (fake-cloud.ts serves them over
 * HTTP in the run's `cloud` namespace): per-member credentials, SigV4 credential scope and
 * session token checks, the role's policy, and SSM GetParameter in the AWS JSON 1.1 protocol.
 * The signature itself is not verified: the scope, key and token are.
 */
import { isAllowed, PolicyStatement } from './iam';

export const REGION = 'emu-west-1';
export const ACCOUNT = '000000000000';

/** What the emulated IMDS hands one member (found by its link-local source address), and what its role may do. */
export interface CloudIdentity {
  readonly member: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly token: string;
  /** Role name (the instance profile's role, as the assumed-role ARN shows it). */
  readonly role: string;
  readonly statements: PolicyStatement[];
}

/** cloud-identities.json: source address (169.254.170.<slot>) -> identity. */
export type CloudIdentities = Record<string, CloudIdentity>;

/** ssm-parameters.json: what the emulated Parameter Store holds, written by the emulator as Terraform would. */
export interface SsmParameterRecord {
  readonly value: string;
  readonly version: number;
  /** Unix seconds of the last put. */
  readonly lastModified: number;
  readonly type?: string;
}
export type SsmStore = Record<string, SsmParameterRecord>;

export const ssmParameterArn = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
export const eniArn = (eniId: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:network-interface/${eniId}`;

/** The parts of `AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request, SignedHeaders=…, Signature=…`. */
export function parseSigV4(auth: string): { accessKeyId: string; region: string; service: string } | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=[a-z0-9;-]+, ?Signature=[0-9a-f]{64}$/.exec(auth.trim());
  return m ? { accessKeyId: m[1], region: m[3], service: m[4] } : undefined;
}

export type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string) => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v ?? '';
};

export type Authn = { ok: true; identity: CloudIdentity } | { ok: false; code: string; message: string };

/** Who signed a request for `service`: the key must be a member's, the token that member's, the scope this region and service. */
export function authenticate(h: Headers, service: string, identities: CloudIdentities): Authn {
  const auth = header(h, 'authorization');
  if (!auth) return { ok: false, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const sig = parseSigV4(auth);
  if (!sig) return { ok: false, code: 'IncompleteSignatureException', message: `Authorization header is not a SigV4 header: ${auth.slice(0, 80)}` };
  const identity = Object.values(identities).find((i) => i.accessKeyId === sig.accessKeyId);
  if (!identity) return { ok: false, code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (header(h, 'x-amz-security-token') !== identity.token) return { ok: false, code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (sig.region !== REGION) return { ok: false, code: 'InvalidSignatureException', message: `Credential should be scoped to a valid region, not '${sig.region}'.` };
  if (sig.service !== service) return { ok: false, code: 'InvalidSignatureException', message: `Credential should be scoped to correct service: '${service}'.` };
  return { ok: true, identity };
}

export interface ApiResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** One line for the cloud log. */
  readonly log: Record<string, unknown>;
}

const JSON_11 = 'application/x-amz-json-1.1';

function ssmError(status: number, code: string, message: string, log: Record<string, unknown>): ApiResponse {
  return { status, contentType: JSON_11, body: JSON.stringify({ __type: code, message }), log: { ...log, result: code } };
}

/** SSM GetParameter in the AWS JSON 1.1 protocol; every other target is an unknown operation. */
export function ssmRequest(h: Headers, body: string, identities: CloudIdentities, store: SsmStore): ApiResponse {
  const target = header(h, 'x-amz-target');
  const base = { service: 'ssm', action: target.replace(/^AmazonSSM\./, '') };
  const authn = authenticate(h, 'ssm', identities);
  if (!authn.ok) return ssmError(400, authn.code, authn.message, base);
  const log = { ...base, member: authn.identity.member };
  if (target !== 'AmazonSSM.GetParameter') return ssmError(400, 'UnknownOperationException', `the emulated SSM serves AmazonSSM.GetParameter only, not '${target}'`, log);
  if (!header(h, 'content-type').startsWith(JSON_11)) return ssmError(400, 'SerializationException', `Content-Type must be ${JSON_11}, got '${header(h, 'content-type')}'`, log);
  let req: any;
  try {
    req = JSON.parse(body);
  } catch {
    return ssmError(400, 'SerializationException', 'the request body is not JSON', log);
  }
  const name = req?.Name;
  if (typeof name !== 'string' || !name) return ssmError(400, 'ValidationException', "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null", log);
  const arn = ssmParameterArn(name);
  const named = { ...log, name };
  if (!isAllowed(authn.identity.statements, 'ssm:GetParameter', arn)) {
    return ssmError(400, 'AccessDeniedException', `User: arn:aws:sts::${ACCOUNT}:assumed-role/${authn.identity.role}/${authn.identity.member} is not authorized to perform: ssm:GetParameter on resource: ${arn} because no identity-based policy allows the ssm:GetParameter action`, named);
  }
  const p = store[name];
  if (!p) return ssmError(400, 'ParameterNotFound', `Parameter ${name} not found.`, named);
  const parameter = { ARN: arn, DataType: 'text', LastModifiedDate: p.lastModified, Name: name, Selector: null, SourceResult: null, Type: p.type ?? 'String', Value: p.value, Version: p.version };
  return { status: 200, contentType: JSON_11, body: JSON.stringify({ Parameter: parameter }), log: { ...named, version: p.version, result: 'served' } };
}

export const elasticIpArn = (allocationId: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:elastic-ip/${allocationId}`;

/** An EC2 Query API error, as EC2 writes it. */
export const ec2Error = (status: number, code: string, message: string, log: Record<string, unknown>, result = code): ApiResponse => ({
  status, contentType: 'text/xml', body: `<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors></Response>`, log: { ...log, result },
});
const xml = ec2Error;

/** EC2 AssignPrivateIpAddresses (Query API): who may move which IP onto which ENI; the fabric move is the caller's. */
export function ec2Authorize(h: Headers, query: URLSearchParams, identities: CloudIdentities, knownEnis: readonly string[]): ApiResponse | { ok: true; member: string; eni: string; ip: string } {
  const eni = query.get('NetworkInterfaceId') ?? '';
  const ip = query.get('PrivateIpAddress.1') ?? '';
  const base = { service: 'ec2', action: query.get('Action'), eni, ip };
  const authn = authenticate(h, 'ec2', identities);
  if (!authn.ok) return xml(401, 'AuthFailure', authn.message, base, 'unsigned');
  const log = { ...base, member: authn.identity.member };
  if (query.get('Action') !== 'AssignPrivateIpAddresses' || !knownEnis.includes(eni) || !ip || query.get('AllowReassignment') !== 'true') {
    return xml(400, 'InvalidParameterValue', 'the emulated EC2 serves AssignPrivateIpAddresses with AllowReassignment=true on a known ENI', log, 'invalid');
  }
  if (!isAllowed(authn.identity.statements, 'ec2:AssignPrivateIpAddresses', eniArn(eni))) {
    return xml(403, 'UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:sts::${ACCOUNT}:assumed-role/${authn.identity.role}/${authn.identity.member} is not authorized to perform: ec2:AssignPrivateIpAddresses on resource: ${eniArn(eni)}`, log, 'UnauthorizedOperation');
  }
  return { ok: true, member: authn.identity.member, eni, ip };
}

/**
 * EC2 AssociateAddress (Query API) of an EIP with a private address of an ENI, with
 * AllowReassociation: the role must allow it on both the EIP and the ENI. Whether the ENI holds
 * the address, and the mapping itself, are the caller's (the fabric knows).
 */
export function ec2AuthorizeAssociate(h: Headers, query: URLSearchParams, identities: CloudIdentities, knownEnis: readonly string[], knownAllocations: readonly string[]): ApiResponse | { ok: true; member: string; eni: string; ip: string; allocationId: string } {
  const eni = query.get('NetworkInterfaceId') ?? '';
  const ip = query.get('PrivateIpAddress') ?? '';
  const allocationId = query.get('AllocationId') ?? '';
  const base = { service: 'ec2', action: query.get('Action'), eni, ip, allocation: allocationId };
  const authn = authenticate(h, 'ec2', identities);
  if (!authn.ok) return xml(401, 'AuthFailure', authn.message, base, 'unsigned');
  const log = { ...base, member: authn.identity.member };
  if (query.get('Action') !== 'AssociateAddress' || !knownEnis.includes(eni) || !ip || query.get('AllowReassociation') !== 'true') {
    return xml(400, 'InvalidParameterValue', 'the emulated EC2 serves AssociateAddress with a NetworkInterfaceId it knows, a PrivateIpAddress and AllowReassociation=true', log, 'invalid');
  }
  if (!knownAllocations.includes(allocationId)) return xml(400, 'InvalidAllocationID.NotFound', `The allocation ID '${allocationId}' does not exist`, log);
  for (const arn of [elasticIpArn(allocationId), eniArn(eni)]) {
    if (!isAllowed(authn.identity.statements, 'ec2:AssociateAddress', arn)) {
      return xml(403, 'UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:sts::${ACCOUNT}:assumed-role/${authn.identity.role}/${authn.identity.member} is not authorized to perform: ec2:AssociateAddress on resource: ${arn}`, log, 'UnauthorizedOperation');
    }
  }
  return { ok: true, member: authn.identity.member, eni, ip, allocationId };
}
