/**
 * Port forwards on the NAT IP (seed 001) with real packets: the real ruleset and the real
 * crossvpc-apply (which builds the tenant and inbound routing tables) in a gateway namespace,
 * two tenants with identical addressing and NAT IPs (only alpha forwards), and a function-side
 * namespace holding the targets (crossvpc-apply creates the tunnels; no node sits behind them). Needs root on Linux with ip, nft and conntrack; skipped
 * otherwise, a failure under CI=true.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { writeFileSync } from 'fs';
import { join } from 'path';
import { cleanUpNetnsTest, haveTool, isRootLinux } from './helpers';
import { memberRoot, runApply } from './member-root';
import { buildCrossVpcModel, buildGatewayMemberSpec, renderMemberDocument } from './render-fixtures';
import { hex, inboundSnatPorts, inboundTable, tenantDev } from '../lib/contract';

const capable = isRootLinux() && haveTool('nft', ['--version']) && haveTool('conntrack', ['--version']);

const P = `gin${process.pid % 100000}`;
const NS = { gw: `${P}g`, fn: `${P}f`, tenA: `${P}x`, tenB: `${P}y` };
const SELF_IP = '10.0.2.10';
const HAVIP = '10.0.2.254';
const FN_HOST = '10.0.2.99';
const TARGET = '10.0.5.10';
const NAT_IP = '172.16.255.254';
const ROUTER = '172.16.0.1';
/** A tenant client outside the tenant's own destinations: its replies need the inbound table. */
const CLIENT = '172.17.0.9';
const ports = { tcp: 8080, udp: 5353, unlisted: 8081, target: 7100, targetUdp: 7101 };

const model = buildCrossVpcModel('Test', {
  functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
  gateway: { subnetId: 'subnet-g' },
  tenants: [
    {
      name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], vni: 1001,
      inbound: [{ protocol: 'tcp', port: ports.tcp, target: `${TARGET}:${ports.target}` }, { protocol: 'udp', port: ports.udp, target: `${TARGET}:${ports.targetUdp}` }],
    },
    { name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'], vni: 1002 },
  ],
});
const binding = (i: number) => ({ natIp: NAT_IP, eniId: `eni-t${i}`, eniMac: `02:00:00:00:0${i}:01`, eniIp: `172.16.255.1${i}`, subnetCidr: '172.16.0.0/16', routerIp: ROUTER });
const spec = buildGatewayMemberSpec(model, 0, 'a', {
  selfIp: SELF_IP, peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: HAVIP,
  tenants: { alpha: binding(1), beta: binding(2) },
}, { advertIntervalSec: 0.5, connLimitPerTenant: 1000, configParameter: '/crossvpc/pair0-test', configPollSec: 5 });
const alpha = spec.tenants.find((t) => t.name === 'alpha')!;
const beta = spec.tenants.find((t) => t.name === 'beta')!;

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns: string, ...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
const inboundRoutes = (table: number) => inNs(NS.gw, 'sh', '-c', `ip route show table ${inboundTable(table)} 2>/dev/null || true`).trim();
const counter = (name: string) => Number(/packets (\d+)/.exec(inNs(NS.gw, 'nft', 'list', 'counter', 'inet', 'crossvpc_gw', name))![1]);

/** One TCP connection from a tenant namespace: the target's first line (what it saw as the source), or '' without an answer. */
const tcpProbe = (ns: string, host: string, port: number, from = CLIENT) =>
  inNs(ns, process.execPath, '-e', `const c=require('net').connect({host:'${host}',port:${port},localAddress:'${from}'});c.setEncoding('utf8');c.on('data',(d)=>{console.log(d.split('\\n')[0]);process.exit(0)});c.on('error',()=>{console.log('');process.exit(0)});setTimeout(()=>{console.log('');process.exit(0)},2000)`).trim();
