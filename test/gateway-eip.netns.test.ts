/**
 * EIP egress through the real gateway ruleset, in network namespaces: a gateway whose tunnel
 * devices are veths to pod namespaces, its underlay a veth to a "VPC router" namespace that
 * also stands in for the internet gateway (1:1 NAT of each EIP stand-in to its egress IP, as
 * AWS's IGW does) in front of an "internet" namespace on documentation addresses. The gateway's
 * routes are the ones crossvpc-apply makes; its main table sends node addresses out the
 * underlay, as in a VPC, so a reply that missed its tenant table would leave the wrong way.
 * Needs root on Linux with ip, nft and conntrack; skipped otherwise, a failure under CI=true.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { writeFileSync } from 'fs';
import { join } from 'path';
import { cleanUpNetnsTest, haveTool, isRootLinux } from './helpers';
import { memberRoot, runApply } from './member-root';
import { buildCrossVpcModel, buildGatewayMemberSpec, renderGatewayRuleset } from './render-fixtures';
import { GATEWAY_NFT_TABLE, renderTenantTable, TENANT_TABLE_COLUMNS, tunnelDev } from '../lib/contract';

const capable = isRootLinux() && haveTool('nft', ['--version']) && haveTool('conntrack', ['--version']);

const P = `gwe${process.pid % 100000}`;
const NS = { gw: `${P}g`, rtr: `${P}r`, inet: `${P}i`, podA: `${P}a`, podB: `${P}b`, podC: `${P}c` };
const SELF_IP = '10.0.2.10';
const ROUTER = '10.0.2.1';
const INTERNET = '198.51.100.10';
const PRIVATE = '192.168.7.7';
const FUNCTION_HOST = '10.0.2.99';
const PORT = 7100;
/** Per tenant: VNI, pod address, egress IP and its EIP stand-in (documentation range, this test only). */
const T = {
  alpha: { vni: 1001, pod: '10.0.1.10', ns: NS.podA, egressIp: '10.0.2.20', eip: '203.0.113.20' },
  beta: { vni: 1002, pod: '10.0.1.11', ns: NS.podB, egressIp: '10.0.2.21', eip: '203.0.113.21' },
  gamma: { vni: 1003, pod: '10.0.1.12', ns: NS.podC, egressIp: '', eip: '' },
} as const;

const model = buildCrossVpcModel('Test', {
  functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
  gateway: { subnetId: 'subnet-g' },
  tenants: [
    { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], vni: 1001, internetEgress: { eipAllocationId: 'eipalloc-0123456789abcdef0', privateIp: T.alpha.egressIp } },
    { name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'], vni: 1002, internetEgress: { eipAllocationId: 'eipalloc-0fedcba9', privateIp: T.beta.egressIp } },
    { name: 'gamma', vpcId: 'vpc-c', subnetId: 'subnet-c', cidrs: ['172.16.0.0/16'], vni: 1003 },
  ],
});
const binding = (i: number) => ({ natIp: '172.16.255.254', eniId: `eni-t${i}`, eniMac: `02:00:00:00:0${i}:01`, eniIp: `172.16.255.1${i}`, subnetCidr: '172.16.0.0/16', routerIp: '172.16.0.1' });
const spec = buildGatewayMemberSpec(model, 0, 'a', {
  selfIp: SELF_IP, peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: '10.0.2.254',
  tenants: { alpha: binding(1), beta: binding(2), gamma: binding(3) },
}, { advertIntervalSec: 0.5, connLimitPerTenant: 1000, configParameter: '/crossvpc/pair0-test', configPollSec: 5 });
const tableOf = (vni: number) => String(spec.tenants.find((x) => x.vni === vni)!.table);

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns: string, ...argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
const nftIn = (ns: string, text: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const sysctl = (ns: string, key: string, value: string) => inNs(ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`);
const counter = (name: string) => Number(/packets (\d+)/.exec(inNs(NS.gw, 'nft', 'list', 'counter', 'inet', GATEWAY_NFT_TABLE, name))?.[1] ?? -1);

/** A veth between two namespaces: devA in a (with addrA), devB in b (with addrB). */
function veth(a: string, devA: string, addrA: string | undefined, b: string, devB: string, addrB: string | undefined): void {
  ip('link', 'add', devA, 'netns', a, 'type', 'veth', 'peer', 'name', devB, 'netns', b);
  for (const [ns, dev, addr] of [[a, devA, addrA], [b, devB, addrB]] as const) {
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'ip', 'link', 'set', dev, 'up');
    if (addr) inNs(ns, 'ip', 'addr', 'add', addr, 'dev', dev);
  }
}

/** A UDP echo that answers with the source address it saw, on each address (one socket each), for 90 s. */
function echo(ns: string, addrs: string[], procs: ChildProcess[]): void {
  procs.push(spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `for(const a of ${JSON.stringify(addrs)}){const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(r.address,r.port,r.address));s.bind(${PORT},a)}setTimeout(()=>process.exit(0),90000)`], { stdio: 'ignore', detached: true }));
}

/** Datagrams from `ns` to host for 1.5 s: the source the host saw, or '' without an answer. */
const probe = (ns: string, host: string, port = PORT) =>
  inNs(ns, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.bind(0,()=>{const t=setInterval(()=>s.send('x',${port},'${host}'),100);setTimeout(()=>{clearInterval(t);console.log('');process.exit(0)},1500)})`).trim();

