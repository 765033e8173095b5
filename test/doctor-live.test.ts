/**
 * `crossvpc doctor --live` on gateway members: the script user data ships, run on the members
 * of one emulation of the example as an operator's root shell runs it. A healthy emulation is
 * clean; then each fault is injected, doctor must name it (check, tenant or subject, exit
 * code), and after the repair the finding is gone. Needs root on Linux (CI=true fails
 * instead of skipping); the command-line tests at the top run anywhere.
 */
import { execFileSync, spawnSync } from 'child_process';
import { gunzipSync } from 'zlib';
import { tenantDev } from '../lib/contract';
import { formatFindings, parseFindings, ParsedFinding } from '../lib/doctor/findings';
import { Emulation, GatewayMember } from '../lib/emulate/emulator';
import { ssmDocumentValue } from '../lib/emulate/pair-documents';
import { tenantSecurityGroupDrops } from '../lib/emulate/tenant-faults';
import { gatewayScript, MEMBER_CLI } from '../lib/render/gateway-files';
import { CONNTRACKD_SYNC_PORT } from '../lib/render/gateway-spec';
import { haveTool, isRootLinux, synthStackDir } from './helpers';

// --norc: with a socket on stdin (Node's pipes), bash -c would source ~/.bashrc as if rshd ran it.
const script = (args: string[]) => spawnSync('bash', ['--norc', '-c', gatewayScript('crossvpc'), 'crossvpc', ...args], { encoding: 'utf8' });

describe('the member\'s crossvpc command line (no root)', () => {
  test('--help exits 0; anything but doctor --live is refused, naming what runs where', () => {
    for (const args of [['--help'], ['doctor', '--help']]) {
      const r = script(args);
      expect({ args, status: r.status, usage: r.stdout.startsWith('usage: crossvpc doctor --live ') }).toEqual({ args, status: 0, usage: true });
    }
    for (const args of [['emulate'], ['doctor', 'cdktf.out/stacks/x'], ['doctor', '--live', '--json'], []]) {
      const r = script(args);
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toContain('does not run on a gateway member');
      expect(r.stderr).toContain('crossvpc doctor <stack dir> and emulate run where the stack is synthesized');
    }
  });

  test('parseFindings reads formatFindings back: tenant from the heading, check, text, fix and exit code', () => {
    const text = formatFindings([
      { severity: 'error', check: 'nat-eni', tenant: 'alpha', subject: 'eni-1', what: 'gone: really.', fix: 'attach it.' },
      { severity: 'info', check: 'vrrp', subject: 'keepalived', what: 'MASTER.', fix: 'none needed.' },
    ], new Map([['alpha', 'tenant alpha (VNI 1001, pair 0)']]));
    expect(parseFindings(text)).toEqual({
      exitCode: 2,
      findings: [
        { severity: 'error', check: 'nat-eni', tenant: 'alpha', text: 'eni-1: gone: really.', fix: 'attach it.' },
        { severity: 'info', check: 'vrrp', text: 'keepalived: MASTER.', fix: 'none needed.' },
      ],
    });
    expect(() => parseFindings('tenant alpha (VNI 1)\n')).toThrow(/no summary line/);
  });
});

const canRun = isRootLinux() && haveTool('keepalived', ['--version']) && haveTool('redis-server', ['--version']) && haveTool('conntrackd', ['--version']);
const maybe = canRun ? describe : describe.skip;
jest.setTimeout(180_000);

const lines: string[] = [];
const log = (l: string) => lines.push(l);
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface LiveReport { readonly code: number | null; readonly findings: ParsedFinding[]; readonly text: string; readonly ms: number }
/** Not infos: what makes doctor exit non-zero. */
const problems = (r: LiveReport) => r.findings.filter((f) => f.severity !== 'info').map((f) => `${f.severity} [${f.check}] ${f.tenant ?? '-'} ${f.text}`);

