import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseDataplaneArgs } from '../bench/dataplane-args';
import { parseSockperfRtt } from '../bench/dataplane-output';
import { parseSynthArgs } from '../bench/synth-args';
import { parseFailoverArgs } from '../bench/failover-args';
import { integerOption, packageVersion, parseCommandLine, UsageError } from '../lib/cli/args';

// The compiled entry points, run as users run them: `npm run build` first.
const ROOT = join(__dirname, '..');
const CROSSVPC = join(ROOT, 'dist/lib/cli/crossvpc.js');
const AGENT = join(ROOT, 'dist/agent/main.js');
const BENCH_SYNTH = join(ROOT, 'dist/bench/synth.js');
const BENCH_DATAPLANE = join(ROOT, 'dist/bench/dataplane.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function run(entry: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  if (!existsSync(entry)) throw new Error(`${entry} missing: run npm run build first`);
  const r = spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8', cwd: ROOT, env: { PATH: process.env.PATH, ...env }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('crossvpc', () => {
  it('--help and -h print the usage on stdout and exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = run(CROSSVPC, [flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: crossvpc .*<command>/);
      expect(r.stdout).toMatch(/emulate/);
    }
  });

  it('emulate --help prints the emulate usage and exits 0', () => {
    const r = run(CROSSVPC, ['emulate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: crossvpc emulate \[stack dir\] \[--then <stack dir B> \.\.\.\] \[--nodes N\] \[--failover\]/);
    expect(r.stdout).toMatch(/--then B: +after the matrix, apply stack B/);
    expect(r.stderr).toBe('');
  });

  it("--version prints package.json's version", () => {
    const r = run(CROSSVPC, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it('emulate --nodes abc exits 2 naming --nodes, before the host is checked', () => {
    // A stack dir that exists, so that only --nodes is wrong; nothing may run as non-root either.
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-cli-'));
    try {
      writeFileSync(join(dir, 'cdk.tf.json'), '{}');
      for (const bad of ['abc', '0', '1.5', '-1', '65']) {
        const r = run(CROSSVPC, ['emulate', dir, `--nodes=${bad}`]);
        expect(r.code).toBe(2);
        expect(r.stderr.split('\n')[0]).toBe(`crossvpc: --nodes: got '${bad}', expected an integer from 1 to 64`);
        expect(r.stderr).toMatch(/usage: crossvpc emulate/);
        expect(r.stdout).toBe('');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['unknown option', ['emulate', '--bogus'], "crossvpc: unknown option '--bogus'"],
    ['unknown global option', ['--bogus'], "crossvpc: unknown option '--bogus'"],
    ['unknown command', ['frobnicate'], "crossvpc: unknown command 'frobnicate', expected emulate or doctor"],
    ['no command', [], 'crossvpc: missing command'],
    ['missing value', ['emulate', '--nodes'], "crossvpc: --nodes: missing value (write --nodes=VALUE for one that starts with '-')"],
    ['value on a boolean flag', ['emulate', '--failover=yes'], 'crossvpc: --failover: takes no value'],
    ['second stack dir', ['emulate', 'a', 'b'], "crossvpc: unexpected argument 'b'"],
    ['bad --agent-image', ['emulate', '--agent-image', 'no such image'], "crossvpc: --agent-image: got 'no such image', expected a local image reference, e.g. localhost/crossvpc-agent:dev"],
    ['--then without a value', ['emulate', '--then'], "crossvpc: --then: missing value (write --then=VALUE for one that starts with '-')"],
    ['--then dir without cdk.tf.json', ['emulate', '--then', '/nonexistent-crossvpc-b'], "crossvpc: --then: got '/nonexistent-crossvpc-b', expected a directory holding cdk.tf.json (synthesize first: npm run synth)"],
    ['stack dir without cdk.tf.json', ['emulate', '/nonexistent-crossvpc-stack'], "crossvpc: stack dir: got '/nonexistent-crossvpc-stack', expected a directory holding cdk.tf.json (synthesize first: npm run synth)"],
  ])('%s exits 2 with one line and the usage', (_name, args, line) => {
    const r = run(CROSSVPC, args);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(line);
    expect(r.stderr.split('\n')[1]).toMatch(/^usage: crossvpc/);
  });
});

describe('argument helpers', () => {
  it('reads the version from the package.json above the sources (ts-jest) too', () => {
    expect(packageVersion()).toBe(VERSION);
  });

  it('integerOption takes plain decimal integers in range only', () => {
    expect(integerOption('--n', '7', 1, 9)).toBe(7);
    for (const bad of ['', ' 7', '7e0', '0x7', '+7', '10']) {
      expect(() => integerOption('--n', bad, 1, 9)).toThrow(UsageError);
    }
  });

  it('parseCommandLine counts positionals', () => {
    expect(parseCommandLine(['x'], {}, 1).positionals).toEqual(['x']);
    expect(() => parseCommandLine(['x'], {}, 0)).toThrow("unexpected argument 'x'");
  });
});

describe('node agent command line', () => {
  it('--help exits 0 with the usage', () => {
    const r = run(AGENT, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: main\.js --config <tenants\.json>/);
  });

  it('bad values exit 2 before anything runs', () => {
    const r = run(AGENT, ['--config', '/nonexistent-crossvpc.json', '--node-ip', '10.0.1.300', '--node-name', 'n1']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/--node-ip.*10\.0\.1\.300.*IPv4/);
    const missing = run(AGENT, ['--config', '/nonexistent-crossvpc.json', '--node-ip', '10.0.1.3', '--node-name', 'n1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')[0]).toMatch(/--config.*nonexistent-crossvpc\.json/);
  });
});

describe('benchmark command lines', () => {
  it.each([
    ['synth', BENCH_SYNTH, /^usage: synth\.js/],
    ['dataplane', BENCH_DATAPLANE, /^usage: dataplane\.js/],
  ])('%s --help exits 0 with the usage; an unknown option exits 2', (_name, entry, usage) => {
    const help = run(entry, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(usage);
    const bad = run(entry, ['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/: unknown option '--bogus'\nusage: /);
  });

  it('dataplane: defaults, every documented flag, bad values named', () => {
    expect(parseDataplaneArgs([], 2)).toEqual({ tenants: [1, 16], secs: 5, repeats: 3, requests: 20000, pods: 5, keep: false, pin: true });
    expect(parseDataplaneArgs([], 1)).toMatchObject({ pin: false });
    expect(parseDataplaneArgs(['--tenants', '1,16', '--secs', '2', '--repeats', '1', '--requests', '100', '--pods', '2', '--keep', '--no-pin'], 4))
      .toEqual({ tenants: [1, 16], secs: 2, repeats: 1, requests: 100, pods: 2, keep: true, pin: false });
    expect(() => parseDataplaneArgs(['--tenants', '1,1024'])).toThrow("--tenants: got '1,1024', expected comma-separated integers from 1 to 1023");
    expect(() => parseDataplaneArgs(['--tenants', '1,,2'])).toThrow(/--tenants/);
    expect(() => parseDataplaneArgs(['--secs', 'five'])).toThrow("--secs: got 'five', expected an integer from 1 to 100000");
    expect(() => parseDataplaneArgs(['extra'])).toThrow("unexpected argument 'extra'");
  });

  it('synth: report, child, help; --type only with --child and from the ENI table', () => {
    expect(parseSynthArgs([], 'c6in.xlarge')).toEqual({ kind: 'report' });
    expect(parseSynthArgs(['--child', '10'], 'c6in.xlarge')).toEqual({ kind: 'child', tenants: 10, instanceType: 'c6in.xlarge' });
    expect(parseSynthArgs(['--child', '10', '--type', 'm5.large'], 'c6in.xlarge')).toEqual({ kind: 'child', tenants: 10, instanceType: 'm5.large' });
    expect(parseSynthArgs(['-h'], 'c6in.xlarge')).toEqual({ kind: 'help' });
    expect(() => parseSynthArgs(['--child', '0'], 'c6in.xlarge')).toThrow("--child: got '0', expected an integer from 1 to 100000");
    expect(() => parseSynthArgs(['--child', '10', '--type', 'x9.huge'], 'c6in.xlarge')).toThrow(/--type: got 'x9\.huge', expected an instance type/);
    expect(() => parseSynthArgs(['--type', 'm5.large'], 'c6in.xlarge')).toThrow(/--type: .*only applies with --child/);
    expect(parseSynthArgs(['--floor', '/tmp/counts.json'], 'c6in.xlarge')).toEqual({ kind: 'floor', countsFile: '/tmp/counts.json' });
    expect(() => parseSynthArgs(['--floor', 'c.json', '--child', '10'], 'c6in.xlarge')).toThrow(/--floor: .*only its counts file/);
  });
  test('bench:failover arguments are parsed strictly', () => {
    expect(parseFailoverArgs([])).toEqual({ runs: 5, adverts: [0.3, 0.1], quietSecs: 20, load: true });
    expect(parseFailoverArgs(['--runs', '2', '--advert', '0.5', '--quiet-secs', '5', '--no-load'])).toEqual({ runs: 2, adverts: [0.5], quietSecs: 5, load: false });
    expect(parseFailoverArgs(['-h'])).toBe('help');
    for (const bad of ['0', '0.005', '1e-1', '.3', '0.3,', '41']) expect(() => parseFailoverArgs(['--advert', bad])).toThrow(/--advert: got/);
    expect(() => parseFailoverArgs(['--runs', '0'])).toThrow(/--runs/);
  });
});

describe('sockperf output', () => {
  test('the mean full round trip is read from the summary line (colour codes and all)', () => {
    const out = 'sockperf: [Valid Duration] RunTime=0.550 sec\nsockperf: \x1b[2;35m====> avg-rtt=57.914 (std-dev=23.185)\x1b[0m\nsockperf: Summary: Round trip is 57.914 usec\n';
    expect(parseSockperfRtt(out)).toBeCloseTo(57.914, 3);
  });
  test('control: half round trips (no --full-rtt) or nothing are an error, never a number', () => {
    expect(() => parseSockperfRtt('sockperf: ====> avg-latency=28.957 (std-dev=11.5)\n')).toThrow(/no avg-rtt/);
    expect(() => parseSockperfRtt('')).toThrow(/no avg-rtt/);
  });
});