(capable ? describe : describe.skip)('EIP egress against the real gateway ruleset (netns)', () => {
  const procs: ChildProcess[] = [];

  beforeAll(() => {
    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    for (const ns of [NS.gw, NS.rtr]) for (const k of ['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter']) sysctl(ns, k, k.endsWith('forward') ? '1' : '0');
    // Underlay: the gateway subnet, its router; the egress IPs are on the underlay as crossvpc-notify raises them.
    veth(NS.gw, 'fn0', `${SELF_IP}/24`, NS.rtr, 'eth0', `${ROUTER}/24`);
    for (const t of [T.alpha, T.beta]) inNs(NS.gw, 'ip', 'addr', 'add', `${t.egressIp}/32`, 'dev', 'fn0');
    inNs(NS.gw, 'ip', 'route', 'add', 'default', 'via', ROUTER, 'dev', 'fn0');
    // Node addresses live in the VPC: without its tenant table, a packet to a pod leaves by the underlay.
    inNs(NS.gw, 'ip', 'route', 'add', '10.0.1.0/24', 'via', ROUTER, 'dev', 'fn0');
    // The router holds a function VPC host and a private host, and the internet behind it.
    for (const a of [FUNCTION_HOST, PRIVATE]) inNs(NS.rtr, 'ip', 'addr', 'add', `${a}/32`, 'dev', 'lo');
    veth(NS.rtr, 'inet0', '198.51.100.1/24', NS.inet, 'eth0', `${INTERNET}/24`);
    inNs(NS.inet, 'ip', 'route', 'add', 'default', 'via', '198.51.100.1');
    // The IGW stand-in: each EIP stand-in maps 1:1 to its egress IP.
    nftIn(NS.rtr, `table ip igw {\n  chain pre { type nat hook prerouting priority dstnat; policy accept;\n${[T.alpha, T.beta].map((t) => `    iifname "inet0" ip daddr ${t.eip} dnat to ${t.egressIp}\n`).join('')}  }\n  chain post { type nat hook postrouting priority srcnat; policy accept;\n${[T.alpha, T.beta].map((t) => `    oifname "inet0" ip saddr ${t.egressIp} snat to ${t.eip}\n`).join('')}  }\n}\n`);
    for (const t of Object.values(T)) {
      // The pod side of each tunnel; the pod reaches everything through the gateway (the node agent's default for egress tenants).
      veth(NS.gw, tunnelDev(t.vni), '10.0.1.1/32', t.ns, 'eth0', `${t.pod}/24`);
      inNs(t.ns, 'ip', 'route', 'add', 'default', 'via', '10.0.1.1', 'dev', 'eth0', 'onlink');
      const table = tableOf(t.vni);
      inNs(NS.gw, 'ip', 'rule', 'add', 'fwmark', table, 'lookup', table, 'pref', '100');
      inNs(NS.gw, 'ip', 'route', 'add', t.pod, 'dev', tunnelDev(t.vni), 'table', table);
      // crossvpc-apply: an EIP tenant's default is the gateway subnet's router; gamma gets the same,
      // so only the ruleset stands between its pods and the internet.
      inNs(NS.gw, 'ip', 'route', 'add', 'default', 'via', ROUTER, 'dev', 'fn0', 'onlink', 'table', table);
    }
    echo(NS.inet, [INTERNET], procs);
    echo(NS.rtr, [FUNCTION_HOST, PRIVATE, ROUTER], procs);
    echo(NS.gw, ['0.0.0.0'], procs); // whatever listens on the gateway itself
    nftIn(NS.gw, renderGatewayRuleset(spec));
  }, 60_000);

  afterAll(() => cleanUpNetnsTest(procs, Object.values(NS), undefined));

  test("each EIP tenant's pods reach the internet as their own EIP; the flow sits in the tenant's conntrack zone", () => {
    expect(probe(T.alpha.ns, INTERNET)).toBe(T.alpha.eip);
    expect(probe(T.beta.ns, INTERNET)).toBe(T.beta.eip);
    const zoneOf = (vni: number) => spec.tenants.find((x) => x.vni === vni)!.zone;
    for (const t of [T.alpha, T.beta]) {
      const flows = inNs(NS.gw, 'conntrack', '-L', '-p', 'udp', '--orig-src', t.pod, '--orig-dst', INTERNET).split('\n').filter(Boolean);
      expect(flows.length).toBe(1);
      expect(flows[0]).toContain(`zone=${zoneOf(t.vni)}`);
      expect(flows[0]).toContain(`dst=${t.egressIp}`); // the reply direction: to the egress IP
    }
  }, 30_000);

  test('a tenant without egress, private destinations and the function VPC never take it (controls: the gateway itself reaches them)', () => {
    const before = counter('unmatched');
    expect(probe(T.gamma.ns, INTERNET)).toBe('');
    expect(probe(T.alpha.ns, PRIVATE)).toBe('');
    expect(probe(T.alpha.ns, FUNCTION_HOST)).toBe('');
    expect(counter('unmatched')).toBeGreaterThanOrEqual(before + 3);
    // Controls: each host answers, through the same router.
    expect(probe(NS.gw, PRIVATE)).toBe(SELF_IP);
    expect(probe(NS.gw, FUNCTION_HOST)).toBe(SELF_IP);
    expect(probe(NS.gw, INTERNET)).toBe(SELF_IP); // the IGW stand-in maps only the EIPs
  }, 30_000);

  test('the internet reaches nothing through an EIP: new traffic to it is dropped at the gateway (control: the same listener answers on the member address)', () => {
    const before = counter('to_gateway');
    expect(probe(NS.inet, T.alpha.eip)).toBe('');
    expect(counter('to_gateway')).toBeGreaterThan(before);
    expect(probe(NS.rtr, SELF_IP)).toBe(ROUTER);
  }, 30_000);
});

