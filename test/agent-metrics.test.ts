import { execFileSync } from 'child_process';
import * as http from 'http';
import { parseConfig } from '../agent/config';
import { RecordingExec } from '../agent/exec';
import { DEFAULT_METRICS_PORT, parseListenAddr, serveMetrics } from '../agent/http';
import { silentLog } from '../agent/log';
import { AgentArgs, parseArgs } from '../agent/main';
import { AgentMetrics, METRIC, readNodeCounters } from '../agent/metrics';
import { PodInfo } from '../agent/pods';
import { DEFAULT_HEALTH_GRACE_MS, Reconciler } from '../agent/reconciler';
import { NODE_COUNTERS } from '../lib/contract';
import { haveTool } from './helpers';
import { podRouteResponses } from './agent-fixtures';

const config = parseConfig(JSON.stringify({
  version: 2, podLabelKey: 'crossvpc.io/tenant', tunnel: 'vxlan', vxlanPort: 4789, mtu: 1450, nextHop: '169.254.0.1',
  gatewayEndpoints: ['10.0.1.1'], gatewayCidrs: ['10.0.1.0/24'],
  tenants: [
    { name: 'alpha', vni: 100, cidrs: ['10.50.0.0/16'], haVip: '10.0.1.1', gatewayMac: '0a:00:00:00:64:01', table: 0x1000064 },
    { name: 'beta', vni: 200, cidrs: ['10.50.0.0/16'], haVip: '10.0.1.1', gatewayMac: '0a:00:00:00:c8:01', table: 0x10000c8 },
  ],
}));
const pod = (name: string, ip: string, tenant?: string): PodInfo => ({ key: `uid-${name}`, name, namespace: 'fn', labels: tenant ? { 'crossvpc.io/tenant': tenant } : {}, ip, hostNetwork: false, phase: 'Running' });
const WIRING = { '10.244.0.5': 'veth5', '10.244.0.6': 'veth6', '10.244.0.7': 'veth7' };
const host = podRouteResponses(Object.fromEntries(Object.entries(WIRING).map(([ip, dev], i) => [ip, [dev, 15 + i] as const])));
const nftCounters = (values: Record<string, [number, number]>) => JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    ...Object.entries(values).map(([name, [packets, bytes]], handle) => ({ counter: { family: 'inet', name, table: 'crossvpc_node', handle, packets, bytes } })),
    { counter: { family: 'inet', name: 'not_ours', table: 'crossvpc_node', handle: 99, packets: 7, bytes: 7 } },
  ],
});
/** Samples of one metric: labels rendered as in the exposition → value. */
function samples(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out[m[2] ?? ''] = Number(m[3]);
  }
  return out;
}
/** `promtool check metrics` on the text; skipped without promtool unless CI=true. */
function promtool(text: string): string | undefined {
  if (!haveTool('promtool')) return undefined;
  return execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
const until = async (cond: () => boolean, ms = 2000) => {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 5))) if (Date.now() > end) throw new Error('timed out');
};

