/**
 * The node agent under a real container runtime: the image built here without a registry
 * (mmdebstrap + podman import), run by podman/runc with the synthesized DaemonSet's
 * security context in the emulation's node namespaces. Needs root on Linux, podman, runc,
 * mmdebstrap (and what the emulation needs); with CI=true it fails instead of skipping.
 */
import { execFileSync, spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { agentContainerSpec, podman, podmanRunArgs, removeContainers } from '../lib/emulate/agent-container';
import { AgentImage, buildAgentImage, removeAgentImage } from '../lib/emulate/agent-image';
import { Emulation } from '../lib/emulate/emulator';
import { loadEmulatedPlan } from '../lib/emulate/member-image';
import { sleep } from '../lib/emulate/sys';
import { Topology } from '../lib/emulate/topology';
import type { LiveDoctorReport } from '../agent/doctor';
import { haveTool, isRootLinux, synthStackDir } from './helpers';

const canRun = isRootLinux() && haveTool('podman') && haveTool('/usr/sbin/runc', ['--version']) && haveTool('mmdebstrap', ['--version'])
  && haveTool('keepalived', ['--version']) && haveTool('redis-server', ['--version']);
const maybe = canRun ? describe : describe.skip;
jest.setTimeout(300_000);

const synth = () => synthStackDir();

const lines: string[] = [];
const log = (l: string) => lines.push(l);

/** `crossvpc doctor --live` inside an agent container, as `kubectl exec` runs it: no flags (the agent's own say where). */
function doctorIn(container: string, json = true): { code: number | null; report?: LiveDoctorReport; text: string; wallMs: number } {
  const t0 = Date.now();
  const r = spawnSync('podman', ['exec', container, 'crossvpc', 'doctor', '--live', ...(json ? ['--json'] : [])], { encoding: 'utf8', timeout: 60_000 });
  const wallMs = Date.now() - t0;
  if (r.stderr.trim()) log(`doctor in ${container} stderr: ${r.stderr.trim()}`);
  return { code: r.status, report: json && r.status !== null && r.status <= 2 && r.stdout ? JSON.parse(r.stdout) : undefined, text: r.stdout, wallMs };
}

const notInfo = (r: LiveDoctorReport | undefined) => (r?.findings ?? []).filter((f) => f.severity !== 'info');
const isUp = (linkJson: string) => (JSON.parse(linkJson)[0]?.flags ?? []).includes('UP');

maybe('the node agent in a podman container with the DaemonSet\'s security context', () => {
  let cache: string;
  let image: AgentImage;
  let stackDir: string;

  beforeAll(() => {
    cache = mkdtempSync(join(tmpdir(), 'crossvpc-oci-'));
    const t0 = Date.now();
    image = buildAgentImage({ tag: `localhost/crossvpc-agent:test-${process.pid}`, cacheDir: cache, progress: log });
    log(`image built in ${Date.now() - t0} ms`);
    stackDir = synth();
  }, 600_000);

  afterAll(() => {
    if (image) removeAgentImage(image.tag);
    if (cache) rmSync(cache, { recursive: true, force: true });
    // The figures the README quotes.
    process.stdout.write(`${lines.filter((l) => /rootfs|image|node agents ready|doctor|set cx1001 up/.test(l)).join('\n')}\n`);
  });

  test('the image: Debian\'s nodejs runs the agent from /app with the entrypoint agent/Dockerfile has', () => {
    expect(image.nodeVersion).toMatch(/^v(1[89]|2\d)\./);
    const cfg = JSON.parse(podman(['image', 'inspect', '--format', '{{json .Config}}', image.tag]));
    expect(cfg.Entrypoint).toEqual(['node', 'dist/agent/main.js']);
    expect(cfg.WorkingDir).toBe('/app');
    expect(image.sizeBytes).toBeLessThan(400e6);
  });

  test('pods are bound and reach their own tenant through the containerized agents; root read-only, NET_ADMIN only, the node namespace; crossvpc doctor --live in the container names a downed tunnel device', async () => {
    const emu = new Emulation({ stackDir, nodes: 2, log, agentRuntime: 'podman', agentImage: image.tag });
    const names: string[] = [];
    try {
      await emu.start();
      names.push(...emu.agentContainers());
      expect(names).toEqual([`${emu.prefix}-agent-n1`, `${emu.prefix}-agent-n2`]);
      const r = await emu.matrix({ attacks: false });
      expect(r.checks.filter((c) => !c.pass)).toEqual([]);
      expect(r.reached['n1-alpha']).toEqual(['alpha']);
      expect(r.reached['n1-beta']).toEqual(['beta']);
      expect(r.reached['n2-alpha']).toEqual(['alpha']);
      expect(r.reached['n2-beta']).toEqual(['beta']);
      expect(r.reached['n1-unlabelled']).toBeUndefined();
      for (const [i, name] of names.entries()) {
        const [pid, ro, caps] = podman(['inspect', '--format', '{{.State.Pid}} {{.HostConfig.ReadonlyRootfs}} {{json .EffectiveCaps}}', name]).trim().split(' ');
        expect(ro).toBe('true');
        expect(JSON.parse(caps)).toEqual(['CAP_NET_ADMIN']);
        // The kernel's view of the agent process (node, PID 1 of the container).
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        expect(/^CapEff:\s*(\S+)$/m.exec(status)?.[1]).toBe('0000000000001000');
        expect(/^CapBnd:\s*(\S+)$/m.exec(status)?.[1]).toBe('0000000000001000');
        expect(/^NoNewPrivs:\s*(\S+)$/m.exec(status)?.[1]).toBe('1');
        expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual(['node', 'dist/agent/main.js']);
        const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
        expect(rootMount?.split(' ')[5].split(',')).toContain('ro');
        // hostNetwork: the container's network namespace is the node's.
        expect(statSync(`/proc/${pid}/ns/net`).ino).toBe(statSync(`/run/netns/${emu.nodeNs(i)}`).ino);
        expect(readlinkSync(`/proc/${pid}/ns/net`)).toMatch(/^net:\[\d+\]$/);
        // The agent wrote the tunnels' sysctls through /host/proc/sys/net (CROSSVPC_SYSCTL_ROOT), into the node's namespace.
        expect(emu.exec(emu.nodeNs(i), 'sysctl', ['-n', 'net.ipv4.conf.cx1001.rp_filter']).trim()).toBe('0');
        const agentLog = readFileSync(emu.agentLogFile(i), 'utf8');
        expect(agentLog).toMatch(/"msg":"serving \/metrics and \/healthz"/);
      }

      // crossvpc doctor --live, shipped in the image. Control: both healthy nodes are clean.
      for (const name of names) {
        const d = doctorIn(name);
        log(`doctor --live in ${name}: exit ${d.code}, ${d.report?.elapsedMs} ms inside, ${d.wallMs} ms with podman exec`);
        expect(notInfo(d.report)).toEqual([]);
        expect(d.code).toBe(0);
        expect(d.report?.tenants.map((t) => `${t.name} ${t.vni} ${t.device}`)).toEqual(['alpha 1001 cx1001', 'beta 1002 cx1002']);
        // It did reach the agent and read the node table (not silently skipped).
        expect(d.report?.findings.find((f) => f.check === 'agent-health')?.what).toBe('ok.');
        expect(d.report?.findings.find((f) => f.check === 'node-drops')?.what).toMatch(/^drops by reason: pod_spoof 0, tunnel_spoof 0, tunnel_denied 0, return_denied \d+, peering_denied 0 packets/);
      }
      const n1 = emu.nodeNs(0);
      const link = () => emu.exec(n1, 'ip', ['-j', 'link', 'show', 'cx1001']);
      // Fault: n1's tunnel device of alpha down. The agent re-checks tunnels every 30 s and sets it
      // up again (kube-proxy style): first measure that repair, then inject again right after it,
      // so doctor (a second or two) runs well inside the 30 s before the agent's next check.
      emu.exec(n1, 'ip', ['link', 'set', 'cx1001', 'down']);
      expect(isUp(link())).toBe(false);
      const t0 = Date.now();
      while (!isUp(link()) && Date.now() - t0 < 40_000) await sleep(200);
      const repairMs = Date.now() - t0;
      log(`agent set cx1001 up again after ${repairMs} ms`);
      expect(isUp(link())).toBe(true);
      expect(repairMs).toBeLessThan(35_000);
      const agentRepairs = () => readFileSync(emu.agentLogFile(0), 'utf8').match(/"msg":"exec","cmd":"ip link set dev cx1001 [^"]*up"/g)?.length ?? 0;
      const repairsBefore = agentRepairs();
      expect(repairsBefore).toBeGreaterThan(0);

      emu.exec(n1, 'ip', ['link', 'set', 'cx1001', 'down']);
      const down = doctorIn(names[0]);
      const downText = doctorIn(names[0], false);
      const stillDown = !isUp(link());
      log(`doctor --live with cx1001 down: exit ${down.code}, ${down.report?.elapsedMs} ms inside, ${down.wallMs} ms with podman exec; down throughout: ${stillDown}`);
      log(`doctor --live text report:\n${downText.text}`);
      expect(stillDown).toBe(true);
      expect(down.code).toBe(2);
      // The kernel takes a downed device's routes and neighbour entries with it: doctor names the
      // cause first, then those consequences, all on alpha's cx1001 and nothing else.
      const errors = notInfo(down.report);
      expect(errors.map((f) => `${f.severity} ${f.check} ${f.tenant} ${f.subject}`)).toEqual(['error tunnel-up alpha cx1001', 'error gateway-neighbour alpha cx1001', 'error tenant-route alpha cx1001']);
      expect(errors[0].what).toContain('the device is down (VNI 1001, remote ');
      expect(errors[0].fix).toContain('at once: ip link set cx1001 up.');
      for (const f of errors.slice(1)) expect(f.what).toContain('(the kernel removed it when cx1001 went down)');
      // The agent's own clock confirms the timing: its last tunnel check was moments before doctor ran.
      const sinceCheck = Number(/last checked tunnels, routes and rules (\d+) s ago/.exec(down.report?.findings.find((f) => f.check === 'agent-sync')?.what ?? '')?.[1]);
      expect(sinceCheck).toBeLessThan(20);
      expect(downText.code).toBe(2);
      expect(downText.text).toMatch(/^tenant alpha \(VNI 1001, cx1001\)\n  error   \[tunnel-up\] cx1001: the device is down \(VNI 1001, remote [\d.]+\): /m);
      // The other node is untouched.
      const other = doctorIn(names[1]);
      expect(notInfo(other.report)).toEqual([]);
      expect(other.code).toBe(0);
      // Repair by hand with each finding's "at once" commands, in report order; doctor is clean again
      // (within the agent's 30 s, so this is the fixes' doing, not the agent's).
      for (const f of errors) {
        const commands = /at once: (.*?)\.(?: |$)/.exec(f.fix)?.[1].split('; ') ?? [];
        expect(commands.length).toBeGreaterThan(0);
        for (const cmd of commands) {
          const [bin, ...argv] = cmd.split(' ');
          emu.exec(n1, bin, argv);
        }
      }
      const repaired = doctorIn(names[0]);
      expect(notInfo(repaired.report)).toEqual([]);
      expect(repaired.code).toBe(0);
      // The agent did not step in meanwhile: its own repairs of cx1001 are as many as before.
      expect(agentRepairs()).toBe(repairsBefore);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- emulation log ---\n${lines.slice(-40).join('\n')}`);
    } finally {
      emu.stop();
    }
    // stop() removed the run's containers.
    for (const name of names) expect(execFileSync('podman', ['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.Names}}'], { encoding: 'utf8' }).trim()).toBe('');
  });

  test('without NET_ADMIN the agent refuses to start with one clear log line and touches nothing', async () => {
    const topo = new Topology();
    const name = `${topo.prefix}-agent-nocap`;
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-oci-nocap-'));
    try {
      const ns = topo.addNs('node');
      const plan = loadEmulatedPlan(join(stackDir, 'cdk.tf.json'));
      const spec = agentContainerSpec(plan.plan.json);
      expect(spec.capAdd).toEqual(['NET_ADMIN']);
      writeFileSync(join(dir, 'tenants.json'), plan.agentConfigText);
      writeFileSync(join(dir, 'pods.jsonl'), '');
      const logFile = join(dir, 'agent.log');
      podman(podmanRunArgs(spec, { name, image: image.tag, netns: ns, nodeName: 'n1', nodeIp: '10.0.0.10', configMapDir: dir, podsFile: join(dir, 'pods.jsonl'), logFile, withoutCaps: ['NET_ADMIN'] }));
      let state = '';
      for (let i = 0; i < 150 && !state.startsWith('exited'); i++) {
        await sleep(100);
        state = podman(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]).trim();
      }
      expect(state).toBe('exited 1');
      const out = podman(['logs', name]);
      const failed = out.split('\n').filter((l) => l.includes('"agent failed"'));
      expect(failed).toHaveLength(1);
      expect(JSON.parse(failed[0]).error).toBe('capability NET_ADMIN missing (CapEff 0000000000000000): the agent creates tunnels, routes, rules and the nft table; grant it in the container\'s securityContext.capabilities.add');
      expect(topo.exec(ns, 'ip', ['-o', 'link', 'show']).trim().split('\n').map((l) => l.split(':')[1].trim())).toEqual(['lo']);
      expect(topo.exec(ns, 'nft', ['list', 'tables']).trim()).toBe('');
    } finally {
      removeContainers([name]);
      topo.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