/**
 * crossvpc-apply itself, in a namespace with its own mounts of the member's directories: an EIP
 * tenant that leaves the table (retired, or to another mode) takes its egress IP off the
 * underlay; the others' stay. The tenants' ENIs are not attached (the rows wait as pending).
 */
(capable ? describe : describe.skip)('crossvpc-apply releases the egress IPs the table no longer lists (netns)', () => {
  const ns = `${P}u`;
  let dir = '';
  const run = () => runApply(ns, dir);
  const held = () => inNs(ns, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'fn0').split('\n').map((l) => /inet ([\d.]+)\/32/.exec(l)?.[1]).filter(Boolean).sort();
  const rows = (names: string[]) => renderTenantTable(spec.tenants.filter((t) => names.includes(t.name)));

  beforeAll(() => {
    dir = memberRoot(spec, 'crossvpc-eip-apply-');
    writeFileSync(join(dir, 'state/ruleset.nft'), renderGatewayRuleset(spec));
    ip('netns', 'add', ns);
    inNs(ns, 'ip', 'link', 'add', 'fn0', 'type', 'veth', 'peer', 'name', 'fn1');
    inNs(ns, 'ip', 'link', 'set', 'fn1', 'up');
    inNs(ns, 'ip', 'link', 'set', 'fn0', 'up');
    inNs(ns, 'ip', 'addr', 'add', `${SELF_IP}/24`, 'dev', 'fn0');
    inNs(ns, 'ip', 'route', 'add', 'default', 'via', ROUTER, 'dev', 'fn0');
  });
  afterAll(() => cleanUpNetnsTest([], [ns], dir));

  test("alpha retired: its egress IP leaves the underlay, beta's stays (the control: an IP the table still lists); a table from before EIP egress is read without the columns", () => {
    for (const t of [T.alpha, T.beta]) inNs(ns, 'ip', 'addr', 'add', `${t.egressIp}/32`, 'dev', 'fn0');
    writeFileSync(join(dir, 'run/applied.tsv'), rows(['alpha', 'beta', 'gamma']));
    writeFileSync(join(dir, 'state/tenants.tsv'), rows(['beta', 'gamma']));
    run();
    expect(held()).toEqual([T.beta.egressIp]);
    // An older member's applied table (no egress columns) does not stop the apply.
    const old = rows(['beta', 'gamma']).split('\n').map((l) => l.split('\t').slice(0, TENANT_TABLE_COLUMNS.indexOf('egress')).join('\t')).join('\n');
    writeFileSync(join(dir, 'run/applied.tsv'), old);
    writeFileSync(join(dir, 'state/tenants.tsv'), rows(['gamma']));
    run();
    expect(held()).toEqual([T.beta.egressIp]);
    // beta leaves the table in turn: now its address goes too.
    writeFileSync(join(dir, 'run/applied.tsv'), rows(['beta', 'gamma']));
    run();
    expect(held()).toEqual([]);
  }, 120_000);
});
