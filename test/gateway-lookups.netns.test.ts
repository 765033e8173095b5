/**
 * The gateway scripts' interface lookups (`ip ... | awk`) on a member with many interfaces, under
 * the scripts' own `set -euo pipefail`. A consumer that exits at its match kills `ip` by SIGPIPE
 * once the listing outgrows the pipe, and pipefail turns that into a failed apply: 16 pairs of 16
 * tenants in one emulation hit it on their first apply (exit status 141). The shipped functions are
 * read from the scripts and run against 900 interfaces (bridges: this kernel has no dummy devices); the control runs the same lookup with an
 * early `exit` and shows the failure is real here. Needs root on Linux; skipped otherwise, a
 * failure under CI=true.
 */
import { execFileSync, spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { cleanUpNetnsTest, isRootLinux } from './helpers';

const capable = isRootLinux();
const NS = `glk${process.pid % 100000}`;
const COUNT = 900;
const mac = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const addr = (i: number) => `10.77.${i >> 8}.${i & 255}`;

/** A shell function's definition as the script ships it (from `name() {` to its closing line). */
function shellFunction(script: string, name: string): string {
  const text = readFileSync(join(__dirname, '../lib/render/gateway', `${script}.sh`), 'utf8');
  const oneLine = new RegExp(`^${name}\\(\\) \\{.*\\}$`, 'm').exec(text);
  const block = new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?\\n\\}$`, 'm').exec(text);
  const found = oneLine?.[0] ?? block?.[0];
  if (!found) throw new Error(`${name}() not found in ${script}.sh`);
  return found;
}

/** Runs `call` 20 times under the scripts' shell options; exit status and the last answer. */
function lookUp(definition: string, call: string): { status: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', NS, 'bash', '-c', `set -euo pipefail\n${definition}\nfor _ in $(seq 20); do r=$(${call}); done\necho "$r"`], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout.trim() };
}

(capable ? describe : describe.skip)('interface lookups with hundreds of interfaces (netns)', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    const batch = Array.from({ length: COUNT }, (_, k) => `link add d${k + 1} address ${mac(k + 1)} type bridge\naddress add ${addr(k + 1)}/32 dev d${k + 1}`).join('\n');
    execFileSync('ip', ['-n', NS, '-batch', '-'], { input: `${batch}\n` });
    // The precondition of the control: the listings are larger than a pipe's 64 KiB.
    expect(execFileSync('ip', ['-n', NS, '-o', 'link', 'show']).length).toBeGreaterThan(65536);
    expect(execFileSync('ip', ['-n', NS, '-o', '-4', 'addr', 'show']).length).toBeGreaterThan(65536);
  });
  afterAll(() => cleanUpNetnsTest([], [NS], undefined));

  test('crossvpc-apply finds an ENI by its MAC, the first interface listed included', () => {
    const ifByMac = shellFunction('crossvpc-apply', 'if_by_mac');
    expect(lookUp(ifByMac, `if_by_mac ${mac(1).toUpperCase()}`)).toEqual({ status: 0, out: 'd1' });
    expect(lookUp(ifByMac, `if_by_mac ${mac(COUNT)}`)).toEqual({ status: 0, out: `d${COUNT}` });
    expect(lookUp(ifByMac, 'if_by_mac 02:ff:ff:ff:ff:ff')).toEqual({ status: 0, out: '' });
  });

  test('crossvpc-dataplane finds the underlay by its address', () => {
    const ifByIp = shellFunction('crossvpc-dataplane', 'if_by_ip');
    expect(lookUp(ifByIp, `if_by_ip ${addr(1)}`)).toEqual({ status: 0, out: 'd1' });
    expect(lookUp(ifByIp, `if_by_ip ${addr(COUNT)}`)).toEqual({ status: 0, out: `d${COUNT}` });
  });

  test('control: the same lookup exiting at its match fails with SIGPIPE (141) here', () => {
    const early = `early() { ip -o link show | awk -v mac="$1" 'index($0, "link/ether " mac " ") { print $2; exit }'; }`;
    expect(lookUp(early, `early ${mac(1)}`).status).toBe(141);
  });
});
