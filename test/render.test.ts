import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Document, parse } from 'yaml';
import { GATEWAY_PACKAGES, renderCloudConfig } from '../lib/render/cloud-config';
import { MEMBER_CLI, RenderedFile, renderGatewayUnits } from '../lib/render/gateway-files';


import { buildCrossVpcModel, buildGatewayMemberSpec, GATEWAY_SCRIPT_NAMES, parsePairDocument, renderConntrackdConf, renderGatewayFiles, renderGatewayRuleset, renderKeepalivedConf, renderMemberDocument, renderPairDocumentText, twoTenantModel } from './render-fixtures';
import { asDeployed, haveTool, isRootLinux, synthJson, userDataOf } from './helpers';
import { estimatedUserDataBytes, packBase64Gzip, packedUserDataBytes, packUserData, unpackBase64Gzip, unpackUserData } from '../lib/render/user-data';

const model = twoTenantModel();
const tenantBinding = (i: number) => ({ natIp: '172.16.255.254', eniId: `eni-t${i}`, eniMac: `02:00:00:00:0${i}:01`, eniIp: `172.16.255.1${i}`, subnetCidr: '172.16.255.0/24', routerIp: '172.16.255.1' });
const spec = buildGatewayMemberSpec(model, 0, 'a', {
  selfIp: '10.0.2.10', peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: '10.0.2.254',
  tenants: { alpha: tenantBinding(1), beta: tenantBinding(2) },
}, { advertIntervalSec: 0.5, connLimitPerTenant: 65536, configParameter: '/crossvpc/pair0-test', configPollSec: 5, metrics: true });
const files = renderGatewayFiles(spec, { conntrackMax: 262144 });
const dir = mkdtempSync(join(tmpdir(), 'crossvpc-render-'));

describe('rendered gateway artifacts (snapshots as plain text)', () => {
  test('nftables ruleset', () => expect(renderGatewayRuleset(spec)).toMatchSnapshot());
  test('keepalived.conf', () => expect(renderKeepalivedConf(spec)).toMatchSnapshot());
  test('conntrackd.conf', () => expect(renderConntrackdConf(spec)).toMatchSnapshot());
  test.each(GATEWAY_SCRIPT_NAMES)('script %s', (name) => {
    expect(files.find((f) => f.path.endsWith(`/bin/${name}`))!.content).toMatchSnapshot();
  });
  test('shell library and tenant table', () => {
    expect(files.find((f) => f.path === '/etc/crossvpc/crossvpc-lib.sh')!.content).toMatchSnapshot();
    expect(renderMemberDocument(spec).tenants).toMatchSnapshot();
  });
  test('user data holds no tenant: the same files whatever the tenants', () => {
    const alone = buildGatewayMemberSpec(model, 0, 'a', {
      selfIp: '10.0.2.10', peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: '10.0.2.254', tenants: { alpha: tenantBinding(1), beta: tenantBinding(2) },
    }, { advertIntervalSec: 0.5, connLimitPerTenant: 65536, configParameter: '/crossvpc/pair0-test', configPollSec: 5, metrics: true });
    const fewer = { ...alone, tenants: alone.tenants.slice(0, 1) };
    expect(renderGatewayFiles(fewer, { conntrackMax: 262144 })).toEqual(files);
    expect(files.map((f) => f.path)).not.toContain('/etc/crossvpc/tenants.tsv');
    expect(files.find((f) => f.path.endsWith('gateway.env'))!.content).toContain("CONFIG_PARAMETER='/crossvpc/pair0-test'");
  });
  test('the pair document holds both members\' tenant tables and rulesets, and parses back', () => {
    const b = { ...spec, member: 'b' as const, selfIp: spec.peerIp, peerIp: spec.selfIp };
    const text = renderPairDocumentText(spec, b);
    const doc = parsePairDocument(text, 0);
    expect(doc.rows.a.map((r) => r.name)).toEqual(['alpha', 'beta']);
    expect(doc.members.a.ruleset).toBe(renderGatewayRuleset(spec));
    expect(doc.members.b.ruleset).toContain('ip saddr != 10.0.2.10 counter name not_from_peer drop');
    expect(renderPairDocumentText(spec, b)).toBe(text);
    expect(() => parsePairDocument(text, 1)).toThrow(/it is pair 0's, expected pair 1's/);
    expect(() => parsePairDocument(text.replace('"format":1', '"format":2'))).toThrow(/format 2, expected 1/);
    expect(() => renderPairDocumentText(b, spec)).toThrow(/member a then member b/);
  });
  test('identical NAT IPs of two tenants stay apart by zone', () => {
    const rules = renderGatewayRuleset(spec);
    expect(rules).toContain('"tn1001" : 172.16.255.254, "tn1002" : 172.16.255.254');
    expect(rules).toMatch(/"cx1001" : 1002, "tn1001" : 1002, "cx1002" : 1003, "tn1002" : 1003/);
  });
});

