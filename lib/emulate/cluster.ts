import { ChildProcess, execFile } from 'child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { AgentContainerSpec, podman, podmanRunArgs, removeContainers } from './agent-container';
import { ArmedProbe, armReadyProbe } from './ready-probe';
import { compiled, ok, sh, sleep, spawnLogged } from './sys';
import { Topology } from './topology';
import { wirePod, Wiring } from './wiring';
import { AGENT_CONFIG_KEY, AGENT_METRIC, cidrHost as cidrhost } from '../contract';

export interface Pod {
  readonly name: string;
  readonly node: number;
  readonly ns: string;
  readonly ip: string;
  readonly tenant?: string;
}

/** One labelled pod's readiness, in ms after its watch event was published (sub-ms resolution). */
export interface PodReadiness {
  /** Wall-clock ms (Date.now) when the event was published: to line it up with the agent's log. */
  readonly publishedAt: number;
  /** Start of the connection attempt that got the first reply: the binding is in place by then (within the probe's 1 ms step). */
  readonly attemptMs: number;
  /** That attempt's TCP handshake done: the first SYN through node, tunnel and gateway answered. */
  readonly connectedMs: number;
  /** First Redis reply (+PONG) seen by the pod. */
  readonly replyMs: number;
  readonly attempts: number;
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
  /** The port of the DaemonSet's --metrics-addr: agents run as processes serve /metrics there too. */
  readonly metricsPort: () => number;
  /** Run each node's agent as a podman container with the DaemonSet's spec, instead of a process. */
  readonly container?: () => AgentContainerOptions;
}

export interface AgentContainerOptions {
  /** A local image (see agent-image.ts); never pulled. */
  readonly image: string;
  /** The synthesized DaemonSet's agent container. */
  readonly spec: AgentContainerSpec;
  /** Container names are `<prefix>-agent-n<i>`: the run's own, removed by stopAgents. */
  readonly namePrefix: string;
}

/**
 * The Kubernetes side: a node agent per node, fed the ConfigMap's tenant table and a pod
 * event stream (pods.jsonl) as the API server would; pods wired like a routed CNI.
 */
export class Cluster {
  private readonly agents: Array<ChildProcess | string> = [];
  private readonly podList: Pod[] = [];
  private readonly readiness = new Map<string, PodReadiness>();
  private podLabelKey = '';

  constructor(private readonly opts: ClusterOptions) {}

  nodeDir(i: number): string {
    return join(this.opts.runDir, `n${i + 1}`);
  }

  async startAgents(agentConfigText: string): Promise<void> {
    this.podLabelKey = JSON.parse(agentConfigText).podLabelKey;
    const entry = compiled('dist/agent/main.js');
    const { wiring } = this.opts;
    const container = this.opts.container?.();
    // From the first start (podman run included) to every agent ready.
    const t0 = Date.now();
    for (let i = this.agents.length; i < wiring.nodeCount(); i++) {
      const dir = this.nodeDir(i);
      mkdirSync(this.configMapDir(i), { recursive: true });
      writeFileSync(this.configFile(i), agentConfigText);
      writeFileSync(join(dir, 'pods.jsonl'), '');
      if (container) {
        const name = `${container.namePrefix}-agent-n${i + 1}`;
        // Recorded before it starts, so a failed start is removed too.
        this.agents.push(name);
        podman(podmanRunArgs(container.spec, {
          name, image: container.image, netns: wiring.nodeNs(i), nodeName: `n${i + 1}`, nodeIp: wiring.nodeIp(i),
          configMapDir: this.configMapDir(i), podsFile: join(dir, 'pods.jsonl'), logFile: join(dir, 'agent.log'),
        }));
        continue;
      }
      this.agents.push(spawnLogged('ip', ['netns', 'exec', wiring.nodeNs(i), process.execPath, entry,
        '--config', this.configFile(i), '--node-ip', wiring.nodeIp(i), '--node-name', `n${i + 1}`,
        '--pods', `file:${join(dir, 'pods.jsonl')}`, '--ready-file', join(dir, 'ready'), '--metrics-addr', `:${this.opts.metricsPort()}`], join(dir, 'agent.log')));
    }
    const ready = (i: number) => (container ? this.containerReady(i) : existsSync(join(this.nodeDir(i), 'ready')));
    while (!this.agents.every((_, i) => ready(i))) {
      if (Date.now() - t0 > 90000) {
        const why = container ? this.agents.map((_, i) => `; n${i + 1} /healthz: ${this.healthz(i) || 'no answer'}`).join('') : '';
        throw new Error(`node agents not ready within 90 s (logs: ${this.opts.runDir}/n*/agent.log)${why}`);
      }
      await sleep(container ? 200 : 50);
    }
    this.opts.progress(`node agents ready on ${this.agents.length} nodes after ${Date.now() - t0} ms (exact ConfigMap tenant table${container ? `; containers of ${container.image} with the DaemonSet's security context, ready = GET /healthz 200` : ''})`);
  }

  /** The container's agent answers /healthz 200 on the node IP, as kubelet's probe asks; an exited container fails at once. */
  private containerReady(i: number): boolean {
    const name = this.agents[i] as string;
    const port = metricsPortOf(this.opts.container!().spec.args);
    if (ok('ip', ['netns', 'exec', this.opts.wiring.nodeNs(i), 'curl', '-sf', '-m', '1', `http://${this.opts.wiring.nodeIp(i)}:${port}/healthz`], 3000)) return true;
    const state = podman(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]).trim();
    if (!state.startsWith('running')) {
      const log = podman(['logs', '--tail', '5', name]).trim();
      throw new Error(`agent container ${name} on n${i + 1} is ${state} (status, exit code): ${log}`);
    }
    return false;
  }

