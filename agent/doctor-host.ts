// `crossvpc doctor --live` on a node, the gatherer: reads the host (ip, bridge, nft) and the agent's endpoints. Never changes anything.
import * as http from 'http';
import { AgentConfig, NFT_TABLE, TUNNEL_DEV_PREFIX } from './config';
import { AgentEndpointFacts, NodeFacts, OtherRoute, UnderlayPath } from './doctor-checks';
import { Exec } from './exec';
import { readNodeCounters } from './node-table';
import { observeHost } from './tunnels';

export interface GatherOptions {
  readonly nodeIp?: string;
  /** Base URL of the agent's /metrics and /healthz; undefined: not checked. */
  readonly agentUrl?: string;
  readonly httpTimeoutMs?: number;
}

async function json(exec: Exec, argv: string[]): Promise<any[]> {
  const out = (await exec.run(argv)).stdout.trim();
  return out ? JSON.parse(out) : [];
}

const firstLine = (e: unknown) => String((e as Error).message ?? e).split('\n')[0];

/** All facts doctor checks, read in parallel where independent; read-only commands only. */
export async function gatherNodeFacts(exec: Exec, c: AgentConfig, opts: GatherOptions = {}): Promise<NodeFacts> {
  const [host, otherRoutes, nodeTable, underlay, agent] = await Promise.all([
    observeHost(exec),
    readOtherRoutes(exec),
    readNodeTable(exec),
    readUnderlay(exec, [...new Set(c.tenants.map((t) => t.haVip))]),
    opts.agentUrl ? readAgent(opts.agentUrl, opts.httpTimeoutMs ?? 3000) : Promise.resolve(undefined),
  ]);
  const fdb = new Map<string, string[]>();
  await Promise.all(host.links.filter((l) => l.kind === 'vxlan').map(async (l) => {
    const entries = await json(exec, ['bridge', '-j', 'fdb', 'show', 'dev', l.name]);
    fdb.set(l.name, entries.filter((e) => e.mac === '00:00:00:00:00:00' && typeof e.dst === 'string').map((e) => e.dst));
  }));
  return { nodeIp: opts.nodeIp, host, fdb, underlay, otherRoutes, nodeTable, agent };
}

/** Connected routes of the main table and the node's own addresses (local table), not on tunnel devices. */
async function readOtherRoutes(exec: Exec): Promise<OtherRoute[]> {
  const routes = await json(exec, ['ip', '-4', '-j', 'route', 'show', 'table', 'all']);
  const out: OtherRoute[] = [];
  for (const r of routes) {
    const table = r.table ?? 'main';
    const type = r.type ?? 'unicast';
    if (typeof r.dst !== 'string' || r.dst === 'default' || String(r.dev ?? '').startsWith(TUNNEL_DEV_PREFIX)) continue;
    // A route via a gateway is the underlay's way out (the VPC router), not a local network.
    if (table === 'main' && type === 'unicast' && !r.gateway) out.push({ table, type, dst: r.dst, dev: r.dev });
    if (table === 'local' && type === 'local' && r.dev !== 'lo') out.push({ table, type, dst: r.dst, dev: r.dev });
  }
  return out;
}

async function readNodeTable(exec: Exec): Promise<NodeFacts['nodeTable']> {
  try {
    const tables = JSON.parse((await exec.run(['nft', '-j', 'list', 'tables'])).stdout || '{}').nftables ?? [];
    if (!tables.some((i: any) => i.table?.family === 'inet' && i.table?.name === NFT_TABLE)) return { present: false };
    return { present: true, counters: await readNodeCounters(exec) };
  } catch (e) {
    return { error: firstLine(e) };
  }
}

/** `ip route get` per HaVip as the node's own (unmarked) packets see it, then the next hop's ARP state. */
async function readUnderlay(exec: Exec, haVips: string[]): Promise<Map<string, UnderlayPath>> {
  const out = new Map<string, UnderlayPath>();
  await Promise.all(haVips.map(async (ip) => {
    let route: any;
    try {
      [route] = await json(exec, ['ip', '-4', '-j', 'route', 'get', ip]);
    } catch (e) {
      out.set(ip, { error: firstLine(e).replace(/^.*?: /, '') });
      return;
    }
    const dev: string | undefined = route?.dev;
    const via: string | undefined = route?.gateway;
    if (!dev) return void out.set(ip, { error: 'no route' });
    const [neigh] = await json(exec, ['ip', '-4', '-j', 'neigh', 'show', 'to', via ?? ip, 'dev', dev]);
    const state = Array.isArray(neigh?.state) ? neigh.state[0] : neigh?.state;
    out.set(ip, { dev, via, neighbourState: state });
  }));
  return out;
}

/** Prometheus text format, only what doctor reads: name -> labels text -> value. */
export function parseMetricsText(text: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const byLabels = out.get(m[1]) ?? new Map<string, number>();
    byLabels.set(m[2] ?? '', Number(m[3]));
    out.set(m[1], byLabels);
  }
  return out;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function readAgent(url: string, timeoutMs: number): Promise<AgentEndpointFacts> {
  try {
    const health = await get(`${url}/healthz`, timeoutMs);
    const m = await get(`${url}/metrics`, timeoutMs).catch(() => undefined);
    return { url, health, metrics: m?.status === 200 ? parseMetricsText(m.body) : undefined };
  } catch (e) {
    return { url, error: firstLine(e) };
  }
}