maybe('crossvpc doctor --live on gateway members', () => {
  let emu: Emulation;
  let stackDir: string;
  const doctor = (m: GatewayMember): LiveReport => {
    const t0 = Date.now();
    const r = emu.onMember(m, [MEMBER_CLI.script, 'doctor', '--live']);
    const ms = Date.now() - t0;
    let findings: ParsedFinding[] = [];
    try {
      findings = parseFindings(r.stdout).findings;
    } catch (e) {
      throw new Error(`${m.id}: ${(e as Error).message}\nstderr: ${r.stderr}`);
    }
    return { code: r.status, findings, text: r.stdout, ms };
  };
  /** Doctor until `done` holds (a repair takes the member's own loops a few seconds), bounded. */
  const doctorUntil = async (m: GatewayMember, done: (r: LiveReport) => boolean, boundMs = 30_000): Promise<LiveReport> => {
    const t0 = Date.now();
    let r = doctor(m);
    while (!done(r) && Date.now() - t0 < boundMs) {
      await sleep(1000);
      r = doctor(m);
    }
    return r;
  };
  const standby = () => emu.members(0).find((m) => emu.vrrpState(m) === 'BACKUP')!;
  const master = () => emu.liveMaster(0)!;

  beforeAll(async () => {
    stackDir = synthStackDir();
    emu = new Emulation({ stackDir, nodes: 2, log });
    try {
      await emu.start();
    } catch (e) {
      emu.stop();
      throw new Error(`${(e as Error).message}\n${lines.slice(-60).join('\n')}`);
    }
  }, 180_000);

  afterAll(() => emu?.stop());

  test('control: a healthy pair is clean on both members', () => {
    for (const m of emu.members(0)) {
      const r = doctor(m);
      console.log(`${m.id}: doctor --live took ${r.ms} ms\n${r.text}`);
      expect({ member: m.id, problems: problems(r), code: r.code }).toEqual({ member: m.id, problems: [], code: 0 });
      // It did look: the state, the applied version and both tenants' headings are there.
      expect(r.findings.map((f) => `${f.check} ${f.text}`)).toEqual(expect.arrayContaining([`vrrp keepalived: ${emu.vrrpState(m)}.`, `config-version ${emu.documentName(0)}: version 1 applied.`]));
      expect(r.findings.filter((f) => f.check === 'nat-ip').map((f) => [f.tenant, f.text])).toEqual(m.tenants.map((t) => [t.name, `${t.natIp}: the source ${t.destinations.join(' ')} see from ${t.name}.`]));
    }
  });

  test('doctor changed nothing on the members: no file under their /etc, /var/lib or /run is newer than the last doctor run started', () => {
    const m = standby();
    const marker = `${m.root}/doctor-started`;
    execFileSync('touch', [marker]);
    doctor(m);
    const newer = execFileSync('find', [m.root, '-newer', marker, '-type', 'f', '-not', '-name', '*.log', '-not', '-name', 'status', '-not', '-name', 'status.new'], { encoding: 'utf8' }).trim();
    expect(newer).toBe('');
  });

  test('a missing NAT ENI on the standby: nat-eni names alpha and the ENI; terraform apply re-attaches it and the finding is gone', async () => {
    const m = standby();
    const row = m.tenants.find((t) => t.name === 'alpha')!;
    expect(problems(doctor(m))).toEqual([]);
    emu.exec(m.ns, 'ip', ['link', 'del', 'dev', tenantDev(row.vni)]);
    const r = doctor(m);
    console.log(`NAT ENI ${row.eniId} gone:\n${r.text}`);
    expect(r.code).toBe(2);
    const f = r.findings.filter((x) => x.check === 'nat-eni');
    expect(f.map((x) => [x.severity, x.tenant, x.text])).toEqual([['error', 'alpha', `${row.eniId}: NAT ENI not attached (no device has MAC ${row.eniMac.toLowerCase()}).`]]);
    expect(r.findings.filter((x) => x.severity === 'error' && x.tenant !== 'alpha')).toEqual([]);
    // The repair: the apply attaches the ENI again (hot-plug) and the member applies the tenant.
    await emu.apply(stackDir);
    const after = await doctorUntil(m, (x) => x.code === 0);
    expect({ problems: problems(after), code: after.code }).toEqual({ problems: [], code: 0 });
  });

  test('conntrackd stopped on the standby: an error naming the lost sessions; started again, it is gone', async () => {
    const m = standby();
    await emu.stopUnit(m, 'crossvpc-conntrackd.service');
    try {
      const r = doctor(m);
      console.log(`conntrackd stopped on ${m.id}:\n${r.text}`);
      expect(r.code).toBe(2);
      expect(problems(r)).toEqual(['error [conntrackd] - conntrackd: not running: no session survives a failover to this standby.']);
      // Only the stopped one is named: the master's conntrackd runs.
      expect(problems(doctor(master()))).toEqual([]);
    } finally {
      emu.startUnit(m, 'crossvpc-conntrackd.service');
    }
    const after = await doctorUntil(m, (x) => x.code === 0, 10_000);
    expect({ problems: problems(after), code: after.code }).toEqual({ problems: [], code: 0 });
  });

  test('a member on a stale config version: its reconciler stopped, a new version written; doctor reports applied v1 against current v2', async () => {
    const m = standby();
    const other = master();
    const name = emu.documentName(0)!;
    const before = emu.ssmParameter(name)!;
    expect(before.version).toBe(1);
    await emu.stopUnit(m, 'crossvpc-reconcile.service');
    try {
      // Version 2: the same document, one byte longer (a space after the JSON), so the other member applies it unchanged.
      const text = gunzipSync(Buffer.from(before.value, 'base64')).toString('utf8');
      expect(emu.putParameter(name, ssmDocumentValue(`${text} `))).toEqual({ version: 2, changed: true });
      const r = doctor(m);
      console.log(`${m.id} reconciler stopped, document at version 2:\n${r.text}`);
      expect(r.code).toBe(2);
      expect(problems(r)).toEqual([`error [config-version] - ${name}: applied version 1, current version 2: stale (last attempt unchanged: -).`]);
      // The member whose reconciler runs takes version 2 and stays clean.
      const o = await doctorUntil(other, (x) => x.findings.some((f) => f.text === `${name}: version 2 applied.`));
      expect({ problems: problems(o), code: o.code, applied: o.findings.some((f) => f.text === `${name}: version 2 applied.`) }).toEqual({ problems: [], code: 0, applied: true });
    } finally {
      emu.startUnit(m, 'crossvpc-reconcile.service');
    }
    const after = await doctorUntil(m, (x) => x.code === 0);
    expect({ problems: problems(after), code: after.code }).toEqual({ problems: [], code: 0 });
    expect(emu.memberStatus(m)?.version).toBe(2);
  });


  test("a stranger speaking conntrackd's sync protocol to the standby: not_from_peer moving is a warning; once it stops, an info", async () => {
    const m = standby();
    const drops = (r: LiveReport) => r.findings.filter((f) => f.check === 'drops' && f.text.startsWith('not_from_peer:')).map((f) => f.severity);
    expect(drops(doctor(m))).toEqual([]);
    // A cluster node (not the peer) sends to the sync port, 10 datagrams a second for 4 s; doctor samples meanwhile.
    const loop = `for i in $(seq 40); do echo sync >/dev/udp/${m.env.SELF_IP}/${CONNTRACKD_SYNC_PORT}; sleep 0.1; done`;
    const stranger = emu.okAsync(emu.nodeNs(0), 'bash', ['-c', loop], 10_000);
    await sleep(1000);
    const r = doctor(m);
    console.log(`node ${emu.nodeIp(0)} sends to ${m.env.SELF_IP}:${CONNTRACKD_SYNC_PORT}:\n${r.text}`);
    expect(await stranger).toBe(true);
    expect({ drops: drops(r), code: r.code }).toEqual({ drops: ['warning'], code: 1 });
    const after = doctor(m);
    expect({ drops: drops(after), code: after.code }).toEqual({ drops: ['info'], code: 0 });
  });

  test("a tenant security group that drops the NAT IP: the master names alpha's unanswered connections and the NAT IP to allow; beta stays clean", async () => {
    const m = master();
    const natIp = m.tenants.find((t) => t.name === 'alpha')!.natIp;
    const service = emu.tenantService('alpha')!;
    const pod = emu.pods().find((p) => p.tenant === 'alpha')!;
    const betaPod = emu.pods().find((p) => p.tenant === 'beta')!;
    // Control: the probe works before the fault.
    expect(emu.redis(pod, service.address, ['ping'])).toBe('PONG');
    tenantSecurityGroupDrops(emu, 'alpha', natIp, true);
    try {
      for (let i = 0; i < 3; i++) expect(emu.redis(pod, service.address, ['ping'], 1)).toBe('');
      expect(emu.redis(betaPod, emu.probeAddress('beta'), ['ping'])).toBe('PONG');
      const r = doctor(m);
      console.log(`security group drops ${natIp}:\n${r.text}`);
      expect(r.code).toBe(1);
      const unanswered = r.findings.filter((f) => f.check === 'unanswered');
      expect(unanswered.map((f) => [f.severity, f.tenant])).toEqual([['warning', 'alpha']]);
      expect(unanswered[0].text).toMatch(new RegExp(`^${service.address} port 6379: [3-9] connection\\(s\\) from NAT IP ${natIp.replace(/\./g, '\\.')} unanswered`));
      expect(unanswered[0].fix).toContain(`allow ${natIp}/32 on ${service.address}`);
      expect(problems(r).filter((p) => !p.includes('[unanswered] alpha'))).toEqual([]);
      // The standby carries no traffic: nothing to say.
      expect(problems(doctor(standby()))).toEqual([]);
    } finally {
      tenantSecurityGroupDrops(emu, 'alpha', natIp, false);
    }
    // Repaired: the same probe is answered again. (Last in this file: the unanswered entries stay until conntrack's SYN_SENT timeout, 120 s.)
    expect(emu.redis(pod, service.address, ['ping'])).toBe('PONG');
  });
});
