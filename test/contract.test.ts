import { execFileSync } from 'child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'fs';
import { builtinModules } from 'module';
import { tmpdir } from 'os';
import { join } from 'path';
import {
  canonicalCidr, cidrContains, cidrHost, GATEWAY_ENV_KEYS, intToIpv4, ipv4ToInt, nodeMac, parseGatewayEnv, parseTenantTable,
  renderGatewayEnv, renderTenantTable, TENANT_TABLE_COLUMNS, TenantTableRow,
} from '../lib/contract';
import { parseCidr } from '../lib/model/cidr';

const ROOT = join(__dirname, '..');
const row = (name: string, vni: number): TenantTableRow => ({
  name, vni, zone: vni + 1, table: 0x1000000 + vni, gatewayMac: '0a:00:00:03:e9:01', natIp: '172.16.255.254', eniId: `eni-${name}`,
  eniMac: '02:00:00:00:01:01', eniIp: '172.16.255.11', subnetCidr: '172.16.255.0/24', routerIp: '172.16.255.1', destinations: ['172.16.0.0/16', '10.9.0.0/24'],
});

describe('tenant table', () => {
  test('renders a header first and parses back by column name', () => {
    const rows = [row('alpha', 1001), row('beta', 1002)];
    const text = renderTenantTable(rows);
    expect(text.split('\n')[0]).toBe(`#${TENANT_TABLE_COLUMNS.join('\t')}`);
    expect(parseTenantTable(text)).toEqual(rows);
  });

  test('columns are found by the header, whatever their order, and unknown columns are ignored', () => {
    const lines = renderTenantTable([row('alpha', 1001)]).trim().split('\n').map((l) => l.split('\t'));
    lines[0][0] = lines[0][0].slice(1);
    const swapped = lines.map((l) => ['x', ...l.reverse()]);
    swapped[0][0] = '#future';
    expect(parseTenantTable(swapped.map((l) => l.join('\t')).join('\n'))).toEqual([row('alpha', 1001)]);
  });

  test('refuses what bash could not read back: empty fields, tabs, a missing header or column', () => {
    expect(() => renderTenantTable([{ ...row('a', 1), destinations: [] }])).toThrow(/destinations "" is empty/);
    expect(() => renderTenantTable([{ ...row('a', 1), eniId: 'x\ty' }])).toThrow(/eni_id/);
    expect(() => parseTenantTable('alpha\t1\n')).toThrow(/header/);
    expect(() => parseTenantTable('#name\tvni\nalpha\t1\n')).toThrow(/lacks zone, table/);
  });
});

describe('gateway env', () => {
  test('round-trips every key; a missing key or a quote is refused', () => {
    const env = Object.fromEntries(GATEWAY_ENV_KEYS.map((k, i) => [k, `v${i} x`])) as any;
    expect(parseGatewayEnv(renderGatewayEnv('test', env))).toEqual(env);
    expect(() => parseGatewayEnv("SELF_IP='1'\n")).toThrow(/lacks CROSSVPC_PAIR/);
    expect(() => renderGatewayEnv('test', { ...env, HAVIP: "a'b" })).toThrow(/HAVIP/);
  });
});

describe('IPv4 and MACs', () => {
  test('agree with the model on every strict address and CIDR it accepts', () => {
    const where = { path: 'T', prop: 'cidr' };
    for (let i = 0; i < 2000; i++) {
      const n = (Math.imul(i, 2654435761) >>> 0) ^ (i << 7);
      const prefix = i % 33;
      const ip = intToIpv4(n >>> 0);
      expect(ipv4ToInt(ip)).toBe(n >>> 0);
      const canon = canonicalCidr(`${ip}/${prefix}`);
      expect(parseCidr(canon, where).text).toBe(canon);
      expect(cidrContains(canon, ip)).toBe(true);
      expect(cidrHost(canon, 0)).toBe(canon.split('/')[0]);
    }
    expect(ipv4ToInt('256.0.0.1')).toBeUndefined();
    expect(cidrContains('10.0.0.0/8', '11.0.0.0')).toBe(false);
    expect(cidrHost('10.0.1.0/24', -2)).toBe('10.0.1.254');
    expect(nodeMac('10.0.1.10')).toBe('0e:cc:0a:00:01:0a');
  });
});

describe('the agent image', () => {
  test('lib/contract imports nothing outside itself but node built-ins', () => {
    const dir = join(ROOT, 'lib/contract');
    for (const f of readdirSync(dir)) {
      for (const [, spec] of readFileSync(join(dir, f), 'utf8').matchAll(/from '([^']+)'/g)) {
        if (!builtinModules.includes(spec.replace(/^node:/, ''))) expect(`${f}: ${spec}`).toMatch(/: \.\/[a-z0-9-]+$/);
      }
    }
  });

  test('the compiled agent runs from dist/agent + dist/lib/contract alone, without node_modules', () => {
    const build = mkdtempSync(join(tmpdir(), 'crossvpc-agentbuild-'));
    execFileSync('npx', ['tsc', '-p', 'agent/tsconfig.json', '--outDir', build], { cwd: ROOT, stdio: 'pipe' });
    // What agent/Dockerfile copies, and nothing else.
    const app = mkdtempSync(join(tmpdir(), 'crossvpc-agentapp-'));
    cpSync(join(build, 'agent'), join(app, 'dist/agent'), { recursive: true });
    cpSync(join(build, 'lib/contract'), join(app, 'dist/lib/contract'), { recursive: true });
    const dockerfile = readFileSync(join(ROOT, 'agent/Dockerfile'), 'utf8');
    expect(dockerfile).toContain('COPY --from=build /src/dist/agent ./dist/agent');
    expect(dockerfile).toContain('COPY --from=build /src/dist/lib/contract ./dist/lib/contract');
    const out = execFileSync(process.execPath, ['-e', "const c = require('./dist/agent/config.js'); require('./dist/agent/main.js'); console.log(c.nodeMac('10.0.1.10'))"], { cwd: app, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_PATH: '' } });
    expect(out.trim().split('\n').pop()).toBe('0e:cc:0a:00:01:0a');
  }, 120000);
});
