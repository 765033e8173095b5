/**
 * End-to-end proof: synthesize plans, then run their exact user data and node agent in
 * network namespaces with real Redis, keepalived and conntrackd. Needs root on Linux;
 * with CI=true it fails instead of skipping.
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Emulation } from '../lib/emulate/emulator';
import { holdEgressConnections } from '../lib/emulate/egress';
import { holdIngressConnections, ingressChecks } from '../lib/emulate/ingress';
import { FailoverRunner } from '../lib/emulate/failover';
import { haveTool, isRootLinux, synthStackDir } from './helpers';
import { GATEWAY_METRIC_PREFIX, GATEWAY_TEXTFILE, GATEWAY_TEXTFILE_SUBDIR, RUN_DIR } from '../lib/contract';

const canRun = isRootLinux() && haveTool('keepalived', ['--version']) && haveTool('redis-server', ['--version']);
const maybe = canRun ? describe : describe.skip;
jest.setTimeout(240_000);

const synth = synthStackDir;

/** A port forward target in the example's function VPC (10.0.0.0/16), clear of the emulation's stand-in subnets. */
const FORWARD_TARGET = '10.0.200.10';
const tenant = (name: string, vni: number) => ({ name, vpcId: `vpc-0${name}`, subnetId: `subnet-0${name}`, cidrs: ['172.16.0.0/16'], vni });
const lines: string[] = [];
const log = (l: string) => lines.push(l);

