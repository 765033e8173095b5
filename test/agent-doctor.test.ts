/**
 * `crossvpc doctor --live` on a node, without root: the pure checks (facts -> findings), each
 * fault against the healthy control that lacks it, the command line and its defaults. The
 * gatherer reads a real node in test/agent.oci.test.ts (inside the agent container).
 */
import { AgentConfig, parseConfig, tunnelDev } from '../agent/config';
import { agentArgsOfPid1, formatLiveReport, LiveDoctorReport, LiveDoctorUsageError, parseLiveDoctorArgs } from '../agent/doctor';
import { NodeFacts, nodeFindings } from '../agent/doctor-checks';
import { parseMetricsText } from '../agent/doctor-host';
import { exitCodeOf, Finding, parseFindings } from '../lib/contract';
import { AGENT_CONFIG_RAW as RAW } from './agent-fixtures';

const NODE = '10.0.2.10';
const config = (over: Partial<typeof RAW> = {}): AgentConfig => parseConfig(JSON.stringify({ ...RAW, ...over }));

/** What a healthy node looks like to the gatherer. */
function healthy(c: AgentConfig = config()): NodeFacts {
  return {
    nodeIp: NODE,
    host: {
      links: c.tenants.map((t) => ({ name: tunnelDev(t.vni), kind: c.tunnel, id: t.vni, remote: t.haVip, local: NODE, port: c.tunnel === 'vxlan' ? c.vxlanPort : undefined, mtu: c.mtu, up: true })),
      rules: [{ priority: 99, fwmark: 0, fwmask: 0xff000000, table: 'main' }, ...c.tenants.map((t) => ({ priority: 100, fwmark: t.table, table: String(t.table) }))],
      routes: new Map(c.tenants.map((t) => [t.table, [...t.cidrs]])),
      neighbours: new Map(c.tunnel === 'vxlan' ? c.tenants.map((t) => [`${tunnelDev(t.vni)} ${c.nextHop}`, t.gatewayMac]) : []),
    },
    fdb: new Map(c.tunnel === 'vxlan' ? c.tenants.map((t) => [tunnelDev(t.vni), [t.haVip]]) : []),
    underlay: new Map(c.tenants.map((t) => [t.haVip, { dev: 'eth0', via: '10.0.2.1', neighbourState: 'REACHABLE' }])),
    otherRoutes: [{ table: 'main', type: 'unicast', dst: '10.0.2.0/24', dev: 'eth0' }, { table: 'local', type: 'local', dst: NODE, dev: 'eth0' }, { table: 'main', type: 'unicast', dst: '10.0.2.77', dev: 'eni1' }],
    nodeTable: { present: true, counters: new Map(['pod_spoof', 'tunnel_spoof', 'tunnel_denied', 'return_denied'].map((n) => [n, { packets: 0, bytes: 0 }])) },
    agent: {
      url: `http://${NODE}:9740`,
      health: { status: 200, body: 'ok\n' },
      metrics: parseMetricsText('# HELP x\ncrossvpc_agent_last_pod_event_age_seconds 12.5\ncrossvpc_agent_last_tunnel_check_age_seconds 12\ncrossvpc_agent_errors_total{op="apply"} 0\ncrossvpc_agent_errors_total{op="tunnel_step"} 0\n'),
    },
  };
}

const link = (f: any, name = 'cx100') => f.host.links.find((l: any) => l.name === name);
const problems = (fs: Finding[]) => fs.filter((f) => f.severity !== 'info');
const brief = (f: Finding) => `${f.severity} ${f.check} ${f.tenant ?? '-'} ${f.subject ?? '-'}`;