describe('external validators', () => {
  test('shellcheck passes on every gateway script and the shell library they source', () => {
    if (!haveTool('shellcheck')) return;
    for (const name of GATEWAY_SCRIPT_NAMES) {
      const f = join(dir, name);
      writeFileSync(f, files.find((x) => x.path.endsWith(`/bin/${name}`))!.content);
      expect(() => execFileSync('shellcheck', ['-s', 'bash', f], { encoding: 'utf8' })).not.toThrow();
    }
    const lib = join(dir, 'crossvpc-lib.sh');
    writeFileSync(lib, files.find((x) => x.path === '/etc/crossvpc/crossvpc-lib.sh')!.content);
    expect(() => execFileSync('shellcheck', ['-s', 'bash', lib], { encoding: 'utf8' })).not.toThrow();
  });

  test('the input chain drops tunnels and tenant ENIs first, whatever listens (the metrics port included), and accepts nothing itself', () => {
    const rs = renderGatewayRuleset(spec);
    const input = rs.slice(rs.indexOf('chain input {'), rs.indexOf('}', rs.indexOf('chain input {')));
    const rules = input.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !l.startsWith('chain') && !l.startsWith('type'));
    expect(rules.slice(0, 2)).toEqual(['iifname @tunnel_ifs counter name to_gateway drop', 'iifname @tenant_ifs counter name to_gateway drop']);
    expect(rules.join('\n')).not.toMatch(/accept|9100|dport \{/);
  });
  test('per-tenant traffic counters: one per tenant and direction, keyed by the interface traffic came in on', () => {
    const rs = renderGatewayRuleset(spec);
    expect(rs).toContain('map traffic_of_if { type ifname : counter; elements = { "cx1001" : "t1001_to_tenant", "tn1001" : "t1001_to_pods", "cx1002" : "t1002_to_tenant", "tn1002" : "t1002_to_pods" } }');
    for (const c of ['t1001_to_tenant', 't1001_to_pods', 't1002_to_tenant', 't1002_to_pods']) expect(rs).toContain(`  counter ${c} {}`);
    // Every accept of forward goes through the counting chain.
    const fwd = rs.slice(rs.indexOf('chain forward {'), rs.indexOf('chain accepted {'));
    expect(fwd).not.toMatch(/\baccept\b/);
    expect(fwd.match(/goto accepted/g)).toHaveLength(5); // established, NAT policy, internet egress through the tenant VPC and through an EIP, port forwards
  });
  test('without metrics, user data ships neither the metrics script, its units nor its constants', () => {
    const off = renderGatewayFiles({ ...spec, metrics: false }, { conntrackMax: 262144 });
    expect(off.map((f) => f.path).filter((p) => /metrics|exporter/.test(p))).toEqual([]);
    expect(off.find((f) => f.path.endsWith('crossvpc-lib.sh'))!.content).not.toContain('METRIC_HELP');
    expect(files.map((f) => f.path).filter((p) => /metrics|exporter/.test(p))).toEqual(['/etc/crossvpc/bin/crossvpc-metrics', '/etc/systemd/system/crossvpc-metrics.service', '/etc/systemd/system/crossvpc-node-exporter.service']);
  });
  test('nft -c accepts the ruleset (in a throwaway network namespace)', () => {
    if (!haveTool('nft', ['--version']) || !isRootLinux()) return;
    const f = join(dir, 'ruleset.nft');
    writeFileSync(f, renderGatewayRuleset(spec));
    execFileSync('unshare', ['-n', 'nft', '-c', '-f', f], { encoding: 'utf8' });
  });

  test('cloud-init schema accepts the synthesized user data of every member', () => {
    if (!haveTool('cloud-init', ['--version'])) return;
    const json = synthJson();
    for (const [id, inst] of Object.entries<any>(json.resource.aws_instance)) {
      const f = join(dir, `${id}.yaml`);
      const deployed = asDeployed(userDataOf(inst, json));
      writeFileSync(f, deployed);
      const out = execFileSync('cloud-init', ['schema', '-c', f], { encoding: 'utf8' });
      expect(out).toMatch(/Valid (schema|cloud-config)/i);
      expect(parse(deployed).write_files.length).toBeGreaterThan(10);
    }
  });

  test('the deployed scripts still pass shellcheck after Terraform unescaping', () => {
    if (!haveTool('shellcheck')) return;
    const json = synthJson({ gateway: { metricsSources: ['10.0.8.0/24'] } });
    const inst = Object.values<any>(json.resource.aws_instance)[0];
    const doc = parse(asDeployed(userDataOf(inst, json)));
    const scripts = doc.write_files.filter((w: any) => w.path.includes('/bin/'));
    expect(scripts).toHaveLength(GATEWAY_SCRIPT_NAMES.length);
    for (const s of scripts) {
      expect(s.content).toBe(files.find((x) => x.path === s.path)!.content);
    }
  });
});

