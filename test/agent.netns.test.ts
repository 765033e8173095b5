/**
 * The real agent in network namespaces: node, pod, gateway and tenant host. Proves the
 * data plane end to end (mark → policy route → VXLAN → gateway → SNAT'd reply), the
 * ≤1 s event-to-rule latency, spoof protection, and restart idempotency.
 * Needs root on Linux with ip/nft; skipped otherwise, except under CI where that is a failure.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, resolve } from 'path';

const ROOT = resolve(__dirname, '..');
const hasTool = (t: string) => ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, t)));
const capable = process.platform === 'linux' && process.getuid?.() === 0 && hasTool('ip') && hasTool('nft');

if (!capable && process.env.CI === 'true') {
  test('netns integration prerequisites', () => {
    throw new Error('agent netns test needs root on Linux with ip and nft, and CI=true forbids skipping it');
  });
}

const haveTool = (t: string, args = ['--version']) => {
  try {
    execFileSync(t, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const METRICS_PORT = 9740;

const P = `agt${process.pid}`;
const NS = { node: `${P}n`, pod: `${P}p`, thief: `${P}x`, gw: `${P}g`, tenant: `${P}t`, peer: `${P}v` };
const NODE_IP = '10.0.1.10';
const HA_VIP = '10.0.1.1';
const POD_IP = '10.244.0.5';
/** An unlabelled pod on the same node that borrows POD_IP. */
const THIEF_IP = '10.244.0.6';
const TENANT_HOST = '10.50.0.9';
const ALPHA = { name: 'alpha', vni: 100, cidrs: ['10.50.0.0/16'], haVip: HA_VIP, gatewayMac: '0a:00:00:00:64:01', table: 0x1000064 };
const BETA = { name: 'beta', vni: 200, cidrs: ['10.50.0.0/16'], haVip: HA_VIP, gatewayMac: '0a:00:00:00:c8:01', table: 0x10000c8 };
/** A tenant reached through VPC peering: its VPC is routed straight from the function VPC (the gw namespace stands in for the VPC router). */
const PEER_HOST = '10.60.0.9';
const GAMMA = { name: 'gamma', vni: 300, mark: 0x100012c, cidrs: ['10.60.0.0/16'] };

