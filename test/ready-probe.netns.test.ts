/**
 * The pod readiness probe (lib/emulate/ready-probe.ts) against a real Redis in a network
 * namespace: it keeps opening connections until one gets +PONG, and its first reply comes
 * after the server appeared. Needs root and redis-server; skipped otherwise, a failure under CI.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { armReadyProbe } from '../lib/emulate/ready-probe';
import { compiled } from '../lib/emulate/sys';
import { cleanUpNetnsTest, haveTool, isRootLinux } from './helpers';

const capable = isRootLinux() && haveTool('redis-server', ['--version']);
const NS = `rdp${process.pid % 100000}`;

(capable ? describe : describe.skip)('pod readiness probe (netns)', () => {
  const procs: ChildProcess[] = [];
  const script = () => compiled('dist/lib/emulate/ready-probe.js');
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => cleanUpNetnsTest(procs, [NS], undefined));

  it('retries until Redis answers: the reply comes from an attempt started after the server was launched', async () => {
    const probe = await armReadyProbe(script(), NS, '127.0.0.1', 6379, 20_000);
    try {
      await new Promise((r) => setTimeout(r, 50)); // refused meanwhile: nothing listens yet
      const launched = process.hrtime.bigint();
      procs.push(spawn('ip', ['netns', 'exec', NS, 'redis-server', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'], { detached: true, stdio: 'ignore' }));
      const r = await probe.result;
      expect(r.replyNs).toBeDefined();
      const [attempt, connected, reply] = [r.attemptStartedNs, r.connectedNs, r.replyNs].map((x) => BigInt(x!));
      expect(attempt > launched).toBe(true);
      expect(connected >= attempt && reply >= connected).toBe(true);
      expect(r.attempts).toBeGreaterThan(1);
      expect(r.lastError).toMatch(/ECONNREFUSED/);
    } finally {
      probe.kill();
    }
  });

  it('control: with nothing answering it gives up at its deadline without a reply, after bounded attempts', async () => {
    const probe = await armReadyProbe(script(), NS, '127.0.0.1', 6380, 300);
    const r = await probe.result;
    expect(r.replyNs).toBeUndefined();
    expect(r.attempts).toBeGreaterThan(1);
    expect(r.attempts).toBeLessThanOrEqual(400);
    expect(r.lastError).toMatch(/ECONNREFUSED/);
  });
});
