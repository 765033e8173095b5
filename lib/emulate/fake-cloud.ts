/**
 * The emulated cloud control plane, run inside the emulation's own `cloud` namespace:
 * - IMDSv2 (token, region, instance-role credentials) on 169.254.169.254:80; each member gets
 *   its own credentials, found by its link-local source address (169.254.170.<slot>);
 * - the EC2 Query API actions AssignPrivateIpAddresses and AssociateAddress on 169.254.169.253:80;
 * - SSM GetParameter (AWS JSON 1.1) on 169.254.169.252:80, from the store the emulator writes
 *   as Terraform would.
 * Both APIs check the SigV4 credential scope and session token, and the role's policy from the
 * plan (cloud-api.ts, iam.ts). An accepted move rewrites the owning VPC router's neighbour
 * entry for that IP to the MAC of the target ENI: like AWS's mapping service, the fabric
 * delivers a floating IP only where the API last put it, whatever gratuitous ARP says.
 * An accepted association (only of an address the ENI holds, as in EC2) maps the EIP 1:1 to it
 * in the internet gateway stand-in (eips.json names its namespace and nft maps).
 * Every call is logged, one JSON line each.
 *
 *   node fake-cloud.js <enis.json> <identities.json> <ssm-parameters.json> <log file> [eips.json]
 * enis.json: { "<eni-id>": { "mac": "...", "routerNs": "...", "routerDev": "br0" } }
 * eips.json: { "<allocation id>": { "publicIp": "...", "igwNs": "...", "table": "..." } }
 */
import { execFileSync } from 'child_process';
import { appendFileSync, readFileSync } from 'fs';
import { createServer, IncomingMessage, ServerResponse } from 'http';
import { ApiResponse, CloudIdentities, ec2Authorize, ec2AuthorizeAssociate, ec2Error, REGION, ssmRequest, SsmStore } from './cloud-api';

export { REGION } from './cloud-api';
export const IMDS_ADDR = '169.254.169.254';
export const EC2_ADDR = '169.254.169.253';
export const SSM_ADDR = '169.254.169.252';
const TOKEN = 'emulated-imds-token';
/** Parameter values are at most 8 KB (advanced tier); a request body far beyond that is refused. */
const MAX_BODY = 64 * 1024;

interface EniInfo { mac: string; routerNs: string; routerDev: string }
/** An EIP the emulation owns: its stand-in public address and the IGW stand-in's nft maps (eip_to_private, private_to_eip). */
export interface EipInfo { publicIp: string; igwNs: string; table: string }

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

function send(res: ServerResponse, r: ApiResponse): void {
  res.statusCode = r.status;
  res.setHeader('Content-Type', r.contentType);
  if (r.contentType.includes('json') && r.status !== 200) res.setHeader('x-amzn-ErrorType', String(r.log.result));
  res.end(r.body);
}

