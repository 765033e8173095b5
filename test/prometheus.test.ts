/**
 * The emulation's Prometheus pieces that need no root: prometheus.yml from scrape targets
 * (promtool must accept it), the members' metrics ingress read from a synthesized plan, and
 * where the monitoring host goes and which members' security groups refuse it.
 */
import { execFileSync, spawnSync } from 'child_process';
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parse } from 'yaml';
import { AGENT_JOB, GATEWAY_JOB, placeMonitoringHost } from '../lib/emulate/monitoring';
import { primaryEniIngress } from '../lib/emulate/plan';
import { renderPrometheusConfig, ScrapeTarget } from '../lib/emulate/prometheus';
import { haveTool, synthJson } from './helpers';

const targets: ScrapeTarget[] = [
  { job: GATEWAY_JOB, address: '10.0.255.10:9100', labels: { pair: '0', member: 'a' } },
  { job: GATEWAY_JOB, address: '10.0.255.11:9100', labels: { pair: '0', member: 'b' } },
  { job: AGENT_JOB, address: '10.0.1.10:9740', labels: { node: 'n1' } },
];

describe('prometheus.yml', () => {
  const text = renderPrometheusConfig(targets, [GATEWAY_JOB]);

  it('scrapes every target each second, with its labels; the gateway job honours the members\' own pair/member labels', () => {
    const doc = parse(text);
    expect(doc.global).toEqual({ scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' });
    expect(doc.scrape_configs).toEqual([
      { job_name: GATEWAY_JOB, honor_labels: true, static_configs: [
        { targets: ['10.0.255.10:9100'], labels: { pair: '0', member: 'a' } },
        { targets: ['10.0.255.11:9100'], labels: { pair: '0', member: 'b' } },
      ] },
      { job_name: AGENT_JOB, static_configs: [{ targets: ['10.0.1.10:9740'], labels: { node: 'n1' } }] },
    ]);
  });

  it('passes promtool check config', () => {
    if (!haveTool('promtool')) return;
    const file = join(mkdtempSync(join(tmpdir(), 'crossvpc-prom-')), 'prometheus.yml');
    writeFileSync(file, text);
    expect(execFileSync('promtool', ['check', 'config', file], { encoding: 'utf8' })).toContain('SUCCESS');
    // Control: promtool does refuse a scrape timeout longer than the interval.
    writeFileSync(file, text.replace('scrape_timeout: 1s', 'scrape_timeout: 5s'));
    expect(() => execFileSync('promtool', ['check', 'config', file], { stdio: 'pipe' })).toThrow(/scrape timeout greater than scrape interval/);
  });
});

describe('the Prometheus server', () => {
  it('refuses to start without the binaries, naming the Debian package', () => {
    // The built module in a process whose PATH has a shell and nothing else.
    const bin = mkdtempSync(join(tmpdir(), 'crossvpc-nobin-'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const mod = join(__dirname, '..', 'dist', 'lib', 'emulate', 'prometheus.js');
    if (!existsSync(mod)) throw new Error(`${mod} missing: run npm run build first`);
    const script = `new (require(${JSON.stringify(mod)}).PrometheusServer)('cv0000-mon', ${JSON.stringify(bin)}, () => { throw new Error('ran something'); })
      .start('global: {}\\n').then(() => console.log('started'), (e) => console.log(e.message));`;
    const out = (path: string) => spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: path } }).stdout.trim();
    expect(out(bin)).toBe('this plan has gateway metrics on, and the emulation scrapes them with a real Prometheus server: prometheus is missing; install it with: apt-get install -y prometheus');
    // Control: with the host's PATH the check passes and start goes on (to the injected exec).
    if (haveTool('promtool')) expect(out(process.env.PATH!)).toBe('ran something');
  });
});

describe('metrics ingress of a member (the pair security group)', () => {
  it('is the metricsSources CIDRs, or metricsSecurityGroupId, and nothing without the metrics', () => {
    expect(primaryEniIngress(synthJson({ gateway: { metricsSources: ['10.0.8.0/24', '10.0.9.0/28'] } }), 0, 'a', 9100)).toEqual({ cidrs: ['10.0.8.0/24', '10.0.9.0/28'], groups: [] });
    expect(primaryEniIngress(synthJson({ gateway: { metricsSecurityGroupId: 'sg-0123456789abcdef0' } }), 0, 'b', 9100)).toEqual({ cidrs: [], groups: ['sg-0123456789abcdef0'] });
    expect(primaryEniIngress(synthJson({ gateway: { metricsSources: ['10.0.8.0/24'], metricsPort: 9200 } }), 0, 'a', 9200).cidrs).toEqual(['10.0.8.0/24']);
    expect(primaryEniIngress(synthJson({ gateway: { metricsSources: ['10.0.8.0/24'], metricsPort: 9200 } }), 0, 'a', 9100).cidrs).toEqual([]);
    expect(primaryEniIngress(synthJson({}), 0, 'a', 9100)).toEqual({ cidrs: [], groups: [] });
  });

  it('names the member when the plan has no primary ENI for it', () => {
    expect(() => primaryEniIngress(synthJson({}), 0, 'c', 9100)).toThrow(/pair 0 member c, found 0/);
  });
});

describe('monitoring host placement', () => {
  const taken = ['10.0.1.0/24', '10.0.255.0/24', '10.0.101.0/24', '10.0.102.0/24'];
  const place = (cidrs: string[], groups: string[] = []) => placeMonitoringHost('10.0.0.0/16', taken, new Map([['g0a', { cidrs, groups }], ['g0b', { cidrs, groups }]]), new Set(['${aws_security_group.Pair0.id}']));

  it('takes 10.x.8.10 when a source covers it, else a host of the first source inside the function VPC', () => {
    expect(place(['10.0.0.0/16'])).toMatchObject({ ip: '10.0.8.10', subnet: '10.0.8.0/24', refused: new Map() });
    expect(place(['10.0.50.0/24'])).toMatchObject({ ip: '10.0.50.10', subnet: '10.0.50.0/24', refused: new Map() });
    expect(place(['10.0.60.4/30'])).toMatchObject({ ip: '10.0.60.5', refused: new Map() });
    expect(place(['10.0.70.9/32']).ip).toBe('10.0.70.9');
    // Never in a subnet the members, nodes or pods use.
    expect(place(['10.0.1.0/24']).refused.size).toBe(2);
  });

  it('is admitted by a group source that is not the pair\'s own group: it stands in for that group\'s Prometheus servers', () => {
    const p = place([], ['sg-0123456789abcdef0']);
    expect(p.refused).toEqual(new Map());
    expect(p.sources.get('g0a')).toEqual([p.ip]);
  });

  it('when no source admits it, every member says why, naming the sources and the fix', () => {
    const p = place(['10.9.0.0/24'], ['${aws_security_group.Pair0.id}']);
    expect(p.ip).toBe('10.0.8.10');
    expect(p.sources.get('g0a')).toEqual(['10.9.0.0/24']);
    expect(p.refused.get('g0b')).toMatch(/only from 10\.9\.0\.0\/24, \$\{aws_security_group\.Pair0\.id\}, which does not cover the monitoring host 10\.0\.8\.10 .*metricsSources must include an address of the function VPC 10\.0\.0\.0\/16/);
    expect(place([]).refused.get('g0a')).toMatch(/only from nobody/);
  });
});