describe('GRE (checked statically: this kernel has no GRE)', () => {
  const gre = buildCrossVpcModel('Test', {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
    gateway: { subnetId: 'subnet-g', tunnel: 'gre' },
    tenants: [{ name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], vni: 1001 }],
  });
  const greSpec = buildGatewayMemberSpec(gre, 0, 'a', {
    selfIp: '10.0.2.10', peerIp: '10.0.2.11', selfEniId: 'eni-self', peerEniId: 'eni-peer', haVip: '10.0.2.254', tenants: { alpha: tenantBinding(1) },
  }, { advertIntervalSec: 0.5, connLimitPerTenant: 65536, configParameter: '/crossvpc/pair0-test', configPollSec: 5, metrics: true });
  const greFiles = renderGatewayFiles(greSpec, { conntrackMax: 262144 });

  test('keyed GRE costs 28 bytes and the gateway renders NBMA GRE keyed by VNI', () => {
    expect(gre.tunnelMtu).toBe(9001 - 28);
    const env = greFiles.find((f) => f.path.endsWith('gateway.env'))!.content;
    expect(env).toContain("TUNNEL='gre'");
    const dp = greFiles.find((f) => f.path.endsWith('bin/crossvpc-apply'))!.content;
    expect(dp).toContain('ip link add "$cx" type gre key "$vni" dev "$underlay"');
    expect(renderGatewayRuleset(greSpec)).toContain('ip protocol gre ip saddr != @node_cidrs counter name spoofed_tunnel drop');
  });

  test('nft -c accepts the GRE ruleset', () => {
    if (!haveTool('nft', ['--version']) || !isRootLinux()) return;
    const f = join(dir, 'gre.nft');
    writeFileSync(f, renderGatewayRuleset(greSpec));
    execFileSync('unshare', ['-n', 'nft', '-c', '-f', f], { encoding: 'utf8' });
  });
});