  /** The body of the node agent's /healthz (a container's), '' without an answer. */
  private healthz(i: number): string {
    const port = metricsPortOf(this.opts.container!().spec.args);
    return sh('ip', ['netns', 'exec', this.opts.wiring.nodeNs(i), 'curl', '-s', '-m', '1', `http://${this.opts.wiring.nodeIp(i)}:${port}/healthz`], { allowFail: true, timeoutMs: 3000 }).trim().slice(0, 300);
  }

  /** The node's ConfigMap volume (a directory holding tenants.json). */
  configMapDir(i: number): string {
    return join(this.nodeDir(i), 'configmap');
  }

  configFile(i: number): string {
    return join(this.configMapDir(i), AGENT_CONFIG_KEY);
  }

  /** Names of the run's agent containers (empty when agents are processes). */
  containerNames(): string[] {
    return this.agents.filter((a): a is string => typeof a === 'string');
  }

  /** Remove the run's agent containers (processes end with their namespaces). Synchronous. */
  stopAgents(): void {
    removeContainers(this.containerNames());
  }

  /** A new ConfigMap version: every agent watches its file. */
  updateAgentConfig(agentConfigText: string): void {
    this.podLabelKey = JSON.parse(agentConfigText).podLabelKey;
    for (let i = 0; i < this.agents.length; i++) writeFileSync(this.configFile(i), agentConfigText);
  }

  /**
   * A new ConfigMap version, then wait (bounded) until every agent has swapped its table for
   * it: the count of full applies in its reconcile histogram went up (a reload always swaps
   * the whole table). Agents check their file every few seconds; this is for a change that
   * must not act before the agents do (a peering routed before they guard it).
   */
  async updateAgentConfigApplied(agentConfigText: string, timeoutMs = 20_000): Promise<number> {
    const before = this.agents.map((_, i) => this.fullApplies(i));
    const t0 = Date.now();
    this.updateAgentConfig(agentConfigText);
    const pending = () => this.agents.map((_, i) => i).filter((i) => !(this.fullApplies(i) > before[i]));
    while (pending().length && Date.now() - t0 < timeoutMs) await sleep(100);
    const late = pending();
    if (late.length) throw new Error(`node agent(s) ${late.map((i) => `n${i + 1}`).join(', ')} did not apply the new ConfigMap within ${timeoutMs} ms (logs: ${this.opts.runDir}/n*/agent.log)`);
    return Date.now() - t0;
  }