describe('crossvpc doctor --live on a node: checks', () => {
  test('control: a healthy node has infos only (the agent answered, the drop counters), exit 0', () => {
    const fs = nodeFindings(config(), healthy());
    expect(fs.map(brief)).toEqual(['info node-drops - nft table inet crossvpc_node', `info agent-health - http://${NODE}:9740/healthz`, `info agent-sync - http://${NODE}:9740`, `info agent-watch - http://${NODE}:9740`]);
    expect(fs.find((f) => f.check === 'agent-sync')?.what).toBe('the agent last checked tunnels, routes and rules 12 s ago (every 30 s): drift found now is repaired within about 18 s.');
    expect(exitCodeOf(fs)).toBe(0);
    expect(fs.find((f) => f.check === 'node-drops')?.what).toBe('drops by reason: pod_spoof 0, tunnel_spoof 0, tunnel_denied 0, return_denied 0 packets since the table was last built.');
  });

  test('a GRE node needs no neighbour or fdb entries: clean', () => {
    const c = config({ tunnel: 'gre' });
    expect(problems(nodeFindings(c, healthy(c)))).toEqual([]);
  });

  type Fault = [string, (f: any) => void, string[]];
  const faults: Fault[] = [
    ['tunnel device down', (f) => (link(f).up = false), ['error tunnel-up alpha cx100']],
    ['tunnel device missing', (f) => (f.host.links = f.host.links.filter((l: any) => l.name !== 'cx100')), ['error tunnel-device alpha cx100']],
    ['tunnel to the wrong remote', (f) => (link(f).remote = '10.0.1.9'), ['error tunnel-device alpha cx100']],
    ['tunnel with the wrong local address', (f) => (link(f, 'cx200').local = '10.0.2.11'), ['error tunnel-device beta cx200']],
    ['tunnel MTU above the ConfigMap\'s', (f) => (link(f).mtu = 9001), ['error tunnel-mtu alpha cx100']],
    ['tunnel MTU below it', (f) => (link(f).mtu = 1500), ['warning tunnel-mtu alpha cx100']],
    ['gateway neighbour missing', (f) => f.host.neighbours.delete('cx100 169.254.0.1'), ['error gateway-neighbour alpha cx100']],
    ['gateway neighbour with another MAC', (f) => f.host.neighbours.set('cx200 169.254.0.1', '0a:00:00:00:64:01'), ['error gateway-neighbour beta cx200']],
    ['no fdb entry toward the HaVip', (f) => f.fdb.set('cx100', []), ['error tunnel-fdb alpha cx100']],
    ['fwmark rule missing', (f) => (f.host.rules = f.host.rules.filter((r: any) => r.fwmark !== 0x1000064)), ['error tenant-rule alpha cx100']],
    ['table route missing', (f) => f.host.routes.set(0x10000c8, ['10.50.0.0/16']), ['error tenant-route beta cx200']],
    ['table route not in the ConfigMap', (f) => f.host.routes.get(0x1000064).push('192.168.0.0/16'), ['warning tenant-route alpha cx100']],
    ['no route to the HaVip', (f) => f.underlay.set('10.0.1.1', { error: 'RTNETLINK answers: Network is unreachable' }), ['error havip-route alpha cx100']],
    ['the HaVip routed into a tunnel', (f) => f.underlay.set('10.0.1.2', { dev: 'cx100' }), ['error havip-route beta cx200']],
    ['next hop toward the HaVip FAILED', (f) => (f.underlay.get('10.0.1.1').neighbourState = 'FAILED'), ['warning havip-neighbour alpha cx100']],
    ['unmarked-packets rule missing', (f) => (f.host.rules = f.host.rules.filter((r: any) => r.priority !== 99)), ['warning node-rules - ip rules']],
    ['node table absent', (f) => (f.nodeTable = { present: false }), ['error node-table - nft table inet crossvpc_node']],
    ['node table unreadable', (f) => (f.nodeTable = { error: 'Operation not permitted' }), ['error node-table - nft table inet crossvpc_node']],
    ['a counter missing', (f) => f.nodeTable.counters.delete('tunnel_denied'), ['warning node-table - nft table inet crossvpc_node']],
    ['spoofed packets dropped', (f) => f.nodeTable.counters.set('pod_spoof', { packets: 3, bytes: 180 }), ['warning node-drops - counter pod_spoof']],
    ['tunnel packets from pods dropped', (f) => f.nodeTable.counters.set('tunnel_spoof', { packets: 1, bytes: 90 }), ['warning node-drops - counter tunnel_spoof']],
    ['another tenant\'s tunnel tried', (f) => f.nodeTable.counters.set('tunnel_denied', { packets: 2, bytes: 120 }), ['warning node-drops - counter tunnel_denied']],
    ['docker0 on a tenant range', (f) => f.otherRoutes.push({ table: 'main', type: 'unicast', dst: '172.17.0.0/16', dev: 'docker0' }), ['warning container-range beta docker0']],
    ['a node address inside a tenant range', (f) => f.otherRoutes.push({ table: 'local', type: 'local', dst: '10.50.3.1', dev: 'br-1a2b' }), ['warning container-range alpha br-1a2b', 'warning container-range beta br-1a2b']],
    ['the agent does not answer', (f) => (f.agent = { url: f.agent.url, error: 'connect ECONNREFUSED 10.0.2.10:9740' }), [`error agent-health - http://${NODE}:9740`]],
    ['the agent is not ready', (f) => (f.agent.health = { status: 503, body: 'not ready: no pod snapshot yet\n' }), [`error agent-health - http://${NODE}:9740/healthz`]],
    ['the agent\'s periodic check is stuck', (f) => f.agent.metrics.get('crossvpc_agent_last_tunnel_check_age_seconds').set('', 200), [`warning agent-sync - http://${NODE}:9740`]],
    ['the agent address is unknown', (f) => (f.agent = undefined), ['warning agent-health - agent']],
  ];

  test.each(faults)('%s: named (check, tenant, device), absent from the control', (_name, mutate, expected) => {
    const facts = healthy();
    const control = problems(nodeFindings(config(), facts)).map(brief);
    for (const e of expected) expect(control).not.toContain(e);
    mutate(facts);
    const got = problems(nodeFindings(config(), facts));
    expect(got.map(brief)).toEqual(expected);
    for (const f of got) {
      expect(f.what).toMatch(/\.$/);
      expect(f.fix.length).toBeGreaterThan(10);
    }
    expect(exitCodeOf(got)).toBe(expected.some((e) => e.startsWith('error')) ? 2 : 1);
  });

  test('a downed tunnel device: the error names tenant, VNI, device, remote and both fixes', () => {
    const facts = healthy();
    link(facts).up = false;
    const [f] = problems(nodeFindings(config(), facts));
    expect(f).toEqual({
      severity: 'error', check: 'tunnel-up', tenant: 'alpha', subject: 'cx100',
      what: 'the device is down (VNI 100, remote 10.0.1.1): pods of tenant alpha on this node reach nothing.',
      fix: 'the agent repairs this at its next tunnel check (every 30 s), with the routes and gateway neighbour the kernel removed when it went down; at once: ip link set cx100 up. Then restore those as the findings below say. If it is back after that, look at the agent\'s log for "exec failed" and at whatever else manages links on the node (NetworkManager, systemd-networkd, another CNI): exclude cx* devices from it.',
    });
  });

  test('a device down as the kernel leaves it (its routes and neighbour gone): three errors, the consequences say why', () => {
    const facts = healthy() as any;
    link(facts).up = false;
    facts.host.routes.delete(0x1000064);
    facts.host.neighbours.delete('cx100 169.254.0.1');
    const got = problems(nodeFindings(config(), facts));
    expect(got.map(brief)).toEqual(['error tunnel-up alpha cx100', 'error gateway-neighbour alpha cx100', 'error tenant-route alpha cx100']);
    expect(got[1].what).toContain('has no permanent neighbour entry (the kernel removed it when cx100 went down)');
    expect(got[2].what).toBe('table 16777316 lacks 10.50.0.0/16 (the kernel removed it when cx100 went down): pods of alpha cannot reach it.');
    // Control: the same gaps on an up device carry no such note.
    link(facts).up = true;
    expect(problems(nodeFindings(config(), facts)).map((f) => f.what).join(' ')).not.toContain('went down');
  });

  test('a wrong remote says which field differs and what it should be', () => {
    const facts = healthy();
    link(facts).remote = '10.0.1.9';
    link(facts).id = 7;
    expect(problems(nodeFindings(config(), facts))[0].what).toMatch(/^not tenant alpha's tunnel: VNI 7 \(want 100\), remote 10.0.1.9 \(want 10.0.1.1\);/);
  });

  test('an old pod event is an info, never a warning: a quiet node has none between pod changes', () => {
    const facts = healthy() as any;
    facts.agent.metrics.get('crossvpc_agent_last_pod_event_age_seconds').set('', 7200);
    const fs = nodeFindings(config(), facts);
    expect(problems(fs)).toEqual([]);
    expect(fs.find((f) => f.check === 'agent-watch')?.what).toBe('the pod source last delivered anything 7200 s ago (a list, a watch event or bookmark).');
  });

  test('errors since start are an info naming each operation; return_denied drops are no warning', () => {
    const facts = healthy() as any;
    facts.agent.metrics.get('crossvpc_agent_errors_total').set('op="tunnel_step"', 2);
    facts.nodeTable.counters.set('return_denied', { packets: 4, bytes: 240 });
    const fs = nodeFindings(config(), facts);
    expect(problems(fs)).toEqual([]);
    expect(fs.find((f) => f.check === 'agent-errors')?.what).toBe('errors since the agent started: tunnel_step 2.');
  });
});

describe('crossvpc doctor --live on a node: command line and report', () => {
  const cmdline = ['node', 'dist/agent/main.js', '--config', '/etc/crossvpc/tenants.json', '--pods', 'kube', '--metrics-addr', ':9801', ''].join('\0');
  const env = { NODE_IP: '10.0.2.10', NODE_NAME: 'n1' };

  test('inside the agent container its own command line gives config, node IP and metrics address', () => {
    const agent = agentArgsOfPid1(cmdline, env);
    expect(agent?.config).toBe('/etc/crossvpc/tenants.json');
    expect(parseLiveDoctorArgs(['--live'], env, agent)).toEqual({ config: '/etc/crossvpc/tenants.json', nodeIp: '10.0.2.10', agentUrl: 'http://10.0.2.10:9801', json: false });
    // Control: PID 1 that is not the agent (a node's systemd) gives nothing; the defaults apply.
    expect(agentArgsOfPid1('/sbin/init\0splash\0', env)).toBeUndefined();
    expect(parseLiveDoctorArgs(['--live', '--json'], env, undefined)).toEqual({ config: '/etc/crossvpc/tenants.json', nodeIp: '10.0.2.10', agentUrl: 'http://10.0.2.10:9740', json: true });
  });

  test('flags win over the agent\'s arguments; without a node IP the agent is not checked', () => {
    const agent = agentArgsOfPid1(cmdline, env);
    expect(parseLiveDoctorArgs(['--live', '--config', '/tmp/t.json', '--metrics-addr', '127.0.0.1:9000'], env, agent)).toMatchObject({ config: '/tmp/t.json', agentUrl: 'http://127.0.0.1:9000' });
    expect(parseLiveDoctorArgs(['--live'], {}, undefined)).toEqual({ config: '/etc/crossvpc/tenants.json', nodeIp: undefined, agentUrl: undefined, json: false });
    expect(parseLiveDoctorArgs(['--live', '-h'], {}, undefined)).toBe('help');
  });

  test.each([
    [['--live', 'cdktf.out/stacks/x'], "unexpected argument 'cdktf.out/stacks/x': --live reads the host, not a stack dir"],
    [['--live', '--metrics-addr', ':9740'], "--metrics-addr: got ':9740', expected ip:port (no node IP known for :port), e.g. 10.0.1.10:9740"],
    [['--live', '--node-ip', 'node1'], "--node-ip: got 'node1', expected an IPv4 address"],
    [['--live', '--bogus'], "unknown option '--bogus'"],
    [['--json'], '--live missing'],
  ])('bad command line %j: %s', (args, message) => {
    expect(() => parseLiveDoctorArgs(args, {}, undefined)).toThrow(new LiveDoctorUsageError(message));
  });

  test('the text report: a heading per tenant with VNI and device, node-wide findings, the summary', () => {
    const facts = healthy();
    link(facts).up = false;
    const c = config();
    const findings = nodeFindings(c, facts);
    const report: LiveDoctorReport = { node: NODE, config: '/etc/crossvpc/tenants.json', agent: `http://${NODE}:9740`, tenants: c.tenants.map((t) => ({ name: t.name, vni: t.vni, device: tunnelDev(t.vni) })), findings, exitCode: exitCodeOf(findings), elapsedMs: 321 };
    const lines = formatLiveReport(report).split('\n');
    expect(lines[0]).toBe(`crossvpc doctor --live: node ${NODE}, config /etc/crossvpc/tenants.json, agent http://${NODE}:9740 (321 ms)`);
    expect(lines[1]).toBe('tenant alpha (VNI 100, cx100)');
    expect(lines[2]).toMatch(/^  error   \[tunnel-up\] cx100: the device is down \(VNI 100, remote 10\.0\.1\.1\): .* Fix: the agent repairs this/);
    expect(lines[3]).toBe('node');
    expect(lines.at(-1)).toBe('summary: 1 error, 0 warnings, 4 infos (errors: this node is broken; exit 2)');
    // One reader serves the static doctor, the members' and the nodes' live doctor.
    const parsed = parseFindings(formatLiveReport(report));
    expect(parsed.exitCode).toBe(2);
    expect(parsed.findings.map((f) => `${f.severity} ${f.check} ${f.tenant ?? '-'}`)).toEqual(findings.map((f) => `${f.severity} ${f.check} ${f.tenant ?? '-'}`));
    expect(parsed.findings[0].text).toBe(`cx100: ${findings[0].what}`);
  });
});