describe('cloud-config rendered in pieces', () => {
  // The reference: the same document rendered by the yaml library in one piece.
  const whole = (fs: RenderedFile[], units: string[]) => `#cloud-config\n${new Document({
    package_update: true,
    packages: GATEWAY_PACKAGES,
    write_files: fs.map((f) => ({ path: f.path, owner: 'root:root', permissions: f.permissions, content: f.content })),
    runcmd: [
      ['ln', '-sf', MEMBER_CLI.script, MEMBER_CLI.path],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'disable', '--now', 'keepalived.service', 'conntrackd.service', 'prometheus-node-exporter.service'],
      ['systemctl', 'enable', '--now', ...units],
    ],
  }).toString({ blockQuote: 'literal', lineWidth: 0 })}`;
  const tricky: RenderedFile[] = [
    { path: '/t/indented-first', permissions: '0644', content: '  leading spaces\nno trailing newline' },
    { path: '/t/trailing-blank', permissions: '0644', content: 'a\n\n\n' },
    { path: '/t/blank-inside', permissions: '0644', content: 'a\n\n   \n\tb\n' },
    { path: '/t/empty', permissions: '0644', content: '' },
    { path: '/t/yaml-like', permissions: '0755', content: 'k: "v" # c\n- item\n? q\n' },
    { path: '/t/one-line', permissions: '0644', content: 'one line' },
    { path: '/t/token', permissions: '0644', content: 'IP=${TfToken[TOKEN.7]}\n' },
  ];
  test.each([
    ['a member with metrics', files, renderGatewayUnits(true).map((u) => u.name)],
    ['a member without metrics', renderGatewayFiles({ ...spec, metrics: false }, { conntrackMax: 262144 }), renderGatewayUnits(false).map((u) => u.name)],
    ['awkward file contents', tricky, ['x.service']],
  ])('%s: byte-identical to the document rendered at once', (_, fs, units) => {
    expect(renderCloudConfig(fs, units)).toBe(whole(fs, units));
    // Twice: the second rendering comes from the cache of shared entries.
    expect(renderCloudConfig(fs, units)).toBe(whole(fs, units));
  });
  test('control: the comparison sees a changed entry', () => {
    const changed = tricky.map((f, i) => (i === 1 ? { ...f, content: 'a\n\n' } : f));
    expect(renderCloudConfig(changed, ['x.service'])).not.toBe(whole(tricky, ['x.service']));
  });
});