const sh = (ns: string, ...argv: string[]): string => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** One command per line; `sysctl k=v` writes /proc/sys directly (no procps needed). */
const script = (ns: string, lines: string) =>
  lines
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .forEach(([cmd, ...rest]) => {
      const [key, value] = rest[0].split('=');
      if (cmd === 'sysctl') sh(ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`);
      else sh(ns, cmd, ...rest);
    });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
  return Date.now() - start;
}
const ev = (type: string, name: string, tenant?: string, ip = POD_IP) =>
  `${JSON.stringify({ type, object: { metadata: { name, namespace: 'fn', uid: `uid-${name}`, labels: tenant ? { 'crossvpc.io/tenant': tenant } : {} }, status: { podIP: ip, phase: 'Running' } } })}\n`;

(capable ? describe : describe.skip)('node agent in network namespaces', () => {
  let dir: string;
  let podsFile: string;
  const procs: ChildProcess[] = [];
  let agent: { proc: ChildProcess; out: () => string } | undefined;

  function startAgent(tag: string) {
    const ready = join(dir, `ready-${tag}`);
    const logFile = join(dir, `agent-${tag}.log`);
    const args = ['netns', 'exec', NS.node, process.execPath, join(dir, 'build/agent/main.js'), '--config', join(dir, 'tenants.json'), '--node-ip', NODE_IP, '--pods', `file:${podsFile}`, '--ready-file', ready];
    const proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d));
    proc.stderr!.on('data', (d: Buffer) => (out += d));
    proc.on('exit', () => existsSync(dir) && writeFileSync(logFile, out)); // afterAll may have removed dir after a failure
    procs.push(proc);
    agent = { proc, out: () => out };
    return until(`agent ${tag} ready`, () => existsSync(ready), 5000);
  }
  async function stopAgent() {
    const a = agent!;
    const exited = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGTERM');
    await exited;
    agent = undefined;
  }
  /** The ConfigMap as kubelet updates it: a whole new file in place. */
  const writeTenants = (tenants: object[], peered?: object[], cluster?: object) =>
    writeFileSync(
      join(dir, 'tenants.json'),
      JSON.stringify({ version: peered ? 3 : 2, podLabelKey: 'crossvpc.io/tenant', tunnel: 'vxlan', vxlanPort: 4789, mtu: 1450, nextHop: '169.254.0.1', gatewayEndpoints: [HA_VIP], gatewayCidrs: ['10.0.1.0/24'], tenants, ...(peered ? { peered } : {}), ...(cluster ? { cluster } : {}) }),
    );
  const podTenant = () => sh(NS.node, 'nft', 'list', 'map', 'inet', 'crossvpc_node', 'pod_tenant');
  const counter = (name: string) => Number(/packets (\d+)/.exec(sh(NS.node, 'nft', 'list', 'counter', 'inet', 'crossvpc_node', name))![1]);
  /** TCP from the pod to the tenant host; resolves to what the server saw as our address, or an error string. */
  const connect = (ns = NS.pod, from?: string, host = TENANT_HOST) =>
    sh(ns, process.execPath, '-e', `const s=require('net').connect({port:8080,host:'${host}'${from ? `,localAddress:'${from}'` : ''}});let d='';s.setTimeout(800,()=>{console.log('timeout');process.exit()});s.on('data',x=>d+=x);s.on('end',()=>console.log(d));s.on('error',e=>console.log(e.code))`).trim();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `${P}-`));
    podsFile = join(dir, 'pods.jsonl');
    writeFileSync(podsFile, '');
    writeTenants([ALPHA, BETA]);
    // Only the agent and what it imports, into our own directory: no race with other builds of dist/.
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'agent/tsconfig.json'), '--outDir', join(dir, 'build')], { stdio: 'pipe' });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules')); // its runtime dependencies (prom-client), as the image's node_modules

    for (const ns of Object.values(NS)) execFileSync('ip', ['netns', 'add', ns]);
    const ip = (...a: string[]) => execFileSync('ip', a);
    ip('link', 'add', 'u0', 'netns', NS.node, 'type', 'veth', 'peer', 'name', 'u1', 'netns', NS.gw);
    // Pods wired like a routed CNI (EKS VPC CNI, Calico): a /32 host route per pod interface.
    ip('link', 'add', 'p1', 'netns', NS.node, 'type', 'veth', 'peer', 'name', 'p0', 'netns', NS.pod);
    ip('link', 'add', 'x1', 'netns', NS.node, 'type', 'veth', 'peer', 'name', 'x0', 'netns', NS.thief);
    ip('link', 'add', 't1', 'netns', NS.gw, 'type', 'veth', 'peer', 'name', 't0', 'netns', NS.tenant);
    ip('link', 'add', 'v1', 'netns', NS.gw, 'type', 'veth', 'peer', 'name', 'v0', 'netns', NS.peer);
    script(NS.node, `
      ip link set lo up
      ip addr add ${NODE_IP}/24 dev u0
      ip link set u0 up
      ip link set p1 up
      ip link set x1 up
      ip route add ${POD_IP}/32 dev p1
      ip route add ${THIEF_IP}/32 dev x1
      ip route add 10.60.0.0/16 via ${HA_VIP}
      sysctl net.ipv4.conf.p1.proxy_arp=1
      sysctl net.ipv4.conf.x1.proxy_arp=1
      sysctl net.ipv4.conf.all.rp_filter=0
      sysctl net.ipv4.conf.p1.rp_filter=0
      sysctl net.ipv4.conf.x1.rp_filter=0
      sysctl net.ipv4.ip_forward=1`);
    for (const [ns, dev, hostDev, addr] of [[NS.pod, 'p0', 'p1', POD_IP], [NS.thief, 'x0', 'x1', THIEF_IP]]) {
      const hostMac = /link\/ether ([0-9a-f:]+)/.exec(sh(NS.node, 'ip', '-o', 'link', 'show', hostDev))![1];
      script(ns, `
        ip link set lo up
        ip addr add ${addr}/32 dev ${dev}
        ip link set ${dev} up
        ip route add 169.254.1.1 dev ${dev}
        ip neigh replace 169.254.1.1 lladdr ${hostMac} dev ${dev} nud permanent
        ip route add default via 169.254.1.1`);
    }
    // A minimal gateway: decapsulates VNI 100 with the tenant's gateway MAC, routes tenant replies back into the tunnel.
    script(NS.gw, `
      ip link set lo up
      ip addr add ${HA_VIP}/24 dev u1
      ip link set u1 up
      ip addr add 10.50.0.1/16 dev t1
      ip link set t1 up
      ip link add gx100 type vxlan id 100 local ${HA_VIP} remote ${NODE_IP} dstport 4789 nolearning
      ip link set gx100 address ${ALPHA.gatewayMac} mtu 1450 up
      ip neigh replace 169.254.0.2 lladdr 0e:cc:0a:00:01:0a dev gx100 nud permanent
      ip route add ${NODE_IP}/32 via 169.254.0.2 dev gx100 onlink table 100
      ip rule add iif t1 lookup 100 priority 10
      ip addr add 10.60.0.1/16 dev v1
      ip link set v1 up
      ip route add 10.244.0.0/16 via ${NODE_IP}
      sysctl net.ipv4.ip_forward=1
      sysctl net.ipv4.conf.all.rp_filter=0
      sysctl net.ipv4.conf.gx100.rp_filter=0`);
    script(NS.tenant, `
      ip link set lo up
      ip addr add ${TENANT_HOST}/16 dev t0
      ip link set t0 up
      ip route add default via 10.50.0.1`);
    script(NS.peer, `
      ip link set lo up
      ip addr add ${PEER_HOST}/16 dev v0
      ip link set v0 up
      ip route add default via 10.60.0.1`);
    for (const [ns, host] of [[NS.tenant, TENANT_HOST], [NS.peer, PEER_HOST], [NS.pod, POD_IP]]) {
      const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `require('net').createServer(s=>s.end(s.remoteAddress)).listen(8080,'${host}',()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(server);
      await new Promise((r) => server.stdout!.once('data', r));
    }
  }, 20_000);

  afterAll(() => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of Object.values(NS)) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // never created
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('binds a pod within 1 s, tunnels its traffic SNATed to the node, blocks spoofed tunnel packets, unbinds on delete', async () => {
    await startAgent('a');
    expect(sh(NS.node, 'ip', '-d', 'link', 'show', 'cx100')).toMatch(/vxlan id 100 remote 10\.0\.1\.1 local 10\.0\.1\.10 .*dstport 4789 nolearning/);
    expect(connect()).not.toBe(NODE_IP); // no binding, no route to the tenant

    appendFileSync(podsFile, ev('ADDED', 'f1', 'alpha'));
    const took = await until('pod in pod_tenant', () => podTenant().includes(`"p1" . ${POD_IP} : 0x01000064`), 1000);
    expect(took).toBeLessThan(1000);
    expect(sh(NS.node, 'nft', 'list', 'set', 'inet', 'crossvpc_node', 'pod_tunnel')).toContain(`"p1" . ${POD_IP} . "cx100"`);

    expect(connect()).toBe(NODE_IP); // the tenant host sees the node, not the pod

    const before = counter('tunnel_spoof');
    sh(NS.pod, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('x',4789,'${HA_VIP}',()=>s.close())`);
    await until('spoofed VXLAN packet counted', () => counter('tunnel_spoof') > before, 1000);

    appendFileSync(podsFile, ev('DELETED', 'f1'));
    await until('pod gone from pod_tenant', () => !podTenant().includes(POD_IP), 1000);
    expect(connect()).not.toBe(NODE_IP);
  });

  it('classifies by (interface, source): a pod borrowing a bound pod\'s address is dropped and counted, rp_filter off', async () => {
    appendFileSync(podsFile, ev('ADDED', 'f1', 'alpha') + ev('ADDED', 'thief', undefined, THIEF_IP));
    await until('both pods bound', () => sh(NS.node, 'nft', 'list', 'set', 'inet', 'crossvpc_node', 'pod_src').includes(`"x1" . ${THIEF_IP}`) && podTenant().includes(POD_IP), 1000);
    expect(connect()).toBe(NODE_IP); // control: the owner of the address reaches its tenant
    sh(NS.thief, 'ip', 'addr', 'add', `${POD_IP}/32`, 'dev', 'x0');
    try {
      const before = counter('pod_spoof');
      expect(connect(NS.thief, POD_IP)).toBe('timeout'); // the borrowed source gets no mark, no tunnel, no answer
      expect(counter('pod_spoof')).toBeGreaterThan(before);
      expect(connect(NS.thief, THIEF_IP)).not.toBe(NODE_IP); // and its own unlabelled address reaches no tenant
    } finally {
      sh(NS.thief, 'ip', 'addr', 'del', `${POD_IP}/32`, 'dev', 'x0');
    }
    expect(connect()).toBe(NODE_IP); // the owner is unaffected
    appendFileSync(podsFile, ev('DELETED', 'f1'));
    await until('pod gone from pod_tenant', () => !podTenant().includes(POD_IP), 1000);
  });

  it('leaves the data plane in place across a restart and converges without churn', async () => {
    appendFileSync(podsFile, ev('ADDED', 'f1', 'alpha'));
    await until('pod re-bound', () => podTenant().includes(POD_IP), 1000);
    await stopAgent();
    expect(connect()).toBe(NODE_IP); // pods keep working while the agent is down

    // While it is down the IP moves to a pod of another tenant.
    appendFileSync(podsFile, ev('DELETED', 'f1') + ev('ADDED', 'f2', 'beta'));
    await startAgent('b');
    expect(podTenant()).toContain(`"p1" . ${POD_IP} : 0x010000c8`);
    expect(podTenant()).not.toContain('0x01000064');
    expect(agent!.out()).not.toMatch(/"msg":"exec"/); // tunnels, routes and rules were already right
    const rules = sh(NS.node, 'ip', 'rule', 'show').split('\n').filter((l) => /fwmark 0x10000(64|c8)/.test(l));
    expect(rules).toHaveLength(2);
    expect(connect()).not.toBe(NODE_IP); // beta's tunnel has no gateway here; alpha's must not carry it
    await stopAgent();
  });

  it('takes a tenant retired from and added back to the ConfigMap live, without a restart', async () => {
    appendFileSync(podsFile, ev('DELETED', 'f2') + ev('ADDED', 'f1', 'alpha'));
    await startAgent('c');
    const pid = agent!.proc.pid;
    await until('pod bound', () => podTenant().includes(POD_IP), 1000);
    expect(connect()).toBe(NODE_IP);

    writeTenants([BETA]); // alpha retired
    await until('alpha tunnel and binding gone', () => !podTenant().includes(POD_IP) && !sh(NS.node, 'ip', '-o', 'link').includes('cx100'), 12_000);
    expect(connect()).not.toBe(NODE_IP);
    expect(sh(NS.node, 'ip', 'rule', 'show')).not.toMatch(/fwmark 0x1000064/);
    expect(sh(NS.node, 'nft', 'list', 'set', 'inet', 'crossvpc_node', 'pod_src')).toContain(`"p1" . ${POD_IP}`); // still a known source, no tenant

    writeTenants([ALPHA, BETA]); // onboarded again
    await until('alpha rebound', () => podTenant().includes(`"p1" . ${POD_IP} : 0x01000064`), 12_000);
    expect(connect()).toBe(NODE_IP);
    expect(agent!.proc.pid).toBe(pid); // the same agent process throughout
    await stopAgent();
  });
  /** GET from inside the node namespace, as kubelet's probes and Prometheus reach the agent. */
  const get = (path: string): { status: number; type: string; body: string } =>
    JSON.parse(sh(NS.node, process.execPath, '-e', `require('http').get('http://${NODE_IP}:${METRICS_PORT}${path}',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(JSON.stringify({status:r.statusCode,type:r.headers['content-type'],body:b})))}).on('error',e=>console.log(JSON.stringify({status:0,type:'',body:e.code})))`));

  it('serves /healthz and promtool-clean /metrics on the node IP: pods bound per tenant, drops by reason, reconcile latency', async () => {
    if (process.env.CI === 'true' && !haveTool('promtool')) throw new Error('promtool (Debian package prometheus) is required in CI; .ci/run installs it');
    appendFileSync(podsFile, ev('ADDED', 'f1', 'alpha'));
    await startAgent('m');
    expect(get('/healthz')).toEqual({ status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' });
    sh(NS.pod, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('x',4789,'${HA_VIP}',()=>s.close())`); // a tunnel_spoof drop
    await until('spoofed VXLAN packet counted', () => counter('tunnel_spoof') > 0, 1000);
    const m = get('/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('crossvpc_agent_pods_bound{tenant="alpha",vni="100"} 1\n');
    expect(m.body).toContain('crossvpc_agent_pods_bound{tenant="beta",vni="200"} 0\n');
    expect(m.body).toContain('crossvpc_agent_ready 1\n');
    expect(m.body).toMatch(/crossvpc_agent_reconcile_duration_seconds_count\{kind="full"\} [1-9]/);
    expect(m.body).toMatch(/crossvpc_agent_last_pod_event_age_seconds \d/);
    expect(Number(/crossvpc_node_dropped_packets_total\{reason="tunnel_spoof"\} (\d+)/.exec(m.body)?.[1])).toBe(counter('tunnel_spoof'));
    for (const reason of ['pod_spoof', 'tunnel_spoof', 'tunnel_denied', 'return_denied']) expect(m.body).toContain(`crossvpc_node_dropped_bytes_total{reason="${reason}"}`);
    expect(m.body).toContain('crossvpc_agent_errors_total{op="nft_counters"} 0\n');
    if (haveTool('promtool')) {
      const check = (body: string) => execFileSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      expect(check(m.body)).toBe('');
    }
    await stopAgent();
    expect(get('/healthz').status).toBe(0); // closed on SIGTERM
    appendFileSync(podsFile, ev('DELETED', 'f1'));
  });

  it('peering: only pods of the peered tenant reach its CIDRs, keeping their address; nobody else does, and the peered VPC cannot open a connection to a pod', async () => {
    writeTenants([ALPHA, BETA], [GAMMA]);
    try {
      appendFileSync(podsFile, ev('ADDED', 'f1', 'gamma') + ev('ADDED', 'thief', undefined, THIEF_IP));
      await startAgent('p');
      await until('gamma pod marked', () => podTenant().includes(`"p1" . ${POD_IP} : 0x0100012c`), 1000);
      expect(sh(NS.node, 'nft', 'list', 'set', 'inet', 'crossvpc_node', 'pod_tunnel')).not.toContain(POD_IP); // no tunnel for a peered tenant
      expect(connect(NS.pod, undefined, PEER_HOST)).toBe(POD_IP); // control: the pod reaches its peered VPC, unSNATed
      // The peered VPC opens a connection to its own tenant's pod (whose replies would carry the
      // right mark): dropped, counted. Control: the tenant host behind the minimal gateway, routed
      // to the pod too, reaches the same pod server, so the probe would have worked.
      const toPod = (ns: string) => sh(ns, process.execPath, '-e', `const s=require('net').connect({port:8080,host:'${POD_IP}'});s.setTimeout(800,()=>{console.log('timeout');process.exit()});s.on('data',d=>console.log(String(d)));s.on('error',e=>console.log(e.code))`).trim();
      let before = counter('peering_denied');
      expect(toPod(NS.peer)).toBe('timeout');
      expect(counter('peering_denied')).toBeGreaterThan(before);
      sh(NS.gw, 'ip', 'route', 'add', `${POD_IP}/32`, 'via', NODE_IP, 'table', '100');
      sh(NS.node, 'ip', 'route', 'add', '10.50.0.0/16', 'via', HA_VIP);
      try {
        expect(toPod(NS.tenant)).toBe(TENANT_HOST);
      } finally {
        sh(NS.gw, 'ip', 'route', 'del', `${POD_IP}/32`, 'via', NODE_IP, 'table', '100');
        sh(NS.node, 'ip', 'route', 'del', '10.50.0.0/16', 'via', HA_VIP);
      }
      // An unlabelled pod and a pod of a NAT tenant try the same host: dropped at the node and counted.
      before = counter('peering_denied');
      expect(connect(NS.thief, undefined, PEER_HOST)).toBe('timeout');
      expect(counter('peering_denied')).toBeGreaterThan(before);
      appendFileSync(podsFile, ev('DELETED', 'f1') + ev('ADDED', 'f2', 'alpha'));
      await until('pod now of alpha', () => podTenant().includes(`"p1" . ${POD_IP} : 0x01000064`), 1000);
      before = counter('peering_denied');
      expect(connect(NS.pod, undefined, PEER_HOST)).toBe('timeout');
      expect(counter('peering_denied')).toBeGreaterThan(before);
      expect(connect()).toBe(NODE_IP); // alpha's own tunnel still works next to the peering
    } finally {
      if (agent) await stopAgent();
      appendFileSync(podsFile, ev('DELETED', 'f2') + ev('DELETED', 'thief'));
      writeTenants([ALPHA, BETA]);
    }
  });

  it("internet egress: an egress tenant's pods reach a public address through their tunnel; cluster and private ranges keep the main table; a tenant without egress does not", async () => {
    const INTERNET_HOST = '203.0.113.9';
    const cluster = { vpcCidr: '10.0.0.0/16', podCidrs: ['10.244.0.0/16'], nodeCidrs: ['10.0.1.0/24'] };
    writeTenants([{ ...ALPHA, internetEgress: true }, BETA], [], cluster);
    // The minimal gateway hands decapsulated alpha traffic for the documentation range to the tenant host, which answers there too.
    sh(NS.tenant, 'ip', 'addr', 'add', `${INTERNET_HOST}/32`, 'dev', 't0');
    sh(NS.gw, 'ip', 'route', 'add', `${INTERNET_HOST}/32`, 'via', TENANT_HOST);
    const server = spawn('ip', ['netns', 'exec', NS.tenant, process.execPath, '-e', `require('net').createServer(s=>s.end(s.remoteAddress)).listen(8080,'${INTERNET_HOST}',()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(server);
    await new Promise((r) => server.stdout!.once('data', r));
    try {
      appendFileSync(podsFile, ev('ADDED', 'f1', 'alpha'));
      await startAgent('e');
      await until('alpha pod marked', () => podTenant().includes(`"p1" . ${POD_IP} : 0x01000064`), 1000);
      const dev = (dst: string, mark: number) => /dev (\S+)/.exec(sh(NS.node, 'ip', 'route', 'get', dst, 'mark', String(mark)))?.[1];
      expect(dev(INTERNET_HOST, ALPHA.table)).toBe('cx100'); // public: into alpha's tunnel
      expect(dev('10.50.0.9', ALPHA.table)).toBe('cx100'); // alpha's own destination, inside a thrown range
      expect(dev('10.0.1.77', ALPHA.table)).toBe('u0'); // the cluster: main table
      expect(() => dev('192.168.7.7', ALPHA.table)).toThrow(); // private, not alpha's: main table, which has no route
      expect(connect(NS.pod, undefined, INTERNET_HOST)).toBe(NODE_IP); // a real connection through the tunnel, SNATed to the node
      appendFileSync(podsFile, ev('DELETED', 'f1') + ev('ADDED', 'f2', 'beta'));
      await until('pod now of beta', () => podTenant().includes(`"p1" . ${POD_IP} : 0x010000c8`), 1000);
      expect(connect(NS.pod, undefined, INTERNET_HOST)).not.toBe(NODE_IP); // beta has no egress: no path
    } finally {
      if (agent) await stopAgent();
      server.kill('SIGKILL');
      appendFileSync(podsFile, ev('DELETED', 'f1') + ev('DELETED', 'f2'));
      sh(NS.gw, 'ip', 'route', 'del', `${INTERNET_HOST}/32`, 'via', TENANT_HOST);
      writeTenants([ALPHA, BETA]);
    }
  });
});
