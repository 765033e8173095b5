import { execFileSync } from 'child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'fs';
import { builtinModules } from 'module';
import { tmpdir } from 'os';
import { join } from 'path';
import {
  canonicalCidr, cidrContains, formatInboundCell, cidrHost, GATEWAY_ENV_KEYS, GATEWAY_ENV_OVERRIDES, GATEWAY_NFT_TABLE, gatewayShellConstants, hex, intToIpv4, ipv4ToInt,
  nodeMac, parseGatewayEnv, parseTenantTable, renderGatewayEnv, renderTenantTable, TENANT_MARK_MASK, TENANT_TABLE_COLUMN_OF, TENANT_TABLE_COLUMNS,
  TENANT_DEV_PREFIX, tenantDev, TenantTableRow, TUNNEL_DEV_PREFIX, tunnelDev,
} from '../lib/contract';
import { GATEWAY_SCRIPTS, gatewayScript, renderGatewayShellLib } from '../lib/render/gateway-files';
import { parseCidr } from '../lib/model/cidr';

const ROOT = join(__dirname, '..');
const row = (name: string, vni: number): TenantTableRow => ({
  name, vni, zone: vni + 1, table: 0x1000000 + vni, gatewayMac: '0a:00:00:03:e9:01', natIp: '172.16.255.254', eniId: `eni-${name}`,
  eniMac: '02:00:00:00:01:01', eniIp: '172.16.255.11', subnetCidr: '172.16.255.0/24', routerIp: '172.16.255.1', destinations: ['172.16.0.0/16', '10.9.0.0/24'], egress: 'none', inbound: [],
  egressIp: '-', eipAllocationId: '-',
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

  test('port forwards round-trip through the inbound column; a malformed one is refused naming it', () => {
    const forwards = [{ protocol: 'tcp' as const, port: 443, targetIp: '10.0.5.10', targetPort: 8443 }, { protocol: 'udp' as const, port: 53, targetIp: '10.0.0.2', targetPort: 53 }];
    const text = renderTenantTable([{ ...row('a', 1), inbound: forwards }]);
    expect(text).toContain('\ttcp/443=10.0.5.10:8443,udp/53=10.0.0.2:53');
    expect(parseTenantTable(text)[0].inbound).toEqual(forwards);
    expect(parseTenantTable(renderTenantTable([row('a', 1)]))[0].inbound).toEqual([]); // control: none
    for (const bad of ['icmp/1=10.0.0.1:1', 'tcp/0=10.0.0.1:1', 'tcp/70000=10.0.0.1:1', 'tcp/1=10.0.0.256:1', 'tcp/1=10.0.0.1']) {
      expect(() => parseTenantTable(text.replace('tcp/443=10.0.5.10:8443', bad))).toThrow(new RegExp(`row 1: inbound forward "${bad.replace(/[./]/g, '\\$&')}"`));
    }
  });

  test('EIP egress rows carry an address and an allocation id; other rows neither', () => {
    const eip = { ...row('a', 1), egress: 'eip' as const, egressIp: '10.0.255.20', eipAllocationId: 'eipalloc-0123456789abcdef0' };
    expect(parseTenantTable(renderTenantTable([eip]))).toEqual([eip]);
    expect(() => parseTenantTable(renderTenantTable([{ ...eip, egressIp: '-' }]))).toThrow(/egress eip needs an IPv4 egress_ip/);
    expect(() => parseTenantTable(renderTenantTable([{ ...eip, eipAllocationId: '-' }]))).toThrow(/needs an eip_allocation_id/);
    expect(() => parseTenantTable(renderTenantTable([{ ...eip, egress: 'tenant_vpc' }]))).toThrow(/egress tenant_vpc takes no egress_ip/);
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

  test('the compiled agent runs from dist/agent + dist/lib/contract and its declared runtime dependencies alone', () => {
    const build = mkdtempSync(join(tmpdir(), 'crossvpc-agentbuild-'));
    execFileSync('npx', ['tsc', '-p', 'agent/tsconfig.json', '--outDir', build], { cwd: ROOT, stdio: 'pipe' });
    // What agent/Dockerfile copies, and nothing else.
    const app = mkdtempSync(join(tmpdir(), 'crossvpc-agentapp-'));
    cpSync(join(build, 'agent'), join(app, 'dist/agent'), { recursive: true });
    cpSync(join(build, 'lib/contract'), join(app, 'dist/lib/contract'), { recursive: true });
    // The image's node_modules: `npm ci --omit=dev --omit=peer` of package.json, i.e. `dependencies` and what they need.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const runtime = new Set<string>();
    const visit = (name: string) => {
      if (runtime.has(name)) return;
      runtime.add(name);
      const dep = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'));
      for (const d of Object.keys(dep.dependencies ?? {})) visit(d);
    };
    Object.keys(pkg.dependencies).forEach(visit);
    expect(runtime).toContain('prom-client');
    for (const name of runtime) cpSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name), { recursive: true, dereference: true });
    const dockerfile = readFileSync(join(ROOT, 'agent/Dockerfile'), 'utf8');
    expect(dockerfile).toContain('npm ci --omit=dev --omit=peer --ignore-scripts');
    expect(dockerfile).toContain('COPY --from=build /deps/node_modules ./node_modules');
    expect(dockerfile).toContain('COPY --from=build /src/dist/agent ./dist/agent');
    expect(dockerfile).toContain('COPY --from=build /src/dist/lib/contract ./dist/lib/contract');
    const out = execFileSync(process.execPath, ['-e', "const c = require('./dist/agent/config.js'); require('./dist/agent/main.js'); require('./dist/agent/metrics.js'); console.log(c.nodeMac('10.0.1.10'))"], { cwd: app, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_PATH: '' } });
    expect(out.trim().split('\n').pop()).toBe('0e:cc:0a:00:01:0a');
  }, 120000);
});

