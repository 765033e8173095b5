import { ChildProcess, execFile } from 'child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { compiled, sleep, spawnLogged } from './sys';
import { Topology } from './topology';
import { wirePod, Wiring } from './wiring';
import { AGENT_CONFIG_KEY } from '../contract';

export interface Pod {
  readonly name: string;
  readonly node: number;
  readonly ns: string;
  readonly ip: string;
  readonly tenant?: string;
}

export interface ClusterOptions {
  readonly topo: Topology;
  readonly wiring: Wiring;
  readonly runDir: string;
  readonly progress: (msg: string) => void;
  /** The function VPC CIDR: pods get addresses in its x.y.(z+100+node).0/24. */
  readonly functionCidr: () => string;
  /** Where a labelled pod's tenant Redis answers (readiness). */
  readonly probeAddress: (tenant: string) => string;
}

/**
 * The Kubernetes side: a node agent per node, fed the ConfigMap's tenant table and a pod
 * event stream (pods.jsonl) as the API server would; pods wired like a routed CNI.
 */
export class Cluster {
  private readonly agents: ChildProcess[] = [];
  private readonly podList: Pod[] = [];
  private readonly readyMs = new Map<string, number>();
  private podLabelKey = '';

  constructor(private readonly opts: ClusterOptions) {}

  nodeDir(i: number): string {
    return join(this.opts.runDir, `n${i + 1}`);
  }

