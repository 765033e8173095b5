import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App } from 'cdktf';
import { OverlappingTenantsOptions, OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';
import { doctorPlanFile, DoctorReport, Finding, formatReport } from '../lib/doctor/doctor';
import { TenantProps } from '../lib';

// Plans are synthesized for real (App with an outdir), then read back only from cdk.tf.json.
const ROOT = join(__dirname, '..');
const CROSSVPC = join(ROOT, 'dist/lib/cli/crossvpc.js');
const TMP = mkdtempSync(join(tmpdir(), 'crossvpc-doctor-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

let n = 0;
function synthTo(opts: OverlappingTenantsOptions): string {
  const outdir = join(TMP, `plan${(n += 1)}`);
  const app = new App({ outdir });
  new OverlappingTenantsStack(app, 'overlapping-tenants', opts);
  app.synth();
  return join(outdir, 'stacks', 'overlapping-tenants');
}

/** A synthesized plan with its JSON changed, as a hand edit or an older release would leave it. */
function edited(stackDir: string, edit: (json: any) => void): string {
  const json = JSON.parse(readFileSync(join(stackDir, 'cdk.tf.json'), 'utf8'));
  edit(json);
  const dir = join(TMP, `edited${(n += 1)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(json));
  return dir;
}

function crossvpc(args: string[]) {
  if (!existsSync(CROSSVPC)) throw new Error(`${CROSSVPC} missing: run npm run build first`);
  const r = spawnSync(process.execPath, [CROSSVPC, ...args], { encoding: 'utf8', cwd: ROOT, env: { PATH: process.env.PATH }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const doctor = (dir: string): DoctorReport => doctorPlanFile(join(dir, 'cdk.tf.json'));
const of = (r: DoctorReport, check: string, tenant?: string): Finding[] => r.findings.filter((f) => f.check === check && (tenant === undefined || f.tenant === tenant));

const AZ = 'eu-west-1a';
const tenant = (name: string, extra: Partial<TenantProps>): TenantProps => ({ name, vpcId: `vpc-${name}`, subnetId: `subnet-${name}`, cidrs: ['192.168.0.0/16'], availabilityZone: AZ, ...extra });
/** The example with narrow node CIDRs and a known Service CIDR: nothing to warn about. */
const CLEAN: OverlappingTenantsOptions = { functionVpc: { nodeCidrs: ['10.0.0.0/20'], serviceCidr: '10.100.0.0/16' } };

let example: string;
let clean: string;
let risky: string;
beforeAll(() => {
  example = synthTo({});
  clean = synthTo(CLEAN);
  risky = synthTo({
    functionVpc: { nodeSecurityGroupId: undefined },
    gateway: { rollingUpdate: 'a', connLimitPerTenant: 200_000, mtu: 1500, pairCount: 2 },
    extraTenants: [
      tenant('docker', { cidrs: ['172.17.0.0/16'], natIp: '172.17.5.9' }),
      tenant('svc', { cidrs: ['10.96.0.0/16'] }),
      tenant('shared', { subnetId: 'subnet-0a1a1a1a1a1a1a1a1', cidrs: ['172.16.0.0/16'], pair: 1 }),
    ],
  });
});

describe('crossvpc doctor (library)', () => {
  test('the example: each tenant\'s NAT IP as the expression Terraform computes, reserved; whole-VPC nodeCidrs behind a node group is an info (exit 0)', () => {
    const r = doctor(example);
    expect(r.tenants).toEqual([{ name: 'alpha', vni: 1001, pair: 0 }, { name: 'beta', vni: 1002, pair: 0 }]);
    const [nat] = of(r, 'nat-ip', 'alpha');
    expect(nat.severity).toBe('info');
    expect(nat.what).toContain('host -2 of subnet subnet-0a1a1a1a1a1a1a1a1 (cidrhost(data.aws_subnet.CrossVpc_Pair0_Tenant-alpha-Subnet_481164A6.cidr_block, -2)), known after apply, reserved');
    expect(nat.what).toContain('172.16.0.0/16');
    expect(of(r, 'node-cidrs')).toEqual([expect.objectContaining({ severity: 'info' })]);
    expect(of(r, 'tunnel-admission')).toEqual([]);
    expect(of(r, 'mtu-path')[0].what).toMatch(/vxlan tunnel 8951 \(underlay 9001 minus 50\).*MSS 8911/);
    expect(r.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(r.exitCode).toBe(0);
  });

  test('gateway metrics rules (TCP metricsPort from metricsSources) are not tunnel sources: the example with them stays clean', () => {
    const r = doctor(synthTo({ gateway: { metricsSources: ['10.0.8.0/24'] } }));
    expect(of(r, 'tunnel-admission')).toEqual([]);
    expect(of(r, 'node-cidrs')).toEqual([expect.objectContaining({ severity: 'info' })]);
    expect(r.exitCode).toBe(0);
  });

  test('a clean plan (narrow nodeCidrs, serviceCidr given) has infos only: exit 0', () => {
    const r = doctor(clean);
    expect(r.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(of(r, 'cluster-ranges')).toEqual([]);
  });

  test('the risky plan names each pitfall with its severity and fix', () => {
    const r = doctor(risky);
    const sev = (check: string, t?: string) => of(r, check, t).map((f) => f.severity);
    expect(sev('docker-range', 'docker')).toEqual(['warning', 'warning']); // destination and NAT IP
    expect(of(r, 'docker-range', 'docker')[1].what).toContain('NAT IP 172.17.5.9');
    expect(of(r, 'nat-ip', 'docker')[0].fix).toContain('allow 172.17.5.9/32');
    expect(sev('service-range', 'svc')).toEqual(['warning']);
    expect(of(r, 'service-range', 'svc')[0].what).toContain('10.96.0.0/12');
    expect(sev('shared-subnet', 'shared')).toEqual(['warning']);
    expect(of(r, 'shared-subnet', 'shared')[0].what).toMatch(/host -3 of subnet-0a1a1a1a1a1a1a1a1, from pair index 1\) in a subnet shared with alpha \(pair 0\)/);
    expect(sev('shared-subnet', 'alpha')).toEqual(['warning']);
    expect(sev('tunnel-admission')).toEqual(['warning']);
    expect(sev('node-cidrs')).toEqual(['warning']);
    expect(of(r, 'tunnel-admission')[0].what).toContain('10.0.0.0/16');
    expect(of(r, 'rolling-update').map((f) => f.subject)).toEqual(['pair 0 member a', 'pair 1 member a']);
    expect(of(r, 'conn-limit')[0].what).toMatch(/connLimitPerTenant 200000 is 76% of conntrackMax 262144/);
    expect(of(r, 'mtu').map((f) => f.severity)).toEqual(['warning']);
    expect(r.exitCode).toBe(1);
    // Every finding says what to do.
    for (const f of r.findings) expect(f.fix.length).toBeGreaterThan(10);
  });

  test('tenants come first, grouped, then the gateways; one line per finding and a summary', () => {
    const text = formatReport(doctor(risky));
    const lines = text.split('\n');
    expect(lines[1]).toBe('tenant alpha (VNI 1001, pair 0)');
    expect(lines.filter((l) => /^(tenant |gateways and cluster)/.test(l))).toEqual([
      'tenant alpha (VNI 1001, pair 0)', 'tenant beta (VNI 1002, pair 0)', expect.stringMatching(/^tenant docker /), expect.stringMatching(/^tenant svc /), expect.stringMatching(/^tenant shared .*pair 1\)$/), 'gateways and cluster',
    ]);
    expect(lines[lines.length - 1]).toMatch(/^summary: 0 errors, \d+ warnings, \d+ infos \(warnings: review them; exit 1\)$/);
  });

  test('members polling their documents faster than SSM\'s default GetParameter quota allows get a warning', () => {
    // The example's 2 members at 5 s: 0.4 calls a second, quiet. The rate sums every member of the plan.
    expect(of(doctor(example), 'ssm-quota')).toEqual([]);
    const fast = edited(example, (json) => {
      for (const i of Object.values<any>(json.resource.aws_instance)) {
        i.user_data_base64 = i.user_data_base64.replace("CONFIG_POLL_SEC='5'", "CONFIG_POLL_SEC='0.04'");
      }
    });
    const [f] = of(doctor(fast), 'ssm-quota');
    expect(f).toMatchObject({ severity: 'warning', subject: 'gateways' });
    expect(f.what).toMatch(/2 members poll their pair documents at 50\.0 GetParameter calls a second, 125% of SSM's default quota of 40/);
    expect(f.fix).toMatch(/configPollIntervalSec/);
  });

  test('a pair document over 8 KB (maxConfigDocumentBytes raised) is an error; near it a warning; user data stays small', () => {
    const many = (k: number) => Array.from({ length: k }, (_, i) => tenant(`t${i}`, { vni: 5000 + i }));
    const sizes = (k: number) => doctor(synthTo({ extraTenants: many(k), gateway: { tenantsPerMember: k + 2, maxConfigDocumentBytes: 100_000 } }));
    const severities = (k: number) => of(sizes(k), 'document-size').map((f) => f.severity);
    // The threshold moves with the renderers, so find it rather than hard-code it: grows monotonically to an error.
    const seen = [2, 8, 16, 24, 32, 48].map((k) => ({ k, s: severities(k) }));
    expect(seen[0].s).toEqual([]);
    const firstError = seen.find((x) => x.s[0] === 'error');
    expect(firstError).toBeDefined();
    const over = sizes(firstError!.k);
    expect(of(over, 'document-size')[0].what).toMatch(/about \d+ of 8192 bytes/);
    expect(over.exitCode).toBe(2);
    expect(of(over, 'user-data-size')).toEqual([]);
  });

  test('hand-edited or older plans: disagreeing MTUs and destinations are errors; missing cluster ranges an info', () => {
    const mtu = edited(clean, (json) => {
      const cm = Object.values<any>(json.resource.kubernetes_config_map_v1)[0];
      cm.data['tenants.json'] = cm.data['tenants.json'].replace('"mtu": 8951', '"mtu": 1450').replace('"172.16.0.0/16"', '"172.16.0.0/24"');
    });
    const r = doctor(mtu);
    expect(of(r, 'mtu').map((f) => f.severity)).toEqual(['error', 'error']);
    expect(of(r, 'destinations', 'alpha')).toEqual([expect.objectContaining({ severity: 'error' })]);
    expect(r.exitCode).toBe(2);
    const old = doctor(edited(clean, (json) => {
      const cm = Object.values<any>(json.resource.kubernetes_config_map_v1)[0];
      const cfg = JSON.parse(cm.data['tenants.json']);
      delete cfg.cluster;
      cm.data['tenants.json'] = JSON.stringify(cfg);
    }));
    expect(of(old, 'cluster-ranges')).toEqual([expect.objectContaining({ severity: 'info', subject: 'plan' })]);
  });

  test('the Service CIDR travels in the agent ConfigMap', () => {
    const cm = Object.values<any>(JSON.parse(readFileSync(join(clean, 'cdk.tf.json'), 'utf8')).resource.kubernetes_config_map_v1)[0];
    expect(JSON.parse(cm.data['tenants.json']).cluster).toEqual({ vpcCidr: '10.0.0.0/16', podCidrs: [], nodeCidrs: ['10.0.0.0/20'], serviceCidr: '10.100.0.0/16' });
  });
});

describe('crossvpc doctor (CLI, compiled)', () => {
  test('exit codes 0 clean, 1 warnings, 2 errors; the report on stdout', () => {
    const ok = crossvpc(['doctor', clean]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/summary: 0 errors, 0 warnings, \d+ infos \(clean; exit 0\)\n$/);
    expect(ok.stderr).toBe('');
    expect(crossvpc(['doctor', example]).code).toBe(0);
    expect(crossvpc(['doctor', risky]).code).toBe(1);
    const broken = edited(clean, (json) => {
      const cm = Object.values<any>(json.resource.kubernetes_config_map_v1)[0];
      cm.data['tenants.json'] = cm.data['tenants.json'].replace('"mtu": 8951', '"mtu": 1450');
    });
    expect(crossvpc(['doctor', broken]).code).toBe(2);
  });

  test('--json prints the report as JSON with the same exit code', () => {
    const r = crossvpc(['doctor', risky, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.exitCode).toBe(1);
    expect(report.findings).toEqual(doctor(risky).findings);
  });

  test('--help exits 0 with the usage; bad options and stack dirs exit 2 with one line and the usage', () => {
    const help = crossvpc(['doctor', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: crossvpc doctor \[stack dir\] \[--json\]/);
    expect(crossvpc(['--help']).stdout).toMatch(/doctor/);
    for (const [args, line] of [
      [['doctor', '--bogus'], "crossvpc: unknown option '--bogus'"],
      [['doctor', '--json=yes'], 'crossvpc: --json: takes no value'],
      [['doctor', 'a', 'b'], "crossvpc: unexpected argument 'b'"],
      [['doctor', '/nonexistent-crossvpc-stack'], "crossvpc: stack dir: got '/nonexistent-crossvpc-stack', expected a directory holding cdk.tf.json (synthesize first: npm run synth)"],
    ] as Array<[string[], string]>) {
      const r = crossvpc(args);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(line);
      expect(r.stderr.split('\n')[1]).toMatch(/^usage: crossvpc doctor/);
    }
  });

  test('doctor --live: --help describes it; a bad option exits 2 with the live usage; a missing agent config is an error finding, exit 2, before the host is read', () => {
    const help = crossvpc(['doctor', '--help']);
    expect(help.stdout).toMatch(/^usage: crossvpc doctor --live \[--config <tenants\.json>\]/m);
    const liveHelp = crossvpc(['doctor', '--live', '--help']);
    expect(liveHelp.code).toBe(0);
    expect(liveHelp.stdout).toMatch(/^usage: crossvpc doctor --live/);
    const bad = crossvpc(['doctor', '--live', '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n').slice(0, 2)).toEqual(["crossvpc doctor --live: unknown option '--bogus'", 'usage: crossvpc doctor --live [--config <tenants.json>] [--node-ip <ip>]']);
    const missing = crossvpc(['doctor', '--live', '--json', '--config', '/nonexistent-crossvpc/tenants.json']);
    expect(missing.code).toBe(2);
    const report = JSON.parse(missing.stdout);
    expect(report.findings).toEqual([expect.objectContaining({ severity: 'error', check: 'agent-config', subject: '/nonexistent-crossvpc/tenants.json' })]);
    expect(report).toMatchObject({ exitCode: 2, tenants: [], node: null, agent: null });
  });

  test('the agent image\'s crossvpc runs doctor --live and refuses anything else', () => {
    const image = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist/agent/doctor.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 });
    const emulate = image(['emulate']);
    expect(emulate.status).toBe(2);
    expect(emulate.stderr.split('\n')[0]).toBe("crossvpc: this image runs only 'crossvpc doctor --live' (got 'emulate')");
    expect(image(['doctor']).status).toBe(2);
    expect(image(['--help']).status).toBe(0);
    const missing = image(['doctor', '--live', '--config', '/nonexistent-crossvpc/tenants.json']);
    expect(missing.status).toBe(2);
    expect(missing.stdout).toMatch(/^crossvpc doctor --live: node \(IP unknown\), config \/nonexistent-crossvpc\/tenants\.json, agent \(not checked\)/);
    expect(missing.stdout).toMatch(/^  error   \[agent-config\] \/nonexistent-crossvpc\/tenants\.json: cannot read the agent config: /m);
  });

  test('a file that is not a crossvpc plan exits 2 naming it', () => {
    const dir = join(TMP, 'empty');
    mkdirSync(dir);
    writeFileSync(join(dir, 'cdk.tf.json'), '{}');
    const r = crossvpc(['doctor', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^crossvpc doctor: cannot read .*cdk\.tf\.json: .*no aws_instance/);
  });
});

describe('crossvpc doctor: internet egress', () => {
  test("names what an egress tenant's own VPC must route, for egress tenants only", () => {
    const alpha = { name: 'alpha', vpcId: 'vpc-0a', subnetId: 'subnet-0a1', cidrs: ['172.16.0.0/16'], vni: 1001 };
    const r = doctor(synthTo({ ...CLEAN, tenants: [alpha, { ...alpha, name: 'beta', vpcId: 'vpc-0b', subnetId: 'subnet-0b2', vni: 1002, internetEgress: 'tenantVpc' }] }));
    const [beta] = of(r, 'egress', 'beta');
    expect(beta).toMatchObject({ severity: 'info' });
    expect(beta.what).toMatch(/^tenant beta has internet egress through its own VPC: .* with the NAT IP \(host -2 of subnet subnet-0b2/);
    expect(beta.fix).toMatch(/route 0\.0\.0\.0\/0 from subnet subnet-0b2 to a NAT gateway/);
    // Control: the tenant without egress gets no such finding, and the clean plan none at all.
    expect(of(r, 'egress', 'alpha')).toEqual([]);
    // Through a platform EIP: the gateway subnet's internet gateway and the EIP are named instead.
    const e = doctor(synthTo({ ...CLEAN, tenants: [alpha, { ...alpha, name: 'gamma', vpcId: 'vpc-0c', subnetId: 'subnet-0c3', vni: 1003, internetEgress: { eipAllocationId: 'eipalloc-0123456789abcdef0', privateIp: '10.0.255.20' } }] }));
    const [gamma] = of(e, 'egress', 'gamma');
    expect(gamma.what).toMatch(/^tenant gamma has internet egress through the platform's Elastic IP eipalloc-0123456789abcdef0: pair 0's active member SNATs .* to 10\.0\.255\.20/);
    expect(gamma.fix).toMatch(/route 0\.0\.0\.0\/0 from the gateway subnet to an internet gateway/);
    expect(of(e, 'egress', 'alpha')).toEqual([]);
    expect(of(doctor(clean), 'egress')).toEqual([]);
  });
});

describe('crossvpc doctor: the peering path', () => {
  const peering = { functionRouteTableIds: ['rtb-f1'], tenantRouteTableIds: ['rtb-g1'] };
  const gamma: TenantProps = { name: 'gamma', vpcId: 'vpc-gamma', cidrs: ['10.20.0.0/16'], path: 'peering', peering: { ...peering, tenantSecurityGroupIds: ['sg-redis'], ports: ['tcp:6379'] } };
  const dock: TenantProps = { name: 'dock', vpcId: 'vpc-dock', cidrs: ['172.18.0.0/16'], path: 'peering', peering };
  let plan: string;
  beforeAll(() => {
    plan = synthTo({ ...CLEAN, extraTenants: [gamma, dock] });
  });

  test('names the sources a peered tenant must allow and the rules the plan adds, under its own heading', () => {
    const r = doctor(plan);
    expect(r.peered.map((t) => t.name)).toEqual(['gamma', 'dock']);
    const [g] = of(r, 'peering-sources', 'gamma');
    expect(g.what).toMatch(/reached through VPC peering: its services see the functions' own addresses in 10\.0\.0\.0\/20, not a NAT IP\. The plan adds 1 ingress rule\(s\): sg-redis tcp 6379\./);
    expect(g.fix).toMatch(/^allow 10\.0\.0\.0\/20 in the security groups/);
    expect(of(r, 'peering-sources', 'dock')[0].what).toMatch(/adds no security-group rule/);
    expect(formatReport(r)).toMatch(/\ntenant gamma \(VNI \d+, VPC peering\)\n  info    \[peering-sources\]/);
    expect(of(r, 'peering-route')).toEqual([]);
  });

  test("a peered range in Docker's pools is a warning that says the node's main table shadows it; gamma's is not", () => {
    const r = doctor(plan);
    expect(of(r, 'docker-range', 'dock').map((f) => f.what)).toEqual([expect.stringMatching(/172\.18\.0\.0\/16 overlaps .*pods of a peered tenant follow the node's main table/)]);
    expect(of(r, 'docker-range', 'gamma')).toEqual([]);
  });

  test('a plan missing a function-side route or the peering is an error', () => {
    const noRoute = edited(plan, (json) => {
      for (const [id, r] of Object.entries<any>(json.resource.aws_route)) if (r.destination_cidr_block === '10.20.0.0/16') delete json.resource.aws_route[id];
    });
    expect(of(doctor(noRoute), 'peering-route', 'gamma').map((f) => f.severity)).toEqual(['error']);
    const noPeering = edited(plan, (json) => {
      for (const [id, c] of Object.entries<any>(json.resource.aws_vpc_peering_connection)) if (c.tags['crossvpc:tenant'] === 'gamma') delete json.resource.aws_vpc_peering_connection[id];
    });
    const r = doctor(noPeering);
    expect(of(r, 'peering', 'gamma').map((f) => f.severity)).toEqual(['error']);
    expect(r.exitCode).toBe(2);
  });
});
