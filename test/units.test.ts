/**
 * The emulator's unit supervisor without root: it parses the rendered gateway units by key
 * name and restarts plain local processes as their Restart=/RestartSec= say.
 */
import { execFileSync } from 'child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseTimeSpan, parseUnit, RESTART_BURST, shouldRestart, UnitSpec, UnitSupervisor } from '../lib/emulate/units';
import { renderGatewayUnits } from '../lib/render/gateway-files';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('unit parsing', () => {
  test('the rendered gateway units parse to their Type=, Restart= and RestartSec= by name', () => {
    const parsed = renderGatewayUnits().map((u) => parseUnit(u.name, u.content));
    expect(parsed.map(({ name, oneshot, restart, restartSecMs }) => ({ name, oneshot, restart, restartSecMs }))).toEqual([
      { name: 'crossvpc-dataplane.service', oneshot: true, restart: 'on-failure', restartSecMs: 5000 },
      { name: 'crossvpc-reconcile.service', oneshot: false, restart: 'always', restartSecMs: 2000 },
      { name: 'crossvpc-resolver.service', oneshot: false, restart: 'always', restartSecMs: 1000 },
      { name: 'crossvpc-conntrackd.service', oneshot: false, restart: 'always', restartSecMs: 1000 },
      { name: 'crossvpc-keepalived.service', oneshot: false, restart: 'always', restartSecMs: 1000 },
      { name: 'crossvpc-metrics.service', oneshot: false, restart: 'always', restartSecMs: 5000 },
      { name: 'crossvpc-node-exporter.service', oneshot: false, restart: 'always', restartSecMs: 5000 },
    ]);
    expect(parsed[2].exec).toEqual(['/etc/crossvpc/bin/crossvpc-resolver']);
    // Daemons restart for as long as they crash; the oneshot keeps systemd's start limit.
    expect(parsed.map((u) => u.startLimitIntervalMs)).toEqual([10_000, 0, 0, 0, 0, 0, 0]);
    expect(parsed[6].exec).toEqual(['/etc/crossvpc/bin/crossvpc-metrics', 'serve']);
  });

  test('keys outside [Service], comments, defaults and later assignments follow systemd', () => {
    const u = parseUnit('x.service', '[Unit]\nRestart=always\n[Service]\n# Restart=always\nExecStart=/bin/true  -v\nRestartSec=2\nRestartSec=500ms\n');
    expect(u).toEqual({ name: 'x.service', exec: ['/bin/true', '-v'], oneshot: false, restart: 'no', restartSecMs: 500, startLimitBurst: 5, startLimitIntervalMs: 10_000 });
    expect(parseUnit('w.service', '[Unit]\nStartLimitIntervalSec=0\nStartLimitBurst=3\n[Service]\nExecStart=/bin/true\n')).toMatchObject({ startLimitBurst: 3, startLimitIntervalMs: 0 });
    expect(parseUnit('y.service', '[Service]\nExecStart=/bin/true\n').restartSecMs).toBe(100);
    expect(() => parseUnit('z.service', '[Service]\nType=forking\nExecStart=/bin/true\n')).toThrow(/unsupported Type=forking/);
    expect(() => parseUnit('z.service', '[Service]\nExecStart=/bin/true\nRestart=sometimes\n')).toThrow(/unsupported Restart=sometimes/);
    expect(() => parseUnit('z.service', '[Service]\nType=oneshot\n')).toThrow(/no ExecStart/);
  });

  test('time spans and restart policies', () => {
    expect([parseTimeSpan('5'), parseTimeSpan('5s'), parseTimeSpan('250ms'), parseTimeSpan('1min 30s')]).toEqual([5000, 5000, 250, 90000]);
    expect(() => parseTimeSpan('5 fortnights')).toThrow(/unsupported time span/);
    expect(shouldRestart('always', 0, null)).toBe(true);
    expect(shouldRestart('on-failure', 0, null)).toBe(false);
    expect(shouldRestart('on-failure', 1, null)).toBe(true);
    expect(shouldRestart('on-failure', null, 'SIGKILL')).toBe(true);
    expect(shouldRestart('on-failure', null, 'SIGTERM')).toBe(false);
    expect(shouldRestart('on-abnormal', 1, null)).toBe(false);
    expect(shouldRestart('no', null, 'SIGKILL')).toBe(false);
  });
});