describe('agent metrics', () => {
  it('reads only the contract\'s named counters from nft -j', async () => {
    const exec = new RecordingExec([{ prefix: 'nft -j list counters', stdout: nftCounters({ pod_spoof: [3, 180], tunnel_denied: [1, 60] }) }]);
    const got = await readNodeCounters(exec);
    expect(exec.lines()).toEqual(['nft -j list counters table inet crossvpc_node']);
    expect(Object.fromEntries(got)).toEqual({ pod_spoof: { packets: 3, bytes: 180 }, tunnel_denied: { packets: 1, bytes: 60 } });
  });

  it('exports pods bound per tenant, reconcile latency, errors, drops by reason and the pod event age, promtool-clean', async () => {
    let now = 1_000_000;
    const all = Object.fromEntries(NODE_COUNTERS.map((c, i) => [c, [i + 1, (i + 1) * 100] as [number, number]]));
    const exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, { prefix: 'nft -j list counters', stdout: nftCounters(all) }, ...host]);
    const metrics = new AgentMetrics({ now: () => now });
    const rec = new Reconciler(config, '10.0.1.10', exec, silentLog, { batchMs: 1, observer: metrics });
    metrics.attach({ config: () => config, boundPerTenant: () => rec.boundPerTenant(), ready: () => rec.isReady() }, exec);
    const sink = metrics.timedSink(rec);
    const before = await metrics.text();
    expect(samples(before, METRIC.ready)).toEqual({ '': 0 });
    expect(samples(before, METRIC.droppedPackets)).toEqual({}); // no table yet: nothing read, no error
    expect(samples(before, METRIC.errors)['{op="nft_counters"}']).toBe(0);

    now += 2500;
    sink.sync([pod('a', '10.244.0.5', 'alpha'), pod('b', '10.244.0.6', 'alpha'), pod('c', '10.244.0.7')]);
    await rec.idle();
    now += 1500;
    const text = await metrics.text();
    expect(samples(text, METRIC.podsBound)).toEqual({ '{tenant="alpha",vni="100"}': 2, '{tenant="beta",vni="200"}': 0 });
    expect(samples(text, METRIC.ready)).toEqual({ '': 1 });
    expect(samples(text, METRIC.lastPodEventAge)).toEqual({ '': 1.5 });
    expect(samples(text, `${METRIC.reconcileSeconds}_count`)).toEqual({ '{kind="full"}': 1 });
    expect(samples(text, METRIC.errors)).toEqual({ '{op="apply"}': 0, '{op="tunnel_step"}': 0, '{op="periodic_check"}': 0, '{op="nft_counters"}': 0, '{op="pod_source"}': 0 });
    expect(samples(text, METRIC.droppedPackets)).toEqual({ '{reason="pod_spoof"}': 1, '{reason="tunnel_spoof"}': 2, '{reason="tunnel_denied"}': 3, '{reason="return_denied"}': 4, '{reason="peering_denied"}': 5 });
    expect(samples(text, METRIC.droppedBytes)).toEqual({ '{reason="pod_spoof"}': 100, '{reason="tunnel_spoof"}': 200, '{reason="tunnel_denied"}': 300, '{reason="return_denied"}': 400, '{reason="peering_denied"}': 500 });
    expect(text).toMatch(new RegExp(`# HELP ${METRIC.droppedPackets} .+\\n# TYPE ${METRIC.droppedPackets} counter`));
    expect(text).toContain(`# TYPE ${METRIC.reconcileSeconds} histogram`);
    expect(text).toContain(`# TYPE ${METRIC.podProgrammingSeconds} histogram`);
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge'); // prom-client's process metrics
    expect(exec.lines().filter((l) => l.startsWith('nft -j list counters'))).toHaveLength(1); // one nft read per scrape, none before the table exists
    expect(promtool(text) ?? '').toBe('');

    // An element change is an incremental reconcile; an unreadable node table is an error, not a scrape failure.
    sink.event('DELETED', pod('b', '10.244.0.6', 'alpha'));
    await rec.idle();
    exec.responses.unshift({ prefix: 'nft -j list counters', code: 1 });
    const after = await metrics.text();
    expect(samples(after, METRIC.podsBound)['{tenant="alpha",vni="100"}']).toBe(1);
    expect(samples(after, `${METRIC.reconcileSeconds}_count`)).toEqual({ '{kind="full"}': 1, '{kind="incremental"}': 1 });
    expect(samples(after, `${METRIC.podProgrammingSeconds}_count`)).toEqual({ '': 0 }); // a removal binds nothing
    expect(samples(after, METRIC.lastPodEventAge)).toEqual({ '': 0 });
    expect(samples(after, METRIC.droppedPackets)).toEqual({});
    expect(samples(await metrics.text(), METRIC.errors)['{op="nft_counters"}']).toBe(1);
    expect(promtool(after) ?? '').toBe('');
    sink.event('ADDED', pod('b', '10.244.0.6', 'alpha'));
    await rec.idle();
    expect(samples(await metrics.text(), `${METRIC.podProgrammingSeconds}_count`)).toEqual({ '': 1 });
  });

  it('the tunnel check age: since start, reset by each completed check (also one with a failed step)', async () => {
    let now = 0;
    const metrics = new AgentMetrics({ now: () => now, defaultMetrics: false });
    const exec = new RecordingExec([{ prefix: 'ip link add', code: 2 }, ...host]);
    const rec = new Reconciler(config, '10.0.1.10', exec, silentLog, { observer: metrics });
    now = 45_000;
    expect(samples(await metrics.text(), METRIC.lastTunnelCheckAge)).toEqual({ '': 45 });
    expect(await rec.ensureTunnels()).toBe(false);
    now = 47_000;
    expect(samples(await metrics.text(), METRIC.lastTunnelCheckAge)).toEqual({ '': 2 });
    expect(samples(await metrics.text(), METRIC.errors)['{op="tunnel_step"}']).toBeGreaterThan(0);
  });

  it('a watch bookmark (alive without a pod) resets the event age', async () => {
    let now = 0;
    const metrics = new AgentMetrics({ now: () => now, defaultMetrics: false });
    now = 30_000;
    expect(samples(await metrics.text(), METRIC.lastPodEventAge)).toEqual({ '': 30 });
    metrics.timedSink({ sync: () => undefined, event: () => undefined }).alive!();
    now = 31_000;
    expect(samples(await metrics.text(), METRIC.lastPodEventAge)).toEqual({ '': 1 });
  });
});

