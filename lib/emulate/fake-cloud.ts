/**
 * The emulated cloud control plane, run inside the emulation's own `cloud` namespace:
 * - IMDSv2 (token, region, instance-role credentials) on 169.254.169.254:80;
 * - the EC2 Query API action AssignPrivateIpAddresses on 169.254.169.253:80.
 * An accepted move rewrites the owning VPC router's neighbour entry for that IP to the
 * MAC of the target ENI: like AWS's mapping service, the fabric delivers a floating IP
 * only where the API last put it, whatever gratuitous ARP says.
 *
 *   node fake-cloud.js <enis.json> <log file>
 * enis.json: { "<eni-id>": { "mac": "...", "routerNs": "...", "routerDev": "br0" } }
 */
import { execFileSync } from 'child_process';
import { appendFileSync, readFileSync } from 'fs';
import { createServer, IncomingMessage, ServerResponse } from 'http';

export const IMDS_ADDR = '169.254.169.254';
export const EC2_ADDR = '169.254.169.253';
export const REGION = 'emu-west-1';
export const ACCESS_KEY = 'ASIAEMULATEDCROSSVPC';
const ROLE = 'crossvpc-emulated-role';
const TOKEN = 'emulated-imds-token';

interface EniInfo { mac: string; routerNs: string; routerDev: string }

function main(enisFile: string, logFile: string): void {
  const log = (o: object) => appendFileSync(logFile, `${JSON.stringify({ at: Date.now(), ...o })}\n`);
  const imds = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (req.method === 'PUT' && url === '/latest/api/token') return void res.end(TOKEN);
    if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) {
      res.statusCode = 401;
      return void res.end();
    }
    if (url === '/latest/meta-data/placement/region') return void res.end(REGION);
    if (url === '/latest/meta-data/iam/security-credentials/') return void res.end(ROLE);
    if (url === `/latest/meta-data/iam/security-credentials/${ROLE}`) {
      return void res.end(`{\n  "Code" : "Success",\n  "AccessKeyId" : "${ACCESS_KEY}",\n  "SecretAccessKey" : "emulated-secret",\n  "Token" : "emulated-session-token",\n  "Expiration" : "2099-01-01T00:00:00Z"\n}\n`);
    }
    res.statusCode = 404;
    res.end();
  });
  const ec2 = createServer((req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url ?? '/', 'http://ec2').searchParams;
    const auth = String(req.headers.authorization ?? '');
    const signed = auth.startsWith(`AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/`) && auth.includes(`/${REGION}/ec2/aws4_request`) && req.headers['x-amz-security-token'] === 'emulated-session-token';
    const eni = q.get('NetworkInterfaceId') ?? '';
    const ip = q.get('PrivateIpAddress.1') ?? '';
    if (!signed) {
      log({ action: q.get('Action'), eni, ip, result: 'unsigned' });
      res.statusCode = 403;
      return void res.end('<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors></Response>');
    }
    const enis: Record<string, EniInfo> = JSON.parse(readFileSync(enisFile, 'utf8'));
    const target = enis[eni];
    if (q.get('Action') !== 'AssignPrivateIpAddresses' || !target || !ip || q.get('AllowReassignment') !== 'true') {
      log({ action: q.get('Action'), eni, ip, result: 'invalid' });
      res.statusCode = 400;
      return void res.end('<Response><Errors><Error><Code>InvalidParameterValue</Code></Error></Errors></Response>');
    }
    try {
      execFileSync('ip', ['netns', 'exec', target.routerNs, 'ip', 'neigh', 'replace', ip, 'lladdr', target.mac, 'dev', target.routerDev, 'nud', 'permanent'], { timeout: 5000 });
    } catch (e) {
      log({ action: 'AssignPrivateIpAddresses', eni, ip, result: `fabric update failed: ${(e as Error).message}` });
      res.statusCode = 500;
      return void res.end();
    }
    log({ action: 'AssignPrivateIpAddresses', eni, ip, result: 'moved' });
    res.end('<AssignPrivateIpAddressesResponse><return>true</return></AssignPrivateIpAddressesResponse>');
  });
  imds.listen(80, IMDS_ADDR);
  ec2.listen(80, EC2_ADDR);
}

if (require.main === module) {
  const [enis, logFile] = process.argv.slice(2);
  main(enis, logFile);
}