async function withEmulation(stackDir: string, body: (emu: Emulation) => Promise<void>): Promise<void> {
  const emu = new Emulation({ stackDir, nodes: 2, log });
  try {
    await emu.start();
    await body(emu);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- emulation log ---\n${lines.slice(-60).join('\n')}`);
  } finally {
    emu.stop();
    lines.length = 0;
  }
}

/** Every member's node_exporter serves crossvpc's textfile on SELF_IP:METRICS_PORT, promtool accepts it, and the master counted tenant traffic. */
async function gatewayMetricsServed(emu: Emulation): Promise<void> {
  const bytes = (text: string, tenant: string) => [...text.matchAll(new RegExp(`^${GATEWAY_METRIC_PREFIX}tenant_bytes_total\\{[^}]*tenant="${tenant}"[^}]*\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  for (const m of emu.members()) {
    const url = `http://${m.env.SELF_IP}:${m.env.METRICS_PORT}/metrics`;
    let body = '';
    for (let i = 0; i < 60 && !body.includes(`${GATEWAY_METRIC_PREFIX}metrics_timestamp_seconds`); i++) {
      body = emu.exec(m.ns, 'curl', ['-sf', '-m', '2', url], { allowFail: true, timeoutMs: 5000 });
      if (!body.includes(`${GATEWAY_METRIC_PREFIX}metrics_timestamp_seconds`)) await new Promise((res) => setTimeout(res, 500));
    }
    expect({ member: m.id, served: body.includes(`${GATEWAY_METRIC_PREFIX}vrrp_state{`) }).toEqual({ member: m.id, served: true });
    const textfile = join(m.root, RUN_DIR, GATEWAY_TEXTFILE_SUBDIR, GATEWAY_TEXTFILE);
    execFileSync('sh', ['-c', `promtool check metrics < "${textfile}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  // Written every 5 s: wait for a pass after the matrix's traffic, then the master has counted alpha's.
  await new Promise((res) => setTimeout(res, 6000));
  const master = emu.master(0)!;
  const text = readFileSync(join(master.root, RUN_DIR, GATEWAY_TEXTFILE_SUBDIR, GATEWAY_TEXTFILE), 'utf8');
  expect(text).toContain(`${GATEWAY_METRIC_PREFIX}vrrp_state{pair="0",member="${master.member}",state="MASTER"} 1`);
  expect(bytes(text, 'alpha')).toBeGreaterThan(0);
}

maybe('crossvpc emulate', () => {
  test('the example: every pod reaches its own tenant and nothing else', async () => {
    // With the gateway metrics on: every member serves them after the matrix.
    await withEmulation(synth({ gateway: { metricsSources: ['10.0.0.0/16'] } }), async (emu) => {
      const r = await emu.matrix();
      expect(r.checks.filter((c) => !c.pass)).toEqual([]);
      await gatewayMetricsServed(emu);
      // The same run read back through Prometheus's HTTP API (monitoring.ts): all of it, and passing.
      expect(r.checks.filter((c) => c.name.startsWith('prometheus:')).map((c) => c.name.replace(/ \(.*/, ''))).toEqual([
        'prometheus: 4 targets up',
        "prometheus: promtool check metrics accepts each endpoint's output",
        ...['gateway drops by reason tunnel_not_havip', 'gateway drops by reason not_from_peer', 'node drops by reason pod_spoof', 'node drops by reason tunnel_spoof'].map((d) => `prometheus: ${d} moved while the attacks ran`),
        "prometheus: n1-alpha writing 20000 bytes moves tenant alpha's byte counters and no other tenant's",
        "prometheus: n1-beta writing 20000 bytes moves tenant beta's byte counters and no other tenant's",
      ]);
      expect(r.reached['n1-alpha']).toEqual(['alpha']);
      expect(r.reached['n2-beta']).toEqual(['beta']);
      expect(r.reached['n1-unlabelled']).toBeUndefined();
      expect(r.checks.some((c) => /crafting VXLAN/.test(c.name) && c.pass)).toBe(true);
      // The cloud API really moved the floating IPs, with signed requests the role allows,
      // and each member read its pair's document from SSM with its own credentials.
      const calls = emu.cloudCalls();
      const ec2 = calls.filter((c) => c.service === 'ec2');
      expect(ec2.filter((c) => c.result === 'moved').length).toBeGreaterThanOrEqual(3);
      expect(ec2.filter((c) => c.result !== 'moved')).toEqual([]);
      const ssm = calls.filter((c) => c.service === 'ssm');
      expect([...new Set(ssm.map((c) => `${c.member} ${c.name} v${c.version} ${c.result}`))].sort()).toEqual(['g0a', 'g0b'].map((m) => `${m} ${emu.documentName(0)} v1 served`));
      expect(calls.filter((c) => c.service !== 'ec2' && c.service !== 'ssm')).toEqual([]);
      // Least privilege: a member's credentials read its pair's document and nothing else in Parameter Store.
      const m = emu.members()[0];
      const ssmCall = (name: string) => emu.exec(m.ns, 'bash', ['-c', `set -e
t=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
md() { curl -sf -H "X-aws-ec2-metadata-token: $t" "http://169.254.169.254/latest/meta-data/$1"; }
role=$(md iam/security-credentials/); c=$(md "iam/security-credentials/$role")
curl -s --aws-sigv4 "aws:amz:$(md placement/region):ssm" --user "$(jq -r .AccessKeyId <<<"$c"):$(jq -r .SecretAccessKey <<<"$c")" -H "x-amz-security-token: $(jq -r .Token <<<"$c")" \\
  -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: AmazonSSM.GetParameter' -d '{"Name":"${name}"}' http://169.254.169.252/`], { allowFail: true });
      expect(JSON.parse(ssmCall(emu.documentName(0)!)).Parameter.Version).toBe(1);
      expect(JSON.parse(ssmCall('/crossvpc/pair9-000000000000')).__type).toBe('AccessDeniedException');
      expect(JSON.parse(ssmCall('/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id')).__type).toBe('AccessDeniedException');
      for (const ms of Object.values(emu.podReadyMs())) expect(ms).toBeLessThan(5000);
    });
  });

  test('the all-paths example (examples/all-paths, synthesized by its main.js into CDKTF_OUTDIR): every path reaches its own tenant and nothing else', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'crossvpc-all-paths-'));
    execFileSync(process.execPath, [join(__dirname, '../dist/examples/all-paths/main.js')], { env: { ...process.env, CDKTF_OUTDIR: outdir } });
    try {
      await withEmulation(join(outdir, 'stacks', 'all-paths'), async (emu) => {
        expect(emu.activeTenants().map((t) => t.name)).toEqual(['alpha', 'beta', 'delta']);
        expect(emu.peeredTenants().map((t) => t.name)).toEqual(['gamma']);
        const r = await emu.matrix();
        expect(r.checks.filter((c) => !c.pass)).toEqual([]);
        for (const t of ['alpha', 'beta', 'gamma', 'delta']) for (const n of [1, 2]) expect(r.reached[`n${n}-${t}`]).toEqual([t]);
        expect(r.reached['n1-unlabelled']).toBeUndefined();
        // Each path's own checks ran: beta's egress through its VPC and delta's through the platform EIP (each
        // seen as its own EIP stand-in, nobody else's pods), gamma's peering attacks.
        const eip = Object.fromEntries(emu.internetTenants().map((t) => [t.name, t.eip]));
        expect(Object.keys(eip).sort()).toEqual(['beta', 'delta']);
        for (const t of ['beta', 'delta']) for (const n of [1, 2]) expect(r.checks.find((c) => c.name.startsWith(`egress: pod n${n}-${t} reaches`))).toMatchObject({ pass: true, detail: `server saw ${eip[t]}` });
        expect(r.checks.find((c) => c.name.startsWith("egress: tenant delta's EIP is associated with the live master"))).toMatchObject({ pass: true });
        for (const p of ['n1-alpha', 'n2-gamma', 'n1-unlabelled']) expect(r.checks.find((c) => c.name.startsWith(`egress: pod ${p} (`))).toMatchObject({ pass: true, detail: 'no connection' });
        expect(r.checks.filter((c) => c.name.startsWith('[peering gamma]')).length).toBe(8);
        // delta's port forward: its client reaches the target through NAT IP:6379; an unlisted port and every other tenant's client get nothing.
        expect(r.checks.filter((c) => c.name.startsWith('ingress:')).map((c) => c.name.replace(/^ingress: (tenant \S+) ?(\S+ \S+ \S+).*/, '$1 $2'))).toEqual([
          "tenant delta's client 172.16.0.3 reaches", "tenant delta's client -> NAT", "tenant alpha's client -> its", "tenant beta's client -> its",
        ]);
      });
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('three tenants with identical CIDRs and identical NAT IPs, and a peered tenant on the same CIDR, stay apart', async () => {
    // delta takes the peering path: its first range is the NAT tenants' 172.16.0.0/16 (its Redis is
    // at 172.16.0.3 too), its second overlaps nothing; neither overlaps the function VPC. Its security
    // group admits Redis and the attacks' UDP probe ports, so the node alone stands between pods and it.
    const delta = {
      name: 'delta', vpcId: 'vpc-0delta', cidrs: ['172.16.0.0/16', '10.20.0.0/16'], vni: 1004, path: 'peering' as const,
      peering: { functionRouteTableIds: ['rtb-0f1'], tenantRouteTableIds: ['rtb-0d1'], tenantSecurityGroupIds: ['sg-0d1'], ports: ['tcp:6379', 'udp:7300-7399'] },
    };
    // alpha and gamma have internet egress through their own VPCs (identical NAT IPs, distinct EIPs), beta has none.
    const egress = { internetEgress: 'tenantVpc' as const };
    await withEmulation(synth({ tenants: [{ ...tenant('alpha', 1001), ...egress }, tenant('beta', 1002), { ...tenant('gamma', 1003), ...egress }, delta] }), async (emu) => {
      const natIps = new Set(emu.members()[0].tenants.map((row) => row.natIp));
      expect(natIps.size).toBe(1);
      expect([...natIps][0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(emu.probeAddress('delta')).toBe(emu.probeAddress('alpha'));
      const r = await emu.matrix();
      expect(r.checks.filter((c) => !c.pass)).toEqual([]);
      for (const t of ['alpha', 'beta', 'gamma', 'delta']) {
        expect(r.reached[`n1-${t}`]).toEqual([t]);
        expect(r.reached[`n2-${t}`]).toEqual([t]);
      }
      expect(r.reached['n1-unlabelled']).toBeUndefined();
      // The peering's attacks ran, each with its control.
      expect(r.checks.filter((c) => c.name.startsWith('[peering delta]')).map((c) => c.name.replace(/^\[peering delta\] (control: )?(\S+ \S+ \S+).*/, '$1$2'))).toEqual([
        '4 other pods', 'control: n1-delta sending the', 'a host of', 'control: node n2 sending', 'a host of', 'control: the node sending',
        'n1-delta connecting to', "control: the tenant's VPC",
      ]);
      // Internet egress: each egress pod is seen as its own tenant's EIP, its VPC saw the NAT IP, nothing
      // private leaks out, and beta's, delta's and unlabelled pods reach nothing (egress.ts).
      const egressChecks = r.checks.filter((c) => c.name.startsWith('egress:'));
      const eip = Object.fromEntries(emu.internetTenants().map((t) => [t.name, t.eip]));
      expect(Object.keys(eip).sort()).toEqual(['alpha', 'gamma']);
      expect(new Set(Object.values(eip)).size).toBe(2);
      for (const t of ['alpha', 'gamma']) {
        for (const n of [1, 2]) {
          expect(egressChecks.find((c) => c.name.startsWith(`egress: pod n${n}-${t} reaches`))).toMatchObject({ pass: true, detail: `server saw ${eip[t]}` });
          expect(egressChecks.find((c) => c.name.startsWith(`egress: pod n${n}-${t} -> private host`))).toMatchObject({ pass: true });
        }
        expect(egressChecks.find((c) => c.name.startsWith(`egress: tenant ${t}'s NAT gateway stand-in`))).toMatchObject({ pass: true, detail: expect.stringContaining(`inner sources ${[...natIps][0]}, translated to ${eip[t]}`) });
      }
      for (const p of ['n1-beta', 'n2-beta', 'n1-delta', 'n2-delta', 'n1-unlabelled', 'n2-unlabelled']) {
        expect(egressChecks.find((c) => c.name.startsWith(`egress: pod ${p} (`))).toMatchObject({ pass: true, detail: 'no connection' });
      }
      expect(egressChecks.find((c) => c.name.startsWith('egress: control: tenant alpha'))).toMatchObject({ pass: true });
      // The gateway alone refuses what a node forces into a tunnel: beta to the internet, alpha to a private host.
      expect(egressChecks.filter((c) => c.name.startsWith('egress: node n1 forcing')).map((c) => `${c.name.replace(/^egress: node n1 forcing pod (\S+)'s traffic to the (\S+ \S+).*/, '$1 $2')} ${c.pass}`))
        .toEqual(['n1-beta internet server true', 'n1-alpha private host true']);
      // alpha has egress, so only the ruleset stands between its tunnel and a private host.
      expect(egressChecks.find((c) => c.name.includes('n1-alpha\'s traffic to the private host'))!.detail).toContain('dropped by the ruleset as unmatched');
    });
  });

  test('narrow tenants: a /24 tenant and a /32 destination on the same address each reach only their own', async () => {
    const tenants = [
      { ...tenant('alpha', 1001), cidrs: ['172.16.5.0/24'] },
      { ...tenant('beta', 1002), allowedDestinations: ['172.16.5.3/32'] },
    ];
    // Gateway metrics open to a CIDR outside the function VPC: the monitoring host is refused.
    await withEmulation(synth({ tenants, gateway: { metricsSources: ['10.9.0.0/24'] } }), async (emu) => {
      expect(emu.probeAddress('alpha')).toBe('172.16.5.3');
      expect(emu.probeAddress('beta')).toBe('172.16.5.3');
      const subnets = Object.fromEntries(emu.members()[0].tenants.map((row) => [row.name, row.subnetCidr]));
      expect(subnets).toEqual({ alpha: '172.16.5.0/24', beta: '172.16.255.0/24' });
      const r = await emu.matrix();
      expect(r.checks.filter((c) => !c.pass)).toEqual([]);
      for (const t of ['alpha', 'beta']) {
        expect(r.reached[`n1-${t}`]).toEqual([t]);
        expect(r.reached[`n2-${t}`]).toEqual([t]);
      }
      expect(r.reached['n1-unlabelled']).toBeUndefined();
      // Prometheus shows the members down and says why; the agents are up and their drops move.
      const up = r.checks.find((c) => c.name.startsWith('prometheus: 2 targets up'))!;
      expect(up.name).toContain("2 gateway members down because the plan's security group refuses the monitoring host");
      expect(up.detail).toMatch(/g0a .*down.*g0a down as the plan says: its security group admits the metrics port only from 10\.9\.0\.0\/24, which does not cover the monitoring host 10\.0\.8\.10/);
      expect(r.checks.filter((c) => c.name.startsWith('prometheus:')).map((c) => c.name.replace(/ \(.*/, ''))).toEqual([
        expect.stringMatching(/^prometheus: 2 targets up/),
        "prometheus: promtool check metrics accepts each endpoint's output",
        'prometheus: node drops by reason pod_spoof moved while the attacks ran',
        'prometheus: node drops by reason tunnel_spoof moved while the attacks ran',
      ]);
      // It is the security group: the member serves its metrics, and the monitoring host reaches the nodes.
      const m = emu.members()[0];
      const mon = emu.prometheus()!.ns;
      const get = (ns: string, addr: string) => emu.ok(ns, 'curl', ['-sf', '-m', '2', '-o', '/dev/null', `http://${addr}/metrics`], 5000);
      expect({ fromMember: get(m.ns, `${m.env.SELF_IP}:${m.env.METRICS_PORT}`), fromMonitoring: get(mon, `${m.env.SELF_IP}:${m.env.METRICS_PORT}`), nodeFromMonitoring: get(mon, `${emu.nodeIp(0)}:9740`) })
        .toEqual({ fromMember: true, fromMonitoring: false, nodeFromMonitoring: true });
    });
  });

  test('health: the pair fails over only to a better-off member; a tenant broken on both moves nothing', async () => {
    await withEmulation(synth({}), async (emu) => {
      const { readFileSync, writeFileSync } = await import('fs');
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const until = async (what: string, ok: () => boolean, ms: number) => {
        const t0 = Date.now();
        while (!ok()) {
          if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
          await sleep(100);
        }
        return Date.now() - t0;
      };
      // The grace for a tenant's devices to come back is 60 s on a real member; 2 s here, in the
      // members' gateway.env (crossvpc-check reads it on every run), so the test takes seconds.
      for (const m of emu.members(0)) {
        const f = join(m.root, 'etc/crossvpc/gateway.env');
        writeFileSync(f, readFileSync(f, 'utf8').replace(/^TENANT_GRACE_SEC='\d+'$/m, "TENANT_GRACE_SEC='2'"));
      }
      const first = emu.liveMaster(0)!;
      const second = emu.members(0).find((m) => m.id !== first.id)!;
      // A broken ENI: its carrier goes (the tenant-fabric end of the member's alpha ENI goes down).
      // An ENI merely set down on the member is no test: crossvpc-reconcile sees its routes gone and
      // re-applies, which sets it up again.
      const alphaFabric = `${emu.prefix}-t-alpha`;
      const carrier = (m: { id: string }, on: boolean) => emu.exec(alphaFabric, 'ip', ['link', 'set', m.id, on ? 'up' : 'down']);
      const alphaPod = emu.pods().find((p) => p.tenant === 'alpha')!;
      const alphaUp = () => emu.redis(alphaPod, emu.probeAddress('alpha'), ['ping'], 1) === 'PONG';
      const betaPod = emu.pods().find((p) => p.tenant === 'beta')!;
      const beta = emu.startIncrClient(betaPod, 'health');
      try {
        expect(alphaUp()).toBe(true);
        // 1. alpha's ENI breaks on the master only: after the grace its priority drops below the
        //    backup's, which takes over; alpha answers again, through the other member.
        carrier(first, false);
        const tookOver = await until('the healthier member takes over', () => emu.liveMaster(0)?.id === second.id, 15_000);
        expect(tookOver).toBeGreaterThanOrEqual(1500); // not before the grace
        await until('alpha answers through the new master', alphaUp, 10_000);
        expect(emu.vrrpState(first)).toBe('BACKUP');
        // 2. The same tenant breaks on the new master too: both equally degraded, nothing moves.
        carrier(second, false);
        await sleep(6000);
        expect([emu.vrrpState(first), emu.vrrpState(second)]).toEqual(['BACKUP', 'MASTER']);
        expect([first, second].map((m) => readFileSync(join(m.root, 'run/crossvpc/degraded'), 'utf8').trim())).toEqual(['1', '1']);
        // 3. Repaired on the old master first: it is better off now, so it takes the role back (control:
        //    the same signal that moved nothing in 2 moves the pair when the members differ).
        carrier(first, true);
        await until('the repaired member takes over', () => emu.liveMaster(0)?.id === first.id, 10_000);
        carrier(second, true);
        await sleep(4000);
        expect([emu.vrrpState(first), emu.vrrpState(second)]).toEqual(['MASTER', 'BACKUP']);
        await until('alpha answers', alphaUp, 10_000);
        // An ENI set down by hand on the backup loses its routes with it; the reconciler notices
        // within a poll (5 s) and re-applies: the ENI is up again with its routes.
        const row = second.tenants.find((t) => t.name === 'alpha')!;
        const tn = `tn${row.vni}`;
        const routed = () => emu.exec(second.ns, 'ip', ['-4', 'route', 'show', 'table', String(row.table)]).includes(`dev ${tn}`);
        emu.exec(second.ns, 'ip', ['link', 'set', tn, 'down']);
        expect(routed()).toBe(false);
        await until('the reconciler restores the ENI and its routes', () => routed() && emu.exec(second.ns, 'ip', ['-o', 'link', 'show', tn]).includes('state UP'), 12_000);
        // beta's session lived through both handovers (conntrackd).
        await sleep(500);
        const st = JSON.parse(readFileSync(beta.statusFile, 'utf8'));
        expect({ reconnects: st.reconnects, failedOps: st.failedOps }).toEqual({ reconnects: 0, failedOps: 0 });
        expect(st.acked).toBeGreaterThan(100);
      } finally {
        beta.child.kill('SIGTERM');
      }
    });
  });

  test('a gateway unit killed by a signal is restarted after its RestartSec, and the data plane still passes', async () => {
    await withEmulation(synth({}), async (emu) => {
      const unit = 'crossvpc-resolver.service'; // Restart=always, RestartSec=1
      const member = emu.liveMaster(0)!;
      const first = emu.unit(member, unit).pid!;
      process.kill(first, 'SIGKILL');
      const t0 = Date.now();
      while (Date.now() - t0 < 5000 && [undefined, first].includes(emu.unit(member, unit).pid)) await new Promise((r) => setTimeout(r, 20));
      const back = Date.now() - t0;
      const { pid, restarts } = emu.unit(member, unit);
      expect({ restarted: pid !== undefined && pid !== first, restarts }).toEqual({ restarted: true, restarts: 1 });
      expect(back).toBeGreaterThanOrEqual(950);
      expect(back).toBeLessThan(3000);
      // The new process is the resolver itself: it wrote its pid where the health check looks.
      const { readFileSync } = await import('fs');
      const pidFile = join(member.root, 'run/crossvpc/resolver.pid');
      for (let i = 0; i < 50 && readFileSync(pidFile, 'utf8').trim() !== String(pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(pid));
      const r = await emu.matrix({ attacks: false }); // the attacks run in the tests above; this is about the restart
      expect(r.checks.filter((c) => !c.pass)).toEqual([]);
    });
  });

  test('Ctrl-C mid-run removes every namespace and process of the run', async () => {
    const { spawn, execFileSync } = await import('child_process');
    const cli = join(__dirname, '../dist/lib/cli/crossvpc.js');
    const child = spawn(process.execPath, [cli, 'emulate', synth({})], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const t0 = Date.now();
    while (!/node agents ready/.test(out) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 100));
    const prefix = /\[emulate (cv[0-9a-f]+)\]/.exec(out)![1];
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(`${prefix}-`);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(out).toContain(`SIGINT: removing namespaces and processes of run ${prefix}`);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${prefix}-`);
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(`crossvpc-emulate-${prefix}`);
  });

  test('a tenant over its conntrack limit is capped without touching other tenants', async () => {
    await withEmulation(synth({ gateway: { connLimitPerTenant: 3 } }), async (emu) => {
      const alpha = emu.pods().find((p) => p.tenant === 'alpha')!;
      const beta = emu.pods().find((p) => p.tenant === 'beta')!;
      const flood = Array.from({ length: 6 }, (_, i) => emu.startIncrClient(alpha, `flood:${i}`));
      await new Promise((r) => setTimeout(r, 3000));
      const { readFileSync } = await import('fs');
      const connected = flood.filter((c) => JSON.parse(readFileSync(c.statusFile, 'utf8')).acked > 0).length;
      // Beta opens fresh connections while alpha sits at its ceiling.
      const betaReplies = [1, 2, 3, 4].map(() => emu.redis(beta, emu.probeAddress('beta'), ['ping'], 2));
      for (const c of flood) process.kill(c.child.pid!, 'SIGTERM');
      const master = emu.liveMaster(0)!;
      const counters = emu.exec(master.ns, 'nft', ['list', 'counter', 'inet', 'crossvpc_gw', 'over_limit']);
      expect(connected).toBe(3);
      expect(Number(/packets (\d+)/.exec(counters)![1])).toBeGreaterThan(0);
      expect(betaReplies).toEqual(['PONG', 'PONG', 'PONG', 'PONG']);
    });
  });

  test('ingress (seed 001): a tenant client reaches a function-VPC target through NAT IP:port, nobody else does, and a held connection survives failover and failback', async () => {
    // alpha forwards NAT IP:6379 to a Redis in the function VPC; beta (the same CIDRs and NAT IP) forwards nothing.
    const tenants = [{ ...tenant('alpha', 1001), inbound: [{ protocol: 'tcp' as const, port: 6379, target: `${FORWARD_TARGET}:6379` }] }, tenant('beta', 1002)];
    await withEmulation(synth({ tenants }), async (emu) => {
      const label = (c: { name: string; pass: boolean }) => `${c.name.replace(/^ingress: (tenant \S+) ?(\S+ \S+ \S+).*/, '$1 $2')} ${c.pass}`;
      const expected = ["tenant alpha's client 172.16.0.3 reaches true", "tenant alpha's client -> NAT true", "tenant beta's client -> its true"];
      const before = await ingressChecks(emu);
      expect(before.map(label)).toEqual(expected);
      const havip = emu.members(0)[0].env.HAVIP;
      expect(before[0].detail).toMatch(new RegExp(`^target saw ${havip.replace(/\./g, '\\.')}:21\\d{3}$`)); // alpha sits in slot 1: ports 21000-21999
      const ingress = holdIngressConnections(emu);
      let results: Awaited<ReturnType<FailoverRunner['runAll']>>;
      let held: ReturnType<typeof ingress.finish>;
      try {
        results = await new FailoverRunner(emu).runAll(['hard-kill', 'failback']);
      } finally {
        held = ingress.finish();
      }
      // The forwarded connection (zone-T entries with their DNAT and SNAT, synced by conntrackd; the HaVip and NAT IP move).
      expect(held.map((c) => [c.name.replace(/ \(.*/, ''), c.pass])).toEqual([[expect.stringMatching(/^ingress: tenant alpha's connection through NAT IP \S+:6379 to 10\.0\.200\.10 lived through the faults$/), true]]);
      expect(Number(/^(\d+) INCRs/.exec(held[0].detail)![1])).toBeGreaterThan(50);
      for (const r of results) expect({ fault: r.fault, survived: r.survived, isolated: r.isolated }).toEqual({ fault: r.fault, survived: true, isolated: true });
      // After the faults, on the other member and back: the same answers.
      expect((await ingressChecks(emu)).map(label)).toEqual(expected);
    });
  });

  test('failover under load: hard kill, failback, graceful stop keep the connection and every write; a split heals cleanly', async () => {
    // Gateway metrics open to a security group (the Prometheus servers'): the monitoring host stands in for it.
    // alpha has internet egress through its VPC, beta through a platform EIP (its egress IP in the gateway
    // subnet's stand-in 10.0.255.0/24): a connection through each lives through every fault too.
    const betaEip = { eipAllocationId: 'eipalloc-0b0b0b0b0b0b0b0b0', privateIp: '10.0.255.20' };
    const tenants = [{ ...tenant('alpha', 1001), internetEgress: 'tenantVpc' as const }, { ...tenant('beta', 1002), internetEgress: betaEip }];
    await withEmulation(synth({ tenants, gateway: { metricsSecurityGroupId: 'sg-0123456789abcdef0' } }), async (emu) => {
      const t0 = Date.now();
      const first = emu.master(0)!.member;
      const other = emu.members(0).find((m) => m.member !== first)!.member;
      const egress = holdEgressConnections(emu);
      let results: Awaited<ReturnType<FailoverRunner['runAll']>>;
      let held: ReturnType<typeof egress.finish>;
      try {
        results = await new FailoverRunner(emu).runAll(['hard-kill', 'failback', 'graceful-stop', 'split-brain']);
      } finally {
        held = egress.finish();
      }
      // The egress connection (conntrackd syncs its zone's entries): never reconnected, replies in sequence, still open from alpha's EIP.
      expect(held.map((c) => [c.name.replace(/ \(.*/, ''), c.pass])).toEqual(['alpha', 'beta'].map((t) => [`egress: pod n1-${t}'s connection through tenant ${t}'s egress lived through the faults`, true]));
      for (const h of held) {
        expect(Number(/longest pause (\d+) ms/.exec(h.detail)![1])).toBeLessThan(10_000);
        expect(Number(/^(\d+) INCRs/.exec(h.detail)![1])).toBeGreaterThan(100);
      }
      // beta's EIP followed the master: each member associated it (signed, allowed by the role), none refused.
      const associations = emu.cloudCalls().filter((c) => c.action === 'AssociateAddress');
      expect(associations.filter((c) => c.result !== 'associated')).toEqual([]);
      expect(new Set(associations.map((c) => `${c.member} ${c.allocation} ${c.ip}`))).toEqual(new Set(emu.members(0).map((m) => `${m.id} ${betaEip.eipAllocationId} ${betaEip.privateIp}`)));
      // Prometheus saw the MASTER role move: to the other member (hard kill), back (failback), ...
      expect(emu.vrrpFlipCheck(0, t0)).toMatchObject({ pass: true });
      expect(emu.prometheus()!.masterHistory(0, t0).slice(0, 3)).toEqual([first, other, first]);
      const split = results.pop()!;
      expect({ survived: split.survived, isolated: split.isolated, breaks: split.tenants.map((t) => t.sequenceBreaks) }).toEqual({ survived: true, isolated: true, breaks: [0, 0] });
      for (const r of results) {
        expect({ fault: r.fault, survived: r.survived, connection: r.connectionSurvived, counters: r.countersMatch, isolated: r.isolated, moved: r.to !== r.from && r.to !== 'none' })
          .toEqual({ fault: r.fault, survived: true, connection: true, counters: true, isolated: true, moved: true });
        expect(r.recoveryMs).toBeLessThan(10_000); // a sanity bound; the 3 s target is reported by the CLI and README, not asserted on a shared CI box
      }
      // After the faults, egress still works for alpha and beta, each as its own EIP, and beta's EIP sits on
      // the live master (the full matrix holds the egress checks; eip-egress.ts the EIP ones).
      const after = await emu.matrix();
      expect(after.checks.filter((c) => !c.pass)).toEqual([]);
      const eip = Object.fromEntries(emu.internetTenants().map((t) => [t.name, t.eip]));
      for (const t of ['alpha', 'beta']) {
        expect(after.checks.filter((c) => new RegExp(`^egress: pod n\\d-${t} reaches`).test(c.name)).map((c) => [c.pass, c.detail])).toEqual([[true, `server saw ${eip[t]}`], [true, `server saw ${eip[t]}`]]);
      }
      expect(after.checks.filter((c) => c.name.startsWith('egress:') && /IGW stand-in saw|EIP is associated|internet connecting to tenant beta's EIP/.test(c.name)).map((c) => c.name.replace(/:.*?(IGW|EIP is|internet connecting).*/, ' $1'))).toEqual(['egress IGW', 'egress EIP is', 'egress internet connecting']);
      expect(after.checks.find((c) => c.name.includes("n1-beta's traffic to the private host"))).toMatchObject({ pass: true, detail: expect.stringContaining('dropped by the ruleset as unmatched') });
    });
  });
});

if (!canRun) {
  test('emulation tests need root on Linux with keepalived and redis (skipped on this machine)', () => {
    expect(canRun).toBe(false);
  });
}
