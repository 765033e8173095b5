import { createServer, Server } from 'http';
import type { AddressInfo } from 'net';
import { AGENT_METRICS_PORT } from '../lib/contract';
import type { Health } from './reconciler';

/** The agent's host port for the DaemonSet's probes and Prometheus, unless --metrics-addr says otherwise. */
export const DEFAULT_METRICS_PORT = AGENT_METRICS_PORT;

export interface MetricsEndpoints {
  metrics(): Promise<{ contentType: string; body: string }>;
  health(): Health;
}

/** `[ip]:port`; an empty ip means the node IP. */
export function parseListenAddr(value: string, nodeIp: string): { host: string; port: number } | undefined {
  const m = /^((?:\d{1,3}\.){3}\d{1,3})?:(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? nodeIp, port };
}

/**
 * GET /metrics (Prometheus text format) and GET /healthz (200 "ok" or 503 with the reason),
 * nothing else. Resolves once listening; rejects if the address cannot be bound.
 */
export async function serveMetrics(host: string, port: number, ep: MetricsEndpoints): Promise<Server & { url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    if (path === '/healthz') {
      const h = ep.health();
      return send(h.ok ? 200 : 503, 'text/plain; charset=utf-8', `${h.reason}\n`);
    }
    if (path === '/metrics') {
      ep.metrics().then(
        (m) => send(200, m.contentType, m.body),
        (e) => send(500, 'text/plain; charset=utf-8', `metrics failed: ${(e as Error).message}\n`),
      );
      return;
    }
    send(404, 'text/plain; charset=utf-8', 'not found: GET /metrics or /healthz\n');
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return Object.assign(server, { url: `http://${a.address}:${a.port}` });
}