/** UDP datagrams until one is answered: the answer (the source the target saw), or ''. */
const udpProbe = (ns: string, host: string, port: number) =>
  inNs(ns, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.bind(0,'${CLIENT}',()=>{const t=setInterval(()=>s.send('x',${port},'${host}'),100);setTimeout(()=>{clearInterval(t);console.log('');process.exit(0)},1500)})`).trim();

(capable ? describe : describe.skip)('port forwards on the NAT IP against the real ruleset and crossvpc-apply (netns)', () => {
  let dir: string;
  const procs: ChildProcess[] = [];

  /** A veth from the gateway namespace (gwDev, with mac) to another namespace (eth0). */
  function link(gwDev: string, ns: string, mac: string | undefined, addrs: string[]): void {
    ip('link', 'add', gwDev, 'netns', NS.gw, ...(mac ? ['address', mac] : []), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    for (const a of addrs) inNs(ns, 'ip', 'addr', 'add', a, 'dev', 'eth0');
  }

  /** Runs the real crossvpc-apply in the gateway namespace on the document in dir/state. */
  const apply = (): void => void runApply(NS.gw, dir, 30_000);

  beforeAll(() => {
    dir = memberRoot(spec, 'crossvpc-gin-');
    const doc = renderMemberDocument(spec);
    writeFileSync(join(dir, 'state/tenants.tsv'), doc.tenants);
    writeFileSync(join(dir, 'state/ruleset.nft'), doc.ruleset);

    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    inNs(NS.gw, 'ip', 'link', 'set', 'lo', 'up');
    for (const k of ['ipv4/ip_forward', 'ipv4/conf/all/rp_filter', 'ipv4/conf/default/rp_filter']) inNs(NS.gw, 'sh', '-c', `echo ${k.endsWith('forward') ? 1 : 0} > /proc/sys/net/${k}`);
    // Function side: the member's own address and the HaVip; the targets live behind FN_HOST.
    link('fn0', NS.fn, undefined, [`${FN_HOST}/24`, `${TARGET}/32`]);
    inNs(NS.gw, 'ip', 'link', 'set', 'fn0', 'mtu', String(spec.underlayMtu), 'up'); // the tunnels' MTU fits inside it
    inNs(NS.gw, 'ip', 'addr', 'add', `${SELF_IP}/24`, 'dev', 'fn0');
    inNs(NS.gw, 'ip', 'addr', 'add', `${HAVIP}/32`, 'dev', 'fn0');
    inNs(NS.gw, 'ip', 'route', 'add', '10.0.5.0/24', 'via', FN_HOST, 'dev', 'fn0');
    // Tenant sides: identical addressing; the namespace is the tenant VPC router and a client beyond it.
    for (const [t, ns] of [[alpha, NS.tenA], [beta, NS.tenB]] as const) {
      link(tenantDev(t.vni), ns, t.eniMac, [`${ROUTER}/16`, `${CLIENT}/32`]);
    }
    apply();
    // The NAT IP, as converge raises it on the master (identical for both tenants).
    for (const t of [alpha, beta]) inNs(NS.gw, 'ip', 'addr', 'add', `${NAT_IP}/32`, 'dev', tenantDev(t.vni));
    // Targets: each answers with the source it saw, then echoes.
    procs.push(spawn('ip', ['netns', 'exec', NS.fn, process.execPath, '-e',
      `require('net').createServer((c)=>{c.write(c.remoteAddress+':'+c.remotePort+'\\n');c.pipe(c)}).listen(${ports.target},'${TARGET}');` +
      `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(r.address+':'+r.port,r.port,r.address));s.bind(${ports.targetUdp},'${TARGET}');` +
      // The same service on the unlisted port: a probe there fails at the gateway, not for want of a server.
      `require('net').createServer((c)=>c.end('open\\n')).listen(${ports.unlisted},'${TARGET}');setTimeout(()=>process.exit(0),120000)`], { stdio: 'ignore', detached: true }));
  }, 60_000);

  afterAll(() => cleanUpNetnsTest(procs, Object.values(NS), dir));

  test('crossvpc-apply builds the inbound table only for the tenant with forwards', () => {
    expect(inboundRoutes(alpha.table)).toContain(`default via ${ROUTER} dev ${tenantDev(alpha.vni)} onlink`);
    expect(inboundRoutes(alpha.table)).toContain(`172.16.0.0/16 dev ${tenantDev(alpha.vni)}`);
    expect(inboundRoutes(beta.table)).toBe('');
    const rules = inNs(NS.gw, 'ip', 'rule', 'show', 'pref', '1000');
    expect(rules).toContain(`fwmark ${hex(inboundTable(alpha.table))} lookup ${inboundTable(alpha.table)}`);
    expect(rules).toContain(`fwmark ${hex(beta.table)} lookup ${beta.table}`); // control: beta's own rule is there
    expect(rules).not.toContain(`lookup ${inboundTable(beta.table)}`);
  });

  test("alpha's client reaches the target through NAT IP:port (TCP and UDP); the target sees the HaVip with a port of alpha's range", () => {
    const range = inboundSnatPorts(alpha.slot);
    for (const seen of [tcpProbe(NS.tenA, NAT_IP, ports.tcp), udpProbe(NS.tenA, NAT_IP, ports.udp)]) {
      const [addr, port] = seen.split(':');
      expect(addr).toBe(HAVIP);
      expect(Number(port)).toBeGreaterThanOrEqual(range.from);
      expect(Number(port)).toBeLessThanOrEqual(range.to);
    }
    // The session sits in alpha's zone (both directions), none in beta's.
    expect(inNs(NS.gw, 'conntrack', '-L', '-w', String(alpha.zone), '-p', 'tcp', '--dport', String(ports.tcp))).toContain(`dst=${HAVIP}`);
    expect(() => inNs(NS.gw, 'conntrack', '-L', '-w', String(beta.zone), '-p', 'tcp', '--dport', String(ports.tcp))).not.toThrow();
    expect(inNs(NS.gw, 'sh', '-c', `conntrack -L -w ${beta.zone} 2>/dev/null | grep -c dport=${ports.tcp} || true`).trim()).toBe('0');
  }, 30_000);

  test('an unlisted port, the other protocol and the ENI address get nothing; each is dropped and counted as to_gateway', () => {
    // Control: the target does serve the unlisted port to anyone on the function side.
    expect(inNs(NS.fn, process.execPath, '-e', `require('net').connect(${ports.unlisted},'${TARGET}').on('data',(d)=>{process.stdout.write(d);process.exit(0)})`).trim()).toBe('open');
    const before = counter('to_gateway');
    expect(tcpProbe(NS.tenA, NAT_IP, ports.unlisted)).toBe('');
    expect(udpProbe(NS.tenA, NAT_IP, ports.tcp)).toBe('');
    expect(tcpProbe(NS.tenA, alpha.eniIp, ports.tcp)).toBe('');
    expect(counter('to_gateway')).toBeGreaterThanOrEqual(before + 3);
  }, 30_000);

  test("beta's client, with the same addresses and the same NAT IP, gets nothing on alpha's port", () => {
    expect(tcpProbe(NS.tenA, NAT_IP, ports.tcp)).toMatch(new RegExp(`^${HAVIP}:`)); // control: alpha, same probe
    const before = counter('to_gateway');
    expect(tcpProbe(NS.tenB, NAT_IP, ports.tcp)).toBe('');
    expect(udpProbe(NS.tenB, NAT_IP, ports.udp)).toBe('');
    expect(counter('to_gateway')).toBeGreaterThanOrEqual(before + 2);
  }, 30_000);

  test("a datagram forged to alpha's port range on the HaVip, without a session, reaches no tenant", async () => {
    const port = inboundSnatPorts(alpha.slot).from + 7;
    // The client listens on that port and prints every payload it gets.
    const sniff = spawn('ip', ['netns', 'exec', NS.tenA, process.execPath, '-e',
      `const s=require('dgram').createSocket('udp4');const got=[];s.on('message',(m)=>got.push(String(m)));s.bind(${port},'${CLIENT}');setTimeout(()=>{console.log(got.join(','));process.exit(0)},2500)`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    procs.push(sniff);
    let out = '';
    sniff.stdout!.on('data', (d) => (out += String(d)));
    const exited = new Promise((resolve) => sniff.on('exit', resolve));
    await new Promise((r) => setTimeout(r, 300));
    inNs(NS.fn, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send('forged',${port},'${HAVIP}');if(++n>=10){clearInterval(t);s.close()}},50)`);
    // Control: the listener is up and hears a datagram that does reach it.
    inNs(NS.tenA, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('control',${port},'${CLIENT}',()=>s.close())`);
    await exited;
    expect(out.trim()).toBe('control');
  }, 30_000);

  test('a document without the forwards closes the port and removes the inbound table and rule (last: it changes the gateway)', () => {
    expect(tcpProbe(NS.tenA, NAT_IP, ports.tcp)).toMatch(new RegExp(`^${HAVIP}:`)); // control: open before
    const closed = { ...spec, tenants: spec.tenants.map((t) => ({ ...t, inbound: [] })) };
    const doc = renderMemberDocument(closed);
    writeFileSync(join(dir, 'state/tenants.tsv'), doc.tenants);
    writeFileSync(join(dir, 'state/ruleset.nft'), doc.ruleset);
    apply();
    expect(inboundRoutes(alpha.table)).toBe('');
    expect(inNs(NS.gw, 'ip', 'rule', 'show', 'pref', '1000')).not.toContain(`lookup ${inboundTable(alpha.table)}`);
    expect(tcpProbe(NS.tenA, NAT_IP, ports.tcp)).toBe('');
  }, 30_000);
});