  async startAgents(agentConfigText: string): Promise<void> {
    this.podLabelKey = JSON.parse(agentConfigText).podLabelKey;
    const entry = compiled('dist/agent/main.js');
    const { wiring } = this.opts;
    for (let i = this.agents.length; i < wiring.nodeCount(); i++) {
      const dir = this.nodeDir(i);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, AGENT_CONFIG_KEY), agentConfigText);
      writeFileSync(join(dir, 'pods.jsonl'), '');
      this.agents.push(spawnLogged('ip', ['netns', 'exec', wiring.nodeNs(i), process.execPath, entry,
        '--config', join(dir, AGENT_CONFIG_KEY), '--node-ip', wiring.nodeIp(i), '--node-name', `n${i + 1}`,
        '--pods', `file:${join(dir, 'pods.jsonl')}`, '--ready-file', join(dir, 'ready')], join(dir, 'agent.log')));
    }
    const t0 = Date.now();
    while (!this.agents.every((_, i) => existsSync(join(this.nodeDir(i), 'ready')))) {
      if (Date.now() - t0 > 90000) throw new Error(`node agents not ready within 90 s (logs: ${this.opts.runDir}/n*/agent.log)`);
      await sleep(50);
    }
    this.opts.progress(`node agents ready on ${this.agents.length} nodes after ${Date.now() - t0} ms (exact ConfigMap tenant table)`);
  }

  /** A new ConfigMap version: every agent watches its file. */
  updateAgentConfig(agentConfigText: string): void {
    this.podLabelKey = JSON.parse(agentConfigText).podLabelKey;
    for (let i = 0; i < this.agents.length; i++) writeFileSync(join(this.nodeDir(i), AGENT_CONFIG_KEY), agentConfigText);
  }

  pods(): readonly Pod[] {
    return [...this.podList];
  }

  /** A pod namespace wired to its node; announce it with announcePods. */
  createPod(node: number, tenant: string | undefined): Pod {
    const onNode = this.podList.filter((p) => p.node === node);
    const k = onNode.length;
    const name = `n${node + 1}-${tenant ?? 'unlabelled'}${onNode.some((p) => p.tenant === tenant) ? `-${k}` : ''}`;
    const ns = this.opts.topo.addNs(`p${node + 1}${k}`);
    const fn = this.opts.functionCidr().split('/')[0].split('.').map(Number);
    const ip = `${fn[0]}.${fn[1]}.${fn[2] + 100 + node}.${10 + k}`;
    wirePod(this.opts.topo, ns, this.opts.wiring.nodeNs(node), `vp${k}`, ip);
    const pod = { name, node, ns, ip, tenant };
    this.podList.push(pod);
    return pod;
  }

  /** A watch event for the pod's node agent. */
  podEvent(pod: Pod, type: 'ADDED' | 'DELETED'): void {
    const labels = pod.tenant ? { [this.podLabelKey]: pod.tenant } : {};
    const ev = { type, object: { metadata: { name: pod.name, namespace: 'functions', uid: `uid-${pod.ns}`, labels }, status: { podIP: pod.ip, phase: 'Running' }, spec: {} } };
    appendFileSync(join(this.nodeDir(pod.node), 'pods.jsonl'), `${JSON.stringify(ev)}\n`);
  }

  redis(pod: Pod, host: string, args: string[], timeoutSec = 2): string {
    return this.opts.topo.exec(pod.ns, 'timeout', [String(timeoutSec), 'redis-cli', '-h', host, '-p', '6379', ...args], { allowFail: true, timeoutMs: (timeoutSec + 2) * 1000 }).trim();
  }

  /** redis() without blocking the event loop: for probes that run while other work goes on. */
  redisAsync(pod: Pod, host: string, args: string[], timeoutSec = 2): Promise<string> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', pod.ns, 'timeout', String(timeoutSec), 'redis-cli', '-h', host, '-p', '6379', ...args], { timeout: (timeoutSec + 2) * 1000, encoding: 'utf8' }, (_err, stdout) => resolve(String(stdout ?? '').trim()));
    });
  }

  /**
   * Announce pods to their agents and (with `wait`) time each labelled pod from event to first
   * Redis reply, up to 10 s.
   */
  async announcePods(pods: readonly Pod[], wait = true): Promise<void> {
    this.opts.progress(`announcing ${pods.length} pods (${pods.map((p) => p.name).join(', ')})`);
    const t0 = Date.now();
    for (const p of pods) this.podEvent(p, 'ADDED');
    if (!wait) return;
    const pending = pods.filter((p) => p.tenant);
    while (pending.length && Date.now() - t0 < 10000) {
      for (const p of [...pending]) {
        // Short attempts: a SYN sent before the agent binds the pod is dropped, and a real
        // client would wait a full retransmit for it; a fresh attempt measures the binding.
        if (this.redis(p, this.opts.probeAddress(p.tenant!), ['ping'], 0.1) === 'PONG') {
          this.readyMs.set(p.name, Date.now() - t0);
          pending.splice(pending.indexOf(p), 1);
        }
      }
      await sleep(20);
    }
    const times = pods.filter((p) => p.tenant).map((p) => `${p.name} ${this.readyMs.has(p.name) ? `${this.readyMs.get(p.name)} ms` : 'never'}`);
    this.opts.progress(`pod event -> first Redis reply: ${times.join(', ')}`);
  }

  /** One pod per tenant (and one unlabelled) on every node, announced together; `wait` as in announcePods. */
  async addPodsForTenants(tenants: readonly string[], unlabelled: boolean, wait = true): Promise<Pod[]> {
    const fresh: Pod[] = [];
    for (let n = 0; n < this.opts.wiring.nodeCount(); n++) {
      for (const t of [...tenants, ...(unlabelled ? [undefined] : [])]) fresh.push(this.createPod(n, t));
    }
    if (fresh.length) await this.announcePods(fresh, wait);
    return fresh;
  }

  /** One long-lived INCR connection from a pod; see incr-client.ts. */
  startIncrClient(pod: Pod, address: string, key: string): { statusFile: string; child: ChildProcess } {
    const script = compiled('dist/lib/emulate/incr-client.js');
    const statusFile = join(this.opts.runDir, `incr-${pod.name}-${key.replace(/[^a-z0-9]/gi, '_')}.json`);
    const child = spawnLogged('ip', ['netns', 'exec', pod.ns, process.execPath, script, address, key, statusFile, '3000'], join(this.opts.runDir, `incr-${pod.name}.log`));
    return { statusFile, child };
  }

  /** Pod event -> first Redis reply, per labelled pod that got one. */
  podReadyMs(): Record<string, number> {
    return Object.fromEntries(this.readyMs);
  }
}