describe('user data packaging', () => {
  test('scripts ship without indentation only because nothing in them depends on it', () => {
    for (const name of [...GATEWAY_SCRIPT_NAMES, 'crossvpc-lib']) {
      const lines = readFileSync(join(__dirname, '../lib/render/gateway', `${name}.sh`), 'utf8').split('\n').filter((l) => !/^\s*#/.test(l));
      // No heredoc (its body keeps its indentation); `<<<` and arithmetic shifts are fine.
      expect(lines.filter((l) => /(^|[^<(])<<-?\s*['"]?[A-Za-z_]/.test(l)).map((l) => `${name}: ${l}`)).toEqual([]);
      // A continuation joins the next line without its indentation: a space must separate the words.
      expect(lines.filter((l) => /[^ \\]\\$/.test(l)).map((l) => `${name}: ${l}`)).toEqual([]);
      // No double-quoted string spans lines (its indentation is data); single-quoted ones are awk programs.
      expect(lines.filter((l) => (l.replace(/\\./g, '').replace(/'[^']*'/g, '').match(/"/g) ?? []).length % 2 === 1).map((l) => `${name}: ${l}`)).toEqual([]);
    }
    // Control: each check sees what it is for.
    expect(/(^|[^<(])<<-?\s*['"]?[A-Za-z_]/.test('cat <<EOF')).toBe(true);
    expect(/[^ \\]\\$/.test('foo\\')).toBe(true);
  });

  const text = '#cloud-config\nrun: "a\\b"\t${HOME} %{x} ${TfToken[TOKEN.1]}\r\n';

  test('unpackUserData reads back what packUserData wrote, as Terraform holds it', () => {
    const packed = packUserData(text);
    expect(packed.shared).toEqual([]); // too short to share
    expect(packed.expression).toMatch(/^\$\{base64gzip\("#cloud-config\\n/);
    // Tokens become live interpolations; literal ${ and %{ are escaped.
    expect(unpackUserData(packed.expression, {})).toBe('#cloud-config\nrun: "a\\b"\t$${HOME} %%{x} ${${TfToken[TOKEN.1]}}\r\n');
  });

  describe('the size estimate, once per shape', () => {
    const config = (pair: string, member: string, body: string) => `#cloud-config\nwrite_files:\n  - path: /etc/crossvpc/gateway.env\n    content: |\n      PAIR='${pair}' MEMBER='${member}' SELF=\${TfToken[TOKEN.${pair}]}\n${body}`;
    const script = (word: string) => `  - path: /etc/crossvpc/bin/s\n    content: |\n${Array.from({ length: 120 }, (_, i) => `      echo ${word} ${i * 7919 % 1000}\n`).join('')}`;
    const body = script('hello');
    const estimate = (text: string) => estimatedUserDataBytes(text, packUserData(text));
    test('members that differ in numbers share one gzip; anything else is its own shape', () => {
      // Random-looking digits compress worse than repeated ones: the exact sizes differ.
      const first = config('11111111', 'a', body);
      const other = config('73920481', 'a', body);
      expect(packedUserDataBytes(other)).not.toBe(packedUserDataBytes(first));
      expect(estimate(first)).toBe(packedUserDataBytes(first));
      expect(estimate(other)).toBe(estimate(first));
      expect(Math.abs(estimate(other) - packedUserDataBytes(other))).toBeLessThanOrEqual(8);
      // Controls: another member letter, or other shared content under a same-length name, is measured anew.
      const b = config('11111111', 'b', body + '      echo b only\n');
      expect(estimate(b)).toBe(packedUserDataBytes(b));
      const otherScript = config('11111111', 'a', script('greetings'));
      expect(packUserData(otherScript).shared[0].name).not.toBe(packUserData(first).shared[0].name);
      expect(packedUserDataBytes(otherScript)).not.toBe(packedUserDataBytes(first));
      expect(estimate(otherScript)).toBe(packedUserDataBytes(otherScript));
    });
  });

  describe('shared parts', () => {
    const script = (tag: string) => `  - path: /etc/crossvpc/bin/${tag}\n    content: |\n${'      echo "${HOME}" $${local.crossvpc_user_data_0123456789abcdef}\n'.repeat(40)}`;
    const member = (self: string, tag = 'x') => `#cloud-config\nwrite_files:\n  - path: /etc/crossvpc/gateway.env\n    content: |\n      SELF_IP='${self}'\n${script(tag)}runcmd:\n  - [true]\n`;
    const a = packUserData(member('${TfToken[TOKEN.1]}'));
    const b = packUserData(member('${TfToken[TOKEN.2]}'));

    test('token-free blocks go to one local named by content; the member\'s own block stays inline', () => {
      expect(a.shared).toHaveLength(1);
      expect(a.shared[0].name).toMatch(/^crossvpc_user_data_[0-9a-f]{16}$/);
      expect(a.expression).toContain(`\${local.${a.shared[0].name}}`);
      expect(a.expression).toContain('${TfToken[TOKEN.1]}');
      expect(a.expression).not.toContain('/etc/crossvpc/bin/x');
      // Two members share it; changed text gets a new name (so the expression changes too).
      expect(b.shared).toEqual(a.shared);
      const changed = packUserData(member('${TfToken[TOKEN.1]}', 'y'));
      expect(changed.shared[0].name).not.toBe(a.shared[0].name);
      expect(changed.expression).not.toBe(a.expression);
    });

    test('unpacking with the locals gives exactly the text packed inline (escapes included); an escaped literal reference stays literal', () => {
      const locals = Object.fromEntries(a.shared.map((p) => [p.name, p.value]));
      const whole = member('${TfToken[TOKEN.1]}');
      expect(unpackUserData(a.expression, locals)).toBe(unpackBase64Gzip(packBase64Gzip(whole)));
      expect(unpackUserData(a.expression, locals)).toContain('$$${local.crossvpc_user_data_0123456789abcdef}');
    });

    test('a missing local is an error, never an empty part', () => {
      expect(() => unpackUserData(a.expression, {})).toThrow(new RegExp(`local\\.${a.shared[0].name}`));
    });
  });

  test('unpackUserData refuses anything else', () => {
    expect(() => unpackUserData('#cloud-config\n', {})).toThrow(/not a base64gzip/);
  });
});