describe('gateway scripts against the contract (bash, no root)', () => {
  const lib = renderGatewayShellLib();
  const scripts = GATEWAY_SCRIPTS.map((name) => ({ name, text: gatewayScript(name) }));
  /** Runs `body` in one bash that sourced the rendered library, with `input` on stdin. */
  const bash = (body: string, input = ''): string => {
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-shlib-'));
    writeFileSync(join(dir, 'lib.sh'), lib);
    return execFileSync('bash', ['--norc', '-c', `set -euo pipefail; . "$1"; ${body}`, 'bash', join(dir, 'lib.sh')], { input, encoding: 'utf8' });
  };

  test('every script reads tenants.tsv only through tenant_next, and only columns the contract has', () => {
    for (const s of scripts) {
      const reads = [...s.text.matchAll(/tenant_next ([a-z_ ]+);/g)].map((m) => m[1].trim().split(/\s+/));
      // Every loop over a table file is a tenant_next loop, and every tenant_next reads one.
      expect({ script: s.name, loops: reads.length }).toEqual({ script: s.name, loops: (s.text.match(/done <"[^"]*(\.tsv|\$table_file)"/g) ?? []).length });
      for (const cols of reads) for (const c of cols) expect(`${s.name}: ${c}`).toBe(`${s.name}: ${TENANT_TABLE_COLUMNS.find((k) => k === c) ?? 'not a column'}`);
      expect(s.text).not.toMatch(/IFS=\$'\\t' read/);
    }
  });

  test("every script's uppercase variables are gateway.env keys, contract constants or its own", () => {
    // The library's own globals (aws_credentials sets AWS_*) and bash's.
    const libGlobals = [...lib.matchAll(/^\s*([A-Z_][A-Z0-9_]*)=/gm), ...lib.matchAll(/! ([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]);
    const known = new Set<string>([...GATEWAY_ENV_KEYS, ...GATEWAY_ENV_OVERRIDES, ...Object.keys(gatewayShellConstants()), ...libGlobals, 'SECONDS', 'EPOCHSECONDS', 'PIPESTATUS', 'LINENO', 'BASH_COMMAND']);
    for (const s of scripts) {
      const own = new Set([...s.text.matchAll(/^\s*([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]));
      const used = new Set([...s.text.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]));
      expect({ script: s.name, unknown: [...used].filter((v) => !known.has(v) && !own.has(v)) }).toEqual({ script: s.name, unknown: [] });
    }
  });

  test('no script spells a name or number the contract owns', () => {
    const owned = [GATEWAY_NFT_TABLE, hex(TENANT_MARK_MASK), '0e:cc', `"${TUNNEL_DEV_PREFIX}$`, `"${TENANT_DEV_PREFIX}$`, `${TUNNEL_DEV_PREFIX}[0-9]`];
    for (const s of scripts) for (const o of owned) expect(`${s.name}: ${s.text.includes(o) ? o : 'clean'}`).toBe(`${s.name}: clean`);
    const c = gatewayShellConstants();
    expect(bash('echo "${TUNNEL_DEV_PREFIX}7 ${TENANT_DEV_PREFIX}7 $GATEWAY_NFT_TABLE $TENANT_MARK_MASK $NODE_MAC_PREFIX"')).toBe(`${tunnelDev(7)} ${tenantDev(7)} ${GATEWAY_NFT_TABLE} ${hex(TENANT_MARK_MASK)} ${c.NODE_MAC_PREFIX}\n`);
    expect(nodeMac('1.2.3.4').startsWith(c.NODE_MAC_PREFIX)).toBe(true);
  });

  test('tenant_next reads every column by name, whatever the column order, as parseTenantTable does', () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      ...row(`t${i}`, 1000 + i * 7919), natIp: intToIpv4(0xac100000 + i), destinations: [`10.${i}.0.0/16`],
      inbound: i % 3 ? [] : [{ protocol: 'tcp' as const, port: 1000 + i, targetIp: '10.0.5.10', targetPort: 80 }],
    }));
    const text = renderTenantTable(rows);
    // Columns reversed, plus one this release does not know, and no newline after the last row: readers go by the header only.
    const shuffled = text.trim().split('\n').map((l, n) => {
      const cells = l.replace(/^#/, '').split('\t').reverse();
      return `${n === 0 ? '#' : ''}${[n === 0 ? 'future' : 'x', ...cells].join('\t')}`;
    }).join('\n');
    const cols = TENANT_TABLE_COLUMNS.join(' ');
    const dump = `${TENANT_TABLE_COLUMNS.map((c) => `${c}=''`).join(' ')}; while tenant_next ${cols}; do for c in ${cols}; do printf '%s=%s\\n' "$c" "\${!c}"; done; done`;
    const expected = parseTenantTable(text).map((r) => TENANT_TABLE_COLUMNS.map((c) => {
      const field = (Object.keys(TENANT_TABLE_COLUMN_OF) as Array<keyof TenantTableRow>).find((f) => TENANT_TABLE_COLUMN_OF[f] === c)!;
      const v = r[field];
      return `${c}=${field === 'inbound' ? formatInboundCell(r.inbound) : Array.isArray(v) ? v.join(',') : v}\n`;
    }).join('')).join('');
    expect(bash(dump, text)).toBe(expected);
    expect(bash(dump, shuffled)).toBe(expected);
    expect(() => bash('while tenant_next name color; do :; done', text)).toThrow(/no column color/);
    // An empty field would shift every later column (IFS merges tabs): refused, never misread.
    const lines = text.split('\n');
    const holed = [lines[0], lines[1].replace(/\t[^\t]+\t/, '\t\t'), ''].join('\n');
    expect(() => bash(`while tenant_next ${cols}; do :; done`, holed)).toThrow(/fields, the header \d+ \(an empty field\?\)/);
  });

  test('ip2int, in_cidrs and node_mac agree with the contract on 600 inputs', () => {
    const edges = ['0.0.0.0', '255.255.255.255', '10.0.0.1', '172.16.255.254', '127.0.0.1', '10.1.2.3'];
    const ips = [...edges, ...Array.from({ length: 600 - edges.length }, (_, i) => intToIpv4((Math.imul(i + 1, 2654435761) ^ (i << 13)) >>> 0))];
    const cidrsFor = (i: number) => [0, 1, 2].map((k) => canonicalCidr(`${intToIpv4((Math.imul(i + k, 40503) << 16) >>> 0)}/${(i * 7 + k * 11) % 33}`)).concat(i % 5 === 0 ? [`${ips[i]}/32`] : []);
    const input = ips.map((ip, i) => `${ip} ${cidrsFor(i).join(' ')}\n`).join('');
    const out = bash('while read -r ip cidrs; do read -r -a cs <<<"$cidrs"; r=0; if in_cidrs "$ip" "${cs[@]}"; then r=1; fi; echo "$(ip2int "$ip") $(node_mac "$ip") $r"; done', input);
    const expected = ips.map((ip, i) => `${ipv4ToInt(ip)} ${nodeMac(ip)} ${cidrsFor(i).some((c) => cidrContains(c, ip)) ? 1 : 0}\n`).join('');
    expect(out).toBe(expected);
    // Both refuse what is not a canonical dotted quad (leading zeros read as octal elsewhere, short forms, garbage).
    for (const bad of ['010.001.002.003', '10.1.2', '10.1.2.3.4', 'x.1.2.3', '']) {
      expect(ipv4ToInt(bad)).toBeUndefined();
      expect(bash(`ip2int '${bad}' || echo refused; in_cidrs '${bad}' 10.0.0.0/8 || echo outside`, '')).toBe('refused\noutside\n');
    }
  }, 60000);
});