/** The EIP's 1:1 mapping in the IGW stand-in, replacing any earlier one of the EIP or the address. */
function mapEip(eip: EipInfo, privateIp: string): void {
  const nft = (...args: string[]) => execFileSync('ip', ['netns', 'exec', eip.igwNs, 'nft', ...args], { timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const [map, key] of [['eip_to_private', eip.publicIp], ['private_to_eip', privateIp]]) {
    try {
      nft('delete', 'element', 'ip', eip.table, map, `{ ${key} }`);
    } catch {
      /* not mapped yet */
    }
  }
  nft('add', 'element', 'ip', eip.table, 'eip_to_private', `{ ${eip.publicIp} : ${privateIp} }`);
  nft('add', 'element', 'ip', eip.table, 'private_to_eip', `{ ${privateIp} : ${eip.publicIp} }`);
}

/** Whether the fabric delivers `ip` to the ENI (its router's permanent neighbour entry is the ENI's MAC). */
function eniHolds(target: EniInfo, ip: string): boolean {
  const out = execFileSync('ip', ['netns', 'exec', target.routerNs, 'ip', 'neigh', 'show', ip, 'dev', target.routerDev], { timeout: 5000, encoding: 'utf8' });
  return out.toLowerCase().includes(`lladdr ${target.mac.toLowerCase()} `);
}

function main(enisFile: string, identitiesFile: string, ssmFile: string, logFile: string, eipsFile?: string): void {
  const log = (o: object) => appendFileSync(logFile, `${JSON.stringify({ at: Date.now(), ...o })}\n`);
  const identityOf = (req: IncomingMessage) => readJson<CloudIdentities>(identitiesFile)[String(req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')];

  const imds = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (req.method === 'PUT' && url === '/latest/api/token') return void res.end(TOKEN);
    if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) {
      res.statusCode = 401;
      return void res.end();
    }
    if (url === '/latest/meta-data/placement/region') return void res.end(REGION);
    const id = identityOf(req);
    if (id && url === '/latest/meta-data/iam/security-credentials/') return void res.end(id.role);
    if (id && url === `/latest/meta-data/iam/security-credentials/${id.role}`) {
      return void res.end(`{\n  "Code" : "Success",\n  "AccessKeyId" : "${id.accessKeyId}",\n  "SecretAccessKey" : "${id.secretAccessKey}",\n  "Token" : "${id.token}",\n  "Expiration" : "2099-01-01T00:00:00Z"\n}\n`);
    }
    res.statusCode = 404;
    res.end();
  });

  const ec2 = createServer((req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url ?? '/', 'http://ec2').searchParams;
    const enis = readJson<Record<string, EniInfo>>(enisFile);
    if (q.get('Action') === 'AssociateAddress') return associate(req, res, q, enis);
    const r = ec2Authorize(req.headers, q, readJson<CloudIdentities>(identitiesFile), Object.keys(enis));
    if (!('ok' in r)) {
      log(r.log);
      return send(res, r);
    }
    const target = enis[r.eni];
    const entry = { service: 'ec2', action: 'AssignPrivateIpAddresses', member: r.member, eni: r.eni, ip: r.ip };
    try {
      execFileSync('ip', ['netns', 'exec', target.routerNs, 'ip', 'neigh', 'replace', r.ip, 'lladdr', target.mac, 'dev', target.routerDev, 'nud', 'permanent'], { timeout: 5000 });
    } catch (e) {
      log({ ...entry, result: `fabric update failed: ${(e as Error).message}` });
      res.statusCode = 500;
      return void res.end();
    }
    log({ ...entry, result: 'moved' });
    res.end('<AssignPrivateIpAddressesResponse><return>true</return></AssignPrivateIpAddressesResponse>');
  });

  function associate(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, enis: Record<string, EniInfo>): void {
    const eips = eipsFile ? readJson<Record<string, EipInfo>>(eipsFile) : {};
    const r = ec2AuthorizeAssociate(req.headers, q, readJson<CloudIdentities>(identitiesFile), Object.keys(enis), Object.keys(eips));
    if (!('ok' in r)) {
      log(r.log);
      return send(res, r);
    }
    const entry = { service: 'ec2', action: 'AssociateAddress', member: r.member, eni: r.eni, ip: r.ip, allocation: r.allocationId };
    try {
      if (!eniHolds(enis[r.eni], r.ip)) {
        const e = ec2Error(400, 'InvalidParameterValue', `The private IP address ${r.ip} is not assigned to network interface ${r.eni}`, entry);
        log(e.log);
        return send(res, e);
      }
      mapEip(eips[r.allocationId], r.ip);
    } catch (e) {
      log({ ...entry, result: `fabric update failed: ${(e as Error).message}` });
      res.statusCode = 500;
      return void res.end();
    }
    log({ ...entry, result: 'associated' });
    res.end(`<AssociateAddressResponse><return>true</return><associationId>eipassoc-${r.allocationId.slice(9)}</associationId></AssociateAddressResponse>`);
  }

  const ssm = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (req.method !== 'POST' || size > MAX_BODY) {
        log({ service: 'ssm', result: req.method !== 'POST' ? `method ${req.method}` : 'body too large' });
        res.statusCode = req.method !== 'POST' ? 405 : 413;
        return void res.end();
      }
      let r: ApiResponse;
      try {
        r = ssmRequest(req.headers, Buffer.concat(chunks).toString('utf8'), readJson<CloudIdentities>(identitiesFile), readJson<SsmStore>(ssmFile));
      } catch (e) {
        log({ service: 'ssm', result: `internal error: ${(e as Error).message}` });
        res.statusCode = 500;
        return void res.end();
      }
      log(r.log);
      send(res, r);
    });
  });

  imds.listen(80, IMDS_ADDR);
  ec2.listen(80, EC2_ADDR);
  ssm.listen(80, SSM_ADDR);
}

if (require.main === module) {
  const [enis, identities, ssm, logFile, eips] = process.argv.slice(2);
  if (!enis || !identities || !ssm || !logFile) {
    console.error('usage: fake-cloud <enis.json> <identities.json> <ssm-parameters.json> <log file> [eips.json]');
    process.exit(2);
  }
  main(enis, identities, ssm, logFile, eips);
}
