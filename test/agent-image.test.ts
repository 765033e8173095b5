/**
 * What a user builds the agent image from (no root): the published Dockerfiles, the npm
 * tarball's contents, the generated runtime lock, and the DaemonSet -> podman translation.
 */
import { execFileSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { agentContainerSpec, CONTAINER_PODS_FILE, podmanRunArgs } from '../lib/emulate/agent-container';
import { agentRuntimeFiles } from '../scripts/agent-runtime-lock';
import { synthJson } from './helpers';

const ROOT = join(__dirname, '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

describe('building the agent image', () => {
  test('agent/runtime is what scripts/agent-runtime-lock.ts generates from package.json and package-lock.json', () => {
    const files = agentRuntimeFiles(ROOT);
    expect(read('agent/runtime/package.json')).toBe(files.packageJson);
    expect(read('agent/runtime/package-lock.json')).toBe(files.packageLock);
    const lock = JSON.parse(files.packageLock);
    expect(Object.keys(lock.packages).sort()).toEqual(['', 'node_modules/@opentelemetry/api', 'node_modules/bintrees', 'node_modules/prom-client', 'node_modules/tdigest', 'node_modules/yaml']);
  });

  test('both Dockerfiles: a current LTS Node on bookworm, netbase for nft, the same entrypoint', () => {
    for (const f of ['agent/Dockerfile', 'agent/Dockerfile.package']) {
      const text = read(f);
      const bases = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
      expect(bases.length).toBeGreaterThan(0);
      for (const b of bases) expect(`${f}: ${b}`).toMatch(/: node:(22|24)-bookworm-slim$/);
      expect(text).toMatch(/apt-get install -y --no-install-recommends iproute2 nftables conntrack netbase/);
      expect(text).toContain('ENTRYPOINT ["node", "dist/agent/main.js"]');
      // kubectl exec ... -- crossvpc doctor --live
      expect(text).toMatch(/^COPY agent\/runtime\/crossvpc \/usr\/local\/bin\/crossvpc$/m);
    }
    expect(read('agent/runtime/crossvpc')).toMatch(/^#!\/bin\/sh\n(#.*\n)*exec node \/app\/dist\/agent\/doctor\.js "\$@"\n$/);
  });

  test('the npm tarball holds every file agent/Dockerfile.package copies', () => {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    const copies = [...read('agent/Dockerfile.package').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(' '));
    expect(copies).toEqual(['agent/runtime/package.json', 'agent/runtime/package-lock.json', 'dist/agent', 'dist/lib/contract', 'agent/runtime/crossvpc']);
    for (const c of copies) expect(`${c}: ${files.some((f) => f === c || f.startsWith(`${c}/`))}`).toBe(`${c}: true`);
    for (const f of ['agent/Dockerfile.package', 'dist/agent/main.js', 'dist/agent/metrics.js', 'dist/agent/doctor.js', 'dist/lib/contract/index.js', 'dist/lib/contract/doctor-findings.js']) expect(files).toContain(f);
    // The image's crossvpc runs as a command: executable in the tarball (COPY keeps the mode).
    expect(packed[0].files.find((f: { path: string }) => f.path === 'agent/runtime/crossvpc')?.mode & 0o111).toBe(0o111);
  }, 60000);

  test('the synthesized DaemonSet becomes podman flags: node netns, NET_ADMIN only, read-only root, mounts, env', () => {
    const spec = agentContainerSpec(synthJson());
    const argv = podmanRunArgs(spec, {
      name: 'cvtest-agent-n1', image: 'localhost/crossvpc-agent:t', netns: 'cvtest-n1', nodeName: 'n1', nodeIp: '10.0.1.10',
      configMapDir: '/tmp/run/n1/configmap', podsFile: '/tmp/run/n1/pods.jsonl', logFile: '/tmp/run/n1/agent.log',
    });
    expect(argv).toEqual(['run', '--detach', '--name', 'cvtest-agent-n1', '--runtime', '/usr/sbin/runc',
      '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'ns:/run/netns/cvtest-n1',
      '--log-driver', 'k8s-file', '--log-opt', 'path=/tmp/run/n1/agent.log', '--pull', 'never',
      '--cap-drop=all', '--cap-add=NET_ADMIN', '--read-only', '--read-only-tmpfs=false', '--security-opt', 'no-new-privileges', '--memory', '160m',
      '--env', 'NODE_NAME=n1', '--env', 'NODE_IP=10.0.1.10', '--env', 'CROSSVPC_SYSCTL_ROOT=/host/proc/sys',
      '--volume', '/tmp/run/n1/configmap:/etc/crossvpc:ro', '--volume', '/proc/sys/net:/host/proc/sys/net:rw',
      '--volume', `/tmp/run/n1/pods.jsonl:${CONTAINER_PODS_FILE}:ro`,
      'localhost/crossvpc-agent:t', '--config', '/etc/crossvpc/tenants.json', '--pods', `file:${CONTAINER_PODS_FILE}`, '--metrics-addr', ':9740']);
    expect(podmanRunArgs(spec, { name: 'x', image: 'i', netns: 'n', nodeName: 'n1', nodeIp: '10.0.1.10', configMapDir: '/c', podsFile: '/p', logFile: '/l', withoutCaps: ['NET_ADMIN'] })).not.toContain('--cap-add=NET_ADMIN');
  });

  test('a security context the translation does not know is refused, not dropped', () => {
    const json = synthJson();
    const ds: any = Object.values(json.resource.kubernetes_daemon_set_v1)[0];
    ds.spec.template.spec.container[0].security_context.run_as_user = 1000;
    expect(() => agentContainerSpec(json)).toThrow(/security_context fields this emulation cannot translate to podman: run_as_user/);
    ds.spec.template.spec.container[0].security_context = { privileged: true };
    expect(() => podmanRunArgs(agentContainerSpec(json), { name: 'x', image: 'i', netns: 'n', nodeName: 'n1', nodeIp: '10.0.1.10', configMapDir: '/c', podsFile: '/p', logFile: '/l' })).toThrow(/privileged: refusing/);
  });
});
