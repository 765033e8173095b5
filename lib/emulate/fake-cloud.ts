/**
 * The emulated cloud control plane, run inside the emulation's own `cloud` namespace:
 * - IMDSv2 (token, region, instance-role credentials) on 169.254.169.254:80; each member gets
 *   its own credentials, found by its link-local source address (169.254.170.<slot>);
 * - the EC2 Query API action AssignPrivateIpAddresses on 169.254.169.253:80;
 * - SSM GetParameter (AWS JSON 1.1) on 169.254.169.252:80, from the store the emulator writes
 *   as Terraform would.
 * Both APIs check the SigV4 credential scope and session token, and the role's policy from the
 * plan (cloud-api.ts, iam.ts). An accepted move rewrites the owning VPC router's neighbour
 * entry for that IP to the MAC of the target ENI: like AWS's mapping service, the fabric
 * delivers a floating IP only where the API last put it, whatever gratuitous ARP says.
 * Every call is logged, one JSON line each.
 *
 *   node fake-cloud.js <enis.json> <identities.json> <ssm-parameters.json> <log file>
 * enis.json: { "<eni-id>": { "mac": "...", "routerNs": "...", "routerDev": "br0" } }
 */
import { execFileSync } from 'child_process';
import { appendFileSync, readFileSync } from 'fs';
import { createServer, IncomingMessage, ServerResponse } from 'http';
import { ApiResponse, CloudIdentities, ec2Authorize, REGION, ssmRequest, SsmStore } from './cloud-api';

export { REGION } from './cloud-api';
export const IMDS_ADDR = '169.254.169.254';
export const EC2_ADDR = '169.254.169.253';
export const SSM_ADDR = '169.254.169.252';
const TOKEN = 'emulated-imds-token';
/** Parameter values are at most 8 KB (advanced tier); a request body far beyond that is refused. */
const MAX_BODY = 64 * 1024;

interface EniInfo { mac: string; routerNs: string; routerDev: string }

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

function send(res: ServerResponse, r: ApiResponse): void {
  res.statusCode = r.status;
  res.setHeader('Content-Type', r.contentType);
  if (r.contentType.includes('json') && r.status !== 200) res.setHeader('x-amzn-ErrorType', String(r.log.result));
  res.end(r.body);
}

function main(enisFile: string, identitiesFile: string, ssmFile: string, logFile: string): void {
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
  const [enis, identities, ssm, logFile] = process.argv.slice(2);
  if (!enis || !identities || !ssm || !logFile) {
    console.error('usage: fake-cloud <enis.json> <identities.json> <ssm-parameters.json> <log file>');
    process.exit(2);
  }
  main(enis, identities, ssm, logFile);
}
