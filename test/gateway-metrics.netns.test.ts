/**
 * crossvpc-metrics against the real gateway ruleset with real traffic through it: a gateway
 * namespace whose tunnel and tenant devices are veths (named as the ruleset expects), two
 * tenants with identical addressing, and node_exporter serving the textfile on the
 * function-side address. promtool validates the output. Needs root on Linux with ip, nft,
 * conntrack, promtool and prometheus-node-exporter; skipped otherwise, a failure under CI=true.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { haveTool, isRootLinux, removeNetnsRun } from './helpers';
import { buildGatewayMemberSpec, renderGatewayFiles, renderGatewayRuleset, renderMemberDocument, twoTenantModel } from './render-fixtures';
import { CONF_DIR, GATEWAY_METRIC_PREFIX, GATEWAY_METRICS, GATEWAY_TEXTFILE, GATEWAY_TEXTFILE_SUBDIR, RUN_DIR, STATE_DIR, tenantDev, tunnelDev } from '../lib/contract';

const capable = isRootLinux() && haveTool('nft', ['--version']) && haveTool('conntrack', ['--version']) && haveTool('promtool', ['--version']) && haveTool('prometheus-node-exporter', ['--version']);

const P = `gwm${process.pid % 100000}`;
const NS = { gw: `${P}g`, podA: `${P}a`, podB: `${P}b`, tenA: `${P}x`, tenB: `${P}y`, scraper: `${P}s` };
const PORT = 19100 + (process.pid % 500);
const SELF_IP = '10.0.2.10';
const TENANT_HOST = '172.16.0.9';
const NAT_IP = '172.16.255.254';
const POD_IP = { alpha: '10.0.1.10', beta: '10.0.1.11' };
const ECHO_PORT = 7000;

const model = twoTenantModel();
const binding = (i: number) => ({ natIp: NAT_IP, eniId: `eni-t${i}`, eniMac: `02:00:00:00:0${i}:01`, eniIp: `172.16.255.1${i}`, subnetCidr: '172.16.0.0/16', routerIp: '172.16.0.1' });
const spec = buildGatewayMemberSpec(model, 0, 'a', {
  selfIp: SELF_IP, peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: '10.0.2.254',
  tenants: { alpha: binding(1), beta: binding(2) },
}, { advertIntervalSec: 0.5, connLimitPerTenant: 1000, configParameter: '/crossvpc/pair0-test', configPollSec: 5, metricsPort: PORT, metrics: true });

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns: string, ...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
const sysctl = (ns: string, key: string, value: string) => inNs(ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`);
const MOUNT_WRAPPER = `R=$1; shift; mount --bind "$R/etc" ${CONF_DIR} && mount --bind "$R/state" ${STATE_DIR} && mount --bind "$R/run" ${RUN_DIR} && exec "$@"`;

/** A veth from the gateway namespace (named gwDev) to another namespace (eth0). */
function link(gwDev: string, ns: string, gwAddr: string | undefined, addr: string, routes: string[][]): void {
  ip('link', 'add', gwDev, 'netns', NS.gw, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  inNs(NS.gw, 'ip', 'link', 'set', gwDev, 'up');
  if (gwAddr) inNs(NS.gw, 'ip', 'addr', 'add', gwAddr, 'dev', gwDev);
  inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
  inNs(ns, 'ip', 'addr', 'add', addr, 'dev', 'eth0');
  for (const r of routes) inNs(ns, 'ip', 'route', 'add', ...r, 'dev', 'eth0');
}

/** Sends `count` datagrams of 200 bytes from a pod to the tenant host's echo server; returns the replies. */
function udpFlow(pod: string, count: number): number {
  const prog = `const s=require('dgram').createSocket('udp4');let n=0;s.on('message',()=>n++);s.bind(0,()=>{for(let i=0;i<${count};i++)s.send(Buffer.alloc(200),${ECHO_PORT},'${TENANT_HOST}')});setTimeout(()=>{console.log(n);process.exit(0)},1500)`;
  return Number(inNs(pod, process.execPath, '-e', prog).trim());
}

type Series = Map<string, number>;
function parse(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
const tenantSeries = (s: Series, metric: string, tenant: string, vni: number, dir: string) =>
  s.get(`${GATEWAY_METRIC_PREFIX}${metric}{pair="0",member="a",tenant="${tenant}",vni="${vni}",direction="${dir}"}`);
const plain = (s: Series, metric: string, labels = '') => s.get(`${GATEWAY_METRIC_PREFIX}${metric}{pair="0",member="a"${labels}}`);

(capable ? describe : describe.skip)('gateway metrics against a real ruleset and real traffic (netns)', () => {
  let dir: string;
  const procs: ChildProcess[] = [];

  /** Runs crossvpc-metrics once inside the gateway namespace and its own mounts; returns the textfile. */
  /** One pass of crossvpc-metrics; `breakConntrack` bind-mounts /bin/false over conntrack for it (a failed count). */
  function collect(breakConntrack = false): string {
    const wrapper = breakConntrack ? `mount --bind /bin/false "$(command -v conntrack)" && ${MOUNT_WRAPPER}` : MOUNT_WRAPPER;
    execFileSync('ip', ['netns', 'exec', NS.gw, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', wrapper, 'x', dir, `${CONF_DIR}/bin/crossvpc-metrics`, 'once'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return readFileSync(join(dir, 'run', GATEWAY_TEXTFILE_SUBDIR, GATEWAY_TEXTFILE), 'utf8');
  }
  function promtoolAccepts(text: string): void {
    const f = join(dir, `check-${Date.now()}.prom`);
    writeFileSync(f, text);
    execFileSync('sh', ['-c', `promtool check metrics < "${f}"`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crossvpc-gwm-'));
    for (const d of [CONF_DIR, STATE_DIR, RUN_DIR]) mkdirSync(d, { recursive: true }); // mount points (the emulation's too)
    for (const f of renderGatewayFiles(spec, { conntrackMax: 262144 })) {
      if (!f.path.startsWith(`${CONF_DIR}/`)) continue;
      const p = join(dir, 'etc', f.path.slice(CONF_DIR.length + 1));
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.content, { mode: parseInt(f.permissions, 8) });
    }
    mkdirSync(join(dir, 'state'), { recursive: true });
    mkdirSync(join(dir, 'run'), { recursive: true });
    writeFileSync(join(dir, 'state/tenants.tsv'), renderMemberDocument(spec).tenants);
    writeFileSync(join(dir, 'state/status'), 'version=7\nsha256=abc\napplied_at=1700000000\nresult=applied\npending=-\nerror=-\n');
    writeFileSync(join(dir, 'run/vrrp-state'), 'MASTER\n');
    writeFileSync(join(dir, 'run/failovers'), '2\n');
    writeFileSync(join(dir, 'run/ip-moves'), 'calls=5 failures=1\n');
    writeFileSync(join(dir, 'ruleset.nft'), renderGatewayRuleset(spec));

    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    inNs(NS.gw, 'ip', 'link', 'set', 'lo', 'up');
    for (const k of ['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter']) sysctl(NS.gw, k, k.endsWith('forward') ? '1' : '0');
    link('fn0', NS.scraper, `${SELF_IP}/24`, '10.0.2.99/24', []);
    for (const [t, pod, ten] of [['alpha', NS.podA, NS.tenA], ['beta', NS.podB, NS.tenB]] as const) {
      const vni = t === 'alpha' ? 1001 : 1002;
      const table = String(spec.tenants.find((x) => x.vni === vni)!.table);
      // The pod side: its tunnel device, as the gateway sees it; the gateway's own address there is 10.0.1.1.
      link(tunnelDev(vni), pod, '10.0.1.1/32', `${POD_IP[t]}/24`, [['172.16.0.0/16', 'via', '10.0.1.1'], [`${SELF_IP}/32`, 'via', '10.0.1.1']]);
      // The tenant side: identical addressing in both tenants.
      link(tenantDev(vni), ten, `${NAT_IP}/16`, `${TENANT_HOST}/16`, []);
      inNs(NS.gw, 'ip', 'rule', 'add', 'fwmark', table, 'lookup', table, 'pref', '100');
      inNs(NS.gw, 'ip', 'route', 'add', '172.16.0.0/16', 'dev', tenantDev(vni), 'table', table);
      inNs(NS.gw, 'ip', 'route', 'add', POD_IP[t], 'dev', tunnelDev(vni), 'table', table);
      inNs(NS.gw, 'ip', 'route', 'add', POD_IP[t], 'dev', tunnelDev(vni));
      const echo = spawn('ip', ['netns', 'exec', ten, process.execPath, '-e',
        `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(${ECHO_PORT},'${TENANT_HOST}');setTimeout(()=>process.exit(0),120000)`], { stdio: 'ignore', detached: true });
      procs.push(echo);
    }
    inNs(NS.gw, 'nft', '-f', join(dir, 'ruleset.nft'));
  }, 60_000);

  afterAll(() => {
    removeNetnsRun(procs, Object.values(NS));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('promtool accepts the textfile; the static sources read as written', () => {
    const text = collect();
    promtoolAccepts(text);
    const s = parse(text);
    expect(plain(s, 'vrrp_state', ',state="MASTER"')).toBe(1);
    expect(plain(s, 'vrrp_state', ',state="BACKUP"')).toBe(0);
    expect(plain(s, 'failovers_total')).toBe(2);
    expect(plain(s, 'config_version')).toBe(7);
    expect(plain(s, 'reconcile_result', ',result="applied"')).toBe(1);
    expect(plain(s, 'reconcile_result', ',result="apply_failed"')).toBe(0);
    expect(plain(s, 'ip_move_calls_total')).toBe(5);
    expect(plain(s, 'ip_move_failures_total')).toBe(1);
    expect(plain(s, 'conntrackd_up')).toBe(0); // no conntrackd runs here
    expect(s.get(`${GATEWAY_METRIC_PREFIX}conntrack_limit_entries{pair="0",member="a",tenant="alpha",vni="1001"}`)).toBe(1000);
    expect(text).toMatch(/^# HELP crossvpc_gateway_tenant_bytes_total /m);
    expect(text).toMatch(/^# TYPE crossvpc_gateway_tenant_bytes_total counter$/m);
  }, 30_000);

  test('the script writes exactly the contract: every family, with its type and help, and no series outside it', () => {
    const text = collect();
    const declared = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]): [string, string] => [name, type]);
    expect(new Map(declared)).toEqual(new Map(Object.entries(GATEWAY_METRICS).map(([k, m]) => [GATEWAY_METRIC_PREFIX + k, m.type])));
    for (const [k, m] of Object.entries(GATEWAY_METRICS)) expect(text).toContain(`# HELP ${GATEWAY_METRIC_PREFIX}${k} ${m.help}\n`);
    const sampled = new Set([...text.matchAll(/^([a-z_]+)\{/gm)].map(([, name]) => name));
    expect(sampled.size).toBeGreaterThan(10);
    for (const name of sampled) expect(Object.keys(GATEWAY_METRICS).map((k) => GATEWAY_METRIC_PREFIX + k)).toContain(name);
  }, 30_000);

  test('a failed conntrack count leaves the per-zone series absent, never a false 0', () => {
    const entries = (text: string) => text.split('\n').filter((l) => l.startsWith(`${GATEWAY_METRIC_PREFIX}conntrack_entries{`));
    // Control: with conntrack working, every tenant has the series.
    expect(entries(collect()).length).toBe(2);
    const broken = collect(true);
    expect(entries(broken)).toEqual([]);
    expect(broken).toMatch(/^# TYPE crossvpc_gateway_conntrack_entries gauge$/m);
    promtoolAccepts(broken);
  }, 30_000);

  test("a tenant's byte counters grow with its traffic, and nobody else's", () => {
    const before = parse(collect());
    expect(udpFlow(NS.podA, 10)).toBe(10);
    const mid = parse(collect());
    for (const dir of ['to_tenant', 'to_pods']) {
      expect(tenantSeries(mid, 'tenant_bytes_total', 'alpha', 1001, dir)! - tenantSeries(before, 'tenant_bytes_total', 'alpha', 1001, dir)!).toBeGreaterThanOrEqual(10 * 228);
      expect(tenantSeries(mid, 'tenant_packets_total', 'alpha', 1001, dir)! - tenantSeries(before, 'tenant_packets_total', 'alpha', 1001, dir)!).toBe(10);
      expect(tenantSeries(mid, 'tenant_bytes_total', 'beta', 1002, dir)).toBe(tenantSeries(before, 'tenant_bytes_total', 'beta', 1002, dir));
    }
    expect(mid.get(`${GATEWAY_METRIC_PREFIX}conntrack_entries{pair="0",member="a",tenant="alpha",vni="1001"}`)).toBeGreaterThanOrEqual(1);
    expect(mid.get(`${GATEWAY_METRIC_PREFIX}conntrack_entries{pair="0",member="a",tenant="beta",vni="1002"}`)).toBe(0);
    expect(udpFlow(NS.podB, 4)).toBe(4);
    const after = parse(collect());
    expect(tenantSeries(after, 'tenant_packets_total', 'beta', 1002, 'to_tenant')! - tenantSeries(mid, 'tenant_packets_total', 'beta', 1002, 'to_tenant')!).toBe(4);
    expect(tenantSeries(after, 'tenant_packets_total', 'alpha', 1001, 'to_tenant')).toBe(tenantSeries(mid, 'tenant_packets_total', 'alpha', 1001, 'to_tenant'));
    promtoolAccepts(readFileSync(join(dir, 'run', GATEWAY_TEXTFILE_SUBDIR, GATEWAY_TEXTFILE), 'utf8'));
  }, 30_000);

  test('node_exporter serves the textfile on the function-side address; a pod cannot reach the port (dropped as to_gateway)', async () => {
    const exporter = spawn('ip', ['netns', 'exec', NS.gw, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT_WRAPPER, 'x', dir, `${CONF_DIR}/bin/crossvpc-metrics`, 'serve'], { stdio: 'ignore', detached: true });
    procs.push(exporter);
    const url = `http://${SELF_IP}:${PORT}/metrics`;
    let body = '';
    for (let i = 0; i < 50 && !body.includes(`${GATEWAY_METRIC_PREFIX}tenant_bytes_total`); i++) {
      await new Promise((r) => setTimeout(r, 200));
      try {
        body = inNs(NS.scraper, 'curl', '-sf', '-m', '2', url);
      } catch {
        body = '';
      }
    }
    expect(body).toContain(`${GATEWAY_METRIC_PREFIX}tenant_bytes_total{`);
    expect(body).toContain(`${GATEWAY_METRIC_PREFIX}dropped_packets_total{`);
    const drops = (s: Series) => plain(s, 'dropped_packets_total', ',reason="to_gateway"')!;
    const before = drops(parse(collect()));
    expect(() => inNs(NS.podA, 'curl', '-sf', '-m', '2', url)).toThrow();
    expect(drops(parse(collect()))).toBeGreaterThan(before);
  }, 60_000);

  test("internet egress: alpha's pods reach a public host from the NAT IP; a private host, and beta (no egress), are dropped as unmatched even with a route", () => {
    const INTERNET = '203.0.113.9';
    const PRIVATE = '192.168.7.7';
    const tableOf = (vni: number) => String(spec.tenants.find((x) => x.vni === vni)!.table);
    for (const [vni, ten, pod] of [[1001, NS.tenA, NS.podA], [1002, NS.tenB, NS.podB]] as const) {
      // alpha's table defaults to its ENI as crossvpc-apply does; beta gets the same route, so
      // only the ruleset stands between beta's pods and the internet.
      inNs(NS.gw, 'ip', 'route', 'replace', 'default', 'dev', tenantDev(vni), 'table', tableOf(vni));
      for (const host of [INTERNET, PRIVATE]) {
        inNs(ten, 'ip', 'addr', 'add', `${host}/32`, 'dev', 'eth0');
        inNs(pod, 'ip', 'route', 'add', `${host}/32`, 'via', '10.0.1.1', 'dev', 'eth0');
      }
      procs.push(spawn('ip', ['netns', 'exec', ten, process.execPath, '-e',
        // One socket per address, so each answers from the address it was asked on.
        `for(const a of ['${INTERNET}','${PRIVATE}']){const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(r.address,r.port,r.address));s.bind(${ECHO_PORT + 1},a)}setTimeout(()=>process.exit(0),60000)`], { stdio: 'ignore', detached: true }));
    }
    /** One datagram to host: what the host saw as the source, or '' without an answer. */
    const probe = (pod: string, host: string) =>
      inNs(pod, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.bind(0,()=>{const t=setInterval(()=>s.send('x',${ECHO_PORT + 1},'${host}'),100);setTimeout(()=>{clearInterval(t);console.log('');process.exit(0)},1500)})`).trim();
    const unmatched = () => plain(parse(collect()), 'dropped_packets_total', ',reason="unmatched"')!;
    expect(probe(NS.podA, INTERNET)).toBe(NAT_IP); // the public host sees the tenant's NAT IP
    const before = unmatched();
    expect(probe(NS.podA, PRIVATE)).toBe(''); // private: never the default policy
    expect(probe(NS.podB, INTERNET)).toBe(''); // beta has no egress, route or not
    expect(unmatched()).toBeGreaterThanOrEqual(before + 2);
  }, 60_000);
});