describe('agent /healthz', () => {
  it('503 until the first table is applied, 200 while applies fail within the grace period, 503 after it, 200 once recovered', async () => {
    let now = 0;
    const exec = new RecordingExec([{ prefix: 'nft -j list map', code: 1 }, ...host]);
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const rec = new Reconciler(config, '10.0.1.10', exec, silentLog, { batchMs: 1, retryMs: 5, observer: metrics, now: () => now });
    expect(rec.health()).toEqual({ ok: false, reason: 'not ready: no pod snapshot yet' });

    exec.responses.unshift({ prefix: 'nft -f -', code: 1 });
    rec.sync([pod('a', '10.244.0.5', 'alpha')]);
    await until(() => exec.lines().filter((l) => l === 'nft -f -').length >= 1);
    expect(rec.health()).toEqual({ ok: false, reason: 'not ready: first table apply failing: nft -f -: exit 1' });
    exec.responses.shift();
    await until(() => rec.isReady());
    expect(rec.health()).toEqual({ ok: true, reason: 'ok' });

    exec.responses.unshift({ prefix: 'nft -f -', code: 1 }); // a later apply fails, and keeps failing
    now = 1000;
    rec.event('ADDED', pod('b', '10.244.0.6', 'alpha'));
    await until(() => rec.health().reason !== 'ok');
    expect(rec.health().ok).toBe(true);
    now = 1000 + DEFAULT_HEALTH_GRACE_MS + 1000;
    expect(rec.health()).toEqual({ ok: false, reason: 'table applies failing for 61 s: nft -f -: exit 1' });
    expect(samples(await metrics.text(), METRIC.errors)['{op="apply"}']).toBeGreaterThanOrEqual(2);

    exec.responses.shift();
    await until(() => rec.health().ok);
    expect(rec.health()).toEqual({ ok: true, reason: 'ok' });
    await rec.stop();
  });

  it('serves GET /metrics and /healthz, nothing else', async () => {
    let health = { ok: false, reason: 'not ready: no pod snapshot yet' };
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const server = await serveMetrics('127.0.0.1', 0, { metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.text() }), health: () => health });
    const get = (path: string, method = 'GET') => new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      http.request(`${server.url}${path}`, { method }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      }).on('error', reject).end();
    });
    try {
      expect(await get('/healthz')).toMatchObject({ status: 503, body: 'not ready: no pod snapshot yet\n' });
      health = { ok: true, reason: 'ok' };
      expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
      const m = await get('/metrics');
      expect(m.status).toBe(200);
      expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(m.body).toContain(`# TYPE ${METRIC.lastPodEventAge} gauge`);
      expect((await get('/')).status).toBe(404);
      expect((await get('/metrics', 'POST')).status).toBe(405);
    } finally {
      server.close();
    }
  });

  it('listens on the node IP by default; --metrics-addr [ip]:port', () => {
    const parsed = (argv: string[]) => parseArgs(['--config', 'c.json', '--node-ip', '10.0.1.10', '--pods', 'file:/p', ...argv], {}) as AgentArgs;
    expect(parsed([]).metrics).toEqual({ host: '10.0.1.10', port: DEFAULT_METRICS_PORT });
    expect(parsed(['--metrics-addr', ':9999']).metrics).toEqual({ host: '10.0.1.10', port: 9999 });
    expect(parsed(['--metrics-addr', '127.0.0.1:9999']).metrics).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(parsed(['--dry-run']).metrics).toBeUndefined();
    expect(() => parsed(['--metrics-addr', '9999'])).toThrow("--metrics-addr: got '9999', expected [ipv4]:port with port 1..65535, e.g. ':9740'");
    expect(() => parsed(['--metrics-addr', ':0'])).toThrow(/--metrics-addr/);
    expect(parseListenAddr(':65536', '10.0.1.10')).toBeUndefined();
  });
});