  /** Full table swaps agent i has made: its reconcile histogram's kind="full" count; -1 when its /metrics does not answer. */
  private fullApplies(i: number): number {
    const port = typeof this.agents[i] === 'string' ? metricsPortOf(this.opts.container!().spec.args) : this.opts.metricsPort();
    const text = sh('ip', ['netns', 'exec', this.opts.wiring.nodeNs(i), 'curl', '-s', '-m', '1', `http://${this.opts.wiring.nodeIp(i)}:${port}/metrics`], { allowFail: true, timeoutMs: 3000 });
    const m = new RegExp(`^${AGENT_METRIC.reconcileSeconds}_count\\{kind="full"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : -1;
  }

  pods(): readonly Pod[] {
    return [...this.podList];
  }

  /** The /24 of the function VPC range a node's pods take addresses from: x.y.(z+100+node).0/24. */
  podNet(node: number): string {
    const fn = this.opts.functionCidr().split('/')[0].split('.').map(Number);
    return `${fn[0]}.${fn[1]}.${fn[2] + 100 + node}.0/24`;
  }

  /** A pod namespace wired to its node; announce it with announcePods. */
  createPod(node: number, tenant: string | undefined): Pod {
    const onNode = this.podList.filter((p) => p.node === node);
    const k = onNode.length;
    const name = `n${node + 1}-${tenant ?? 'unlabelled'}${onNode.some((p) => p.tenant === tenant) ? `-${k}` : ''}`;
    const ns = this.opts.topo.addNs(`p${node + 1}${k}`);
    const ip = cidrhost(this.podNet(node), 10 + k);
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
   * Announce pods to their agents and (with `wait`) time each labelled pod from its event to
   * the first Redis reply, up to 10 s. A probe per pod is started and trying before the event
   * is published, so its start-up is not counted; it retries every 1 ms when one pod is
   * announced, every n ms for n pods (the same attempt rate on this 2-vCPU host).
   */
  async announcePods(pods: readonly Pod[], wait = true): Promise<void> {
    this.opts.progress(`announcing ${pods.length} pods (${pods.map((p) => p.name).join(', ')})`);
    const labelled = wait ? pods.filter((p) => p.tenant) : [];
    const script = compiled('dist/lib/emulate/ready-probe.js');
    const settled = await Promise.allSettled(labelled.map((p) => armReadyProbe(script, p.ns, this.opts.probeAddress(p.tenant!), 6379, 10_000, labelled.length)));
    const probes = new Map<Pod, ArmedProbe>();
    settled.forEach((r, k) => r.status === 'fulfilled' && probes.set(labelled[k], r.value));
    try {
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const published = new Map<Pod, bigint>();
      const publishedAt = new Map<Pod, number>();
      for (const p of pods) {
        publishedAt.set(p, Date.now());
        published.set(p, process.hrtime.bigint());
        this.podEvent(p, 'ADDED');
      }
      const ms = (ns: string | undefined, p: Pod) => Number(BigInt(ns!) - published.get(p)!) / 1e6;
      for (const [p, probe] of probes) {
        const r = await probe.result;
        if (r.replyNs === undefined) continue;
        this.readiness.set(p.name, { publishedAt: publishedAt.get(p)!, attemptMs: ms(r.attemptStartedNs, p), connectedMs: ms(r.connectedNs, p), replyMs: ms(r.replyNs, p), attempts: r.attempts });
      }
    } finally {
      for (const probe of probes.values()) probe.kill();
    }
    if (!wait) return;
    const times = labelled.map((p) => `${p.name} ${this.readiness.has(p.name) ? `${this.readiness.get(p.name)!.replyMs.toFixed(1)} ms` : 'never'}`);
    this.opts.progress(`pod event -> first Redis reply (probe step ${labelled.length} ms): ${times.join(', ')}`);
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

  /** Pod event -> first Redis reply (ms), per labelled pod that got one. */
  podReadyMs(): Record<string, number> {
    return Object.fromEntries([...this.readiness].map(([name, r]) => [name, r.replyMs]));
  }

  /** The timeline behind podReadyMs, per labelled pod that got a reply. */
  podReadiness(): Record<string, PodReadiness> {
    return Object.fromEntries(this.readiness);
  }
}

/** The port of the DaemonSet's `--metrics-addr [ip]:port` (the agent's default otherwise). */
export function metricsPortOf(args: readonly string[]): number {
  const i = args.indexOf('--metrics-addr');
  const port = i >= 0 ? Number(/:(\d+)$/.exec(args[i + 1] ?? '')?.[1]) : 9740;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`the DaemonSet's --metrics-addr ${args[i + 1]} has no port`);
  return port;
}