describe('unit supervisor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossvpc-units-'));
  const script = (name: string, body: string) => {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };
  const spec = (name: string, exec: string, restart: UnitSpec['restart'], restartSecMs: number, oneshot = false): UnitSpec => ({ name, exec: [exec], oneshot, restart, restartSecMs });
  const supervisor = () => new UnitSupervisor({ id: 'test', argv: (cmd) => cmd, env: { PATH: process.env.PATH }, logDir: dir });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 150 && !cond(); i++) await sleep(20);
  };
  const starts = (name: string) => (existsSync(join(dir, `${name}.log`)) ? readFileSync(join(dir, `${name}.log`), 'utf8') : '').split('\n').filter((l) => l === 'start').length;

  test('a long-running unit killed by a signal comes back after RestartSec; stop() ends it for good', async () => {
    const units = supervisor();
    await units.start([spec('sleeper.service', script('sleeper', 'echo start; exec sleep 30'), 'always', 300)]);
    const first = units.mainPid('sleeper.service')!;
    await until(() => starts('sleeper.service') === 1);
    process.kill(first, 'SIGKILL');
    const killedAt = Date.now();
    const restarted = () => [undefined, first].includes(units.mainPid('sleeper.service')) ? undefined : units.mainPid('sleeper.service');
    while (Date.now() - killedAt < 3000 && !restarted()) await sleep(20);
    expect(restarted()).toBeDefined();
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(290);
    expect(units.restartCount('sleeper.service')).toBe(1);
    await until(() => starts('sleeper.service') === 2);
    await units.stop();
    await sleep(500);
    expect(units.anyAlive()).toBe(false);
    expect(starts('sleeper.service')).toBe(2);
  });

  test('StartLimitIntervalSec=0: a crash loop keeps being restarted past the default burst', async () => {
    const units = supervisor();
    await units.start([{ ...spec('looper.service', script('looper', 'echo start; exit 1'), 'always', 20), startLimitIntervalMs: 0 }]);
    await until(() => starts('looper.service') >= RESTART_BURST + 3);
    units.halt();
    expect(starts('looper.service')).toBeGreaterThanOrEqual(RESTART_BURST + 3);
  });

  test('stop() leaves nothing of a unit behind, not even children in its process group', async () => {
    const units = supervisor();
    await units.start([spec('pipeline.service', script('pipeline', 'echo start; trap "" TERM; sleep 30 | cat; sleep 30'), 'always', 100)]);
    await until(() => starts('pipeline.service') === 1);
    const leader = units.mainPid('pipeline.service')!;
    // Live members of the group; zombies are dead (this sandbox's PID 1 does not reap orphans).
    const groupAlive = () =>
      execFileSync('ps', ['-eo', 'pgid=,stat=']).toString().split('\n').some((l) => {
        const [pgid, stat] = l.trim().split(/\s+/);
        return Number(pgid) === leader && !stat.startsWith('Z');
      });
    expect(groupAlive()).toBe(true);
    await units.stop(); // the script ignores SIGTERM: SIGKILL to the group after the grace period
    for (let i = 0; i < 50 && groupAlive(); i++) await sleep(20); // reaping takes a moment
    expect(groupAlive()).toBe(false);
  }, 15_000);

  test('halt() during start() stops the remaining units from starting (the machine died meanwhile)', async () => {
    const units = supervisor();
    // The data-plane oneshot fails and waits RestartSec to run again: the member dies meanwhile.
    const started = units.start([
      spec('slow.service', script('slow', 'exit 1'), 'on-failure', 300, true),
      spec('late.service', script('late', 'echo start; exec sleep 30'), 'always', 100),
    ]);
    await sleep(50);
    units.halt();
    await started;
    await sleep(200);
    expect(starts('late.service')).toBe(0);
    expect(units.anyAlive()).toBe(false);
  });

  test('Restart=on-failure gives up at the start limit (RESTART_BURST starts), RestartSec apart', async () => {
    const units = supervisor();
    const t0 = Date.now();
    await units.start([spec('crasher.service', script('crasher', 'echo start; exit 3'), 'on-failure', 20)]);
    const log = () => (existsSync(join(dir, 'units.log')) ? readFileSync(join(dir, 'units.log'), 'utf8') : '');
    while (Date.now() - t0 < 5000 && !log().includes('crasher.service: exited with 3; start limit hit')) await sleep(20);
    expect(starts('crasher.service')).toBe(RESTART_BURST); // systemd's StartLimitBurst counts starts
    expect(Date.now() - t0).toBeGreaterThanOrEqual(20 * (RESTART_BURST - 1)); // RestartSec=20ms between starts
    units.halt();
  });

  test('a clean exit under Restart=on-failure stays down; a failing oneshot runs again, then fails loudly', async () => {
    const units = supervisor();
    await units.start([spec('done.service', script('done', 'echo start; exit 0'), 'on-failure', 20)]);
    await sleep(300);
    expect(starts('done.service')).toBe(1);
    await expect(units.start([spec('setup.service', script('setup', 'echo start >>"$0.count"; echo nope >&2; exit 1'), 'on-failure', 10, true)])).rejects.toThrow(/setup failed:\nnope/);
    expect(readFileSync(join(dir, 'setup.count'), 'utf8').trim().split('\n')).toHaveLength(RESTART_BURST);
  });
});
