import { execFileSync } from 'child_process';

/**
 * The synthesized DaemonSet's agent container translated to `podman run` flags, so the
 * emulation runs the agent with the exact security context, args, env and mounts it would
 * get on a node. Anything in the spec this translation does not know is an error, never
 * silently dropped.
 */

export interface AgentContainerSpec {
  readonly args: readonly string[];
  /** Literal values, and fieldRefs by path (spec.nodeName, status.hostIP). */
  readonly env: ReadonlyArray<{ name: string; value?: string; fieldPath?: string }>;
  readonly hostNetwork: boolean;
  readonly readOnlyRoot: boolean;
  readonly allowPrivilegeEscalation: boolean;
  readonly privileged: boolean;
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  /** volume mounts resolved against the pod's volumes. */
  readonly mounts: ReadonlyArray<{ mountPath: string; readOnly: boolean; configMap?: string; hostPath?: string }>;
  readonly memoryLimit?: string;
}

const one = (v: any) => (Array.isArray(v) ? v[0] : v);
const list = (v: any): any[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The agent container of the one kubernetes_daemon_set_v1 in a synthesized cdk.tf.json. */
export function agentContainerSpec(json: any): AgentContainerSpec {
  const sets = Object.entries<any>(json.resource?.kubernetes_daemon_set_v1 ?? {});
  if (sets.length !== 1) throw new Error(`cdk.tf.json: expected one kubernetes_daemon_set_v1 (the node agent), found ${sets.length}`);
  const [id, ds] = sets[0];
  const pod = one(one(one(ds.spec).template).spec);
  const containers = list(pod?.container);
  if (containers.length !== 1) throw new Error(`DaemonSet ${id}: expected one container, found ${containers.length}`);
  const c = containers[0];
  const sc = one(c.security_context) ?? {};
  const known = new Set(['allow_privilege_escalation', 'capabilities', 'privileged', 'read_only_root_filesystem']);
  const unknown = Object.keys(sc).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`DaemonSet ${id}: security_context fields this emulation cannot translate to podman: ${unknown.join(', ')}`);
  const caps = one(sc.capabilities) ?? {};
  const volumes = new Map(list(pod.volume).map((v: any) => [v.name, v]));
  const mounts = list(c.volume_mount).map((m: any) => {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`DaemonSet ${id}: volume_mount ${m.name} has no volume`);
    const configMap = one(v.config_map)?.name;
    const hostPath = one(v.host_path)?.path;
    if (!configMap && !hostPath) throw new Error(`DaemonSet ${id}: volume ${m.name} is neither a configMap nor a hostPath`);
    return { mountPath: m.mount_path, readOnly: m.read_only === true, configMap, hostPath };
  });
  const env = list(c.env).map((e: any) => {
    const fieldPath = one(one(e.value_from)?.field_ref)?.field_path;
    if (e.value === undefined && !fieldPath) throw new Error(`DaemonSet ${id}: env ${e.name} is neither a value nor a fieldRef`);
    return { name: e.name, value: e.value, fieldPath };
  });
  return {
    args: list(c.args),
    env,
    hostNetwork: pod.host_network === true,
    readOnlyRoot: sc.read_only_root_filesystem === true,
    allowPrivilegeEscalation: sc.allow_privilege_escalation !== false,
    privileged: sc.privileged === true,
    capAdd: list(caps.add),
    capDrop: list(caps.drop),
    mounts,
    memoryLimit: one(c.resources)?.limits?.memory,
  };
}

export interface AgentContainerRun {
  readonly name: string;
  readonly image: string;
  /** The node's network namespace (hostNetwork): /run/netns/<ns>. */
  readonly netns: string;
  readonly nodeName: string;
  readonly nodeIp: string;
  /** Host directory standing in for the ConfigMap volume (holds tenants.json). */
  readonly configMapDir: string;
  /** The pod event file standing in for the API server: mounted read-only, --pods kube becomes --pods file:. */
  readonly podsFile: string;
  readonly logFile: string;
  /** Test knob: drop these from the capabilities the DaemonSet adds (e.g. NET_ADMIN). */
  readonly withoutCaps?: readonly string[];
}

/** Where the pod event file appears inside the container. */
export const CONTAINER_PODS_FILE = '/run/crossvpc-emulate/pods.jsonl';
/** This sandbox's hard limits are below podman's defaults: explicit, modest values. */
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** `podman run` argv (without "podman") for the spec on one emulated node. */
export function podmanRunArgs(spec: AgentContainerSpec, r: AgentContainerRun): string[] {
  if (!spec.hostNetwork) throw new Error('the DaemonSet is not hostNetwork: the emulation runs the agent in the node namespace only');
  if (spec.privileged) throw new Error('the DaemonSet is privileged: refusing, the agent must run with NET_ADMIN only');
  const args = [...spec.args];
  const p = args.indexOf('--pods');
  if (p < 0 || args[p + 1] !== 'kube') throw new Error(`the DaemonSet's args ${JSON.stringify(spec.args)} lack '--pods kube', which the emulation replaces by its event file`);
  args[p + 1] = `file:${CONTAINER_PODS_FILE}`;
  const out = ['run', '--detach', '--name', r.name, '--runtime', '/usr/sbin/runc', ...ULIMITS,
    '--network', `ns:/run/netns/${r.netns}`,
    '--log-driver', 'k8s-file', '--log-opt', `path=${r.logFile}`,
    '--pull', 'never'];
  for (const c of spec.capDrop) out.push(`--cap-drop=${c.toLowerCase() === 'all' ? 'all' : c}`);
  for (const c of spec.capAdd) if (!(r.withoutCaps ?? []).includes(c)) out.push(`--cap-add=${c}`);
  if (spec.readOnlyRoot) out.push('--read-only', '--read-only-tmpfs=false');
  if (!spec.allowPrivilegeEscalation) out.push('--security-opt', 'no-new-privileges');
  if (spec.memoryLimit) {
    const m = /^(\d+)Mi$/.exec(spec.memoryLimit);
    if (!m) throw new Error(`memory limit ${spec.memoryLimit}: only <n>Mi is translated`);
    out.push('--memory', `${m[1]}m`);
  }
  for (const e of spec.env) {
    const value = e.value ?? (e.fieldPath === 'spec.nodeName' ? r.nodeName : e.fieldPath === 'status.hostIP' ? r.nodeIp : undefined);
    if (value === undefined) throw new Error(`env ${e.name}: fieldRef ${e.fieldPath} is not emulated`);
    out.push('--env', `${e.name}=${value}`);
  }
  for (const m of spec.mounts) {
    const src = m.configMap ? r.configMapDir : m.hostPath!;
    out.push('--volume', `${src}:${m.mountPath}:${m.readOnly || m.configMap ? 'ro' : 'rw'}`);
  }
  out.push('--volume', `${r.podsFile}:${CONTAINER_PODS_FILE}:ro`);
  out.push(r.image, ...args);
  return out;
}

/** Run podman, bounded; the error names the command and podman's message. */
export function podman(args: string[], timeoutMs = 60_000): string {
  try {
    return execFileSync('podman', args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e: any) {
    throw new Error(`podman ${args.join(' ')} failed: ${String(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Remove containers this run created, by exact name; synchronous for signal handlers. */
export function removeContainers(names: readonly string[]): void {
  if (!names.length) return;
  try {
    execFileSync('podman', ['rm', '--force', '--time', '2', '--ignore', ...names], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    /* reported by the caller's checks; never fatal in teardown */
  }
}
