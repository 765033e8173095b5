/**
 * Plan-level transition checks, pure (no root): which gateway members Terraform would
 * replace or restart going from plan A to plan B, on hand-made plans and on synthesized ones.
 */
import { checkInstanceChanges, formatInstanceChanges, isRollingInstance } from '../lib/emulate/replacements';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { TenantProps } from '../lib';
import { egressChanges, replacedAttachments, tenantChanges, unsupportedPeeringEdit } from '../lib/emulate/apply';
import type { GatewayMember } from '../lib/emulate/member';
import { EmulatedPlan, loadEmulatedPlan, memberRows } from '../lib/emulate/member-image';
import { OverlappingTenantsOptions } from '../examples/overlapping-tenants/stack';
import { synthJson } from './helpers';
import { packBase64Gzip, packUserData } from '../lib/render/user-data';

const USER_DATA_1 = '${base64gzip("#cloud-config\\nv: 1\\n")}';
const USER_DATA_2 = '${base64gzip("#cloud-config\\nv: 2\\n")}';

/** One pair's two members as ProxyNodePair writes them; `rolling` names the member rollingUpdate rolls. */
function plan(opts: { rolling?: 'a' | 'b'; ami?: string; userData?: { a?: string; b?: string }; extra?: Record<string, any>; ignore?: string[] | string } = {}): any {
  const inst = (m: 'a' | 'b') => ({
    ami: opts.ami ?? 'ami-0123456789abcdef0',
    instance_type: 'c6in.xlarge',
    iam_instance_profile: '${aws_iam_instance_profile.P.name}',
    placement_group: '${aws_placement_group.Spread.name}',
    primary_network_interface: { network_interface_id: `\${aws_network_interface.Primary${m}.id}` },
    tags: { 'crossvpc:pair': '0', 'crossvpc:member': m },
    user_data_base64: opts.userData?.[m] ?? USER_DATA_1,
    user_data_replace_on_change: opts.rolling === m,
    lifecycle: opts.rolling === m ? {} : { ignore_changes: opts.ignore ?? ['user_data_base64', 'ami'] },
    ...opts.extra,
  });
  return {
    resource: {
      aws_instance: { MemberA: inst('a'), MemberB: inst('b') },
      aws_network_interface: { Primarya: { subnet_id: 'subnet-1' }, Primaryb: { subnet_id: 'subnet-1' } },
      aws_placement_group: { Spread: { name: 'crossvpc-pair0-x', strategy: 'spread' } },
    },
  };
}

describe('checkInstanceChanges', () => {
  test('identical plans: nothing to do', () => {
    const r = checkInstanceChanges(plan(), plan());
    expect(r).toMatchObject({ changes: [], violations: [], rolling: [], ok: true });
    expect(r.diffs.map((d) => d.changed)).toEqual([[], []]);
  });

  test('an AMI-only change replaces nobody: both members ignore ami', () => {
    const r = checkInstanceChanges(plan({ ami: 'ami-0aaaaaaaaaaaaaaaa' }), plan({ ami: 'ami-0bbbbbbbbbbbbbbbb' }));
    expect(r.changes).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.diffs).toEqual([
      { logicalId: 'MemberA', member: 'g0a', changed: ['ami'], ignored: ['ami'] },
      { logicalId: 'MemberB', member: 'g0b', changed: ['ami'], ignored: ['ami'] },
    ]);
    expect(r.notes.join('\n')).toMatch(/g0a: ami changed but lifecycle.ignore_changes keeps/);
  });

  test('an AMI change without ignore_changes replaces both members and is refused', () => {
    const r = checkInstanceChanges(plan({ ignore: [] }), plan({ ignore: [], ami: 'ami-0bbbbbbbbbbbbbbbb' }));
    expect(r.changes.map((c) => [c.member, c.kind, c.because])).toEqual([['g0a', 'replace', ['ami']], ['g0b', 'replace', ['ami']]]);
    expect(r.ok).toBe(false);
    expect(r.violations[0]).toMatch(/^g0a \(aws_instance.MemberA\) would be replaced: ami; only the member rollingUpdate names may be replaced \(rolling: none\)/);
  });

  test('rollingUpdate b with new user data: b is replaced, a is untouched, and that is allowed', () => {
    const r = checkInstanceChanges(plan(), plan({ rolling: 'b', userData: { a: USER_DATA_2, b: USER_DATA_2 } }));
    expect(r.rolling).toEqual(['g0b']);
    expect(r.changes).toEqual([{ logicalId: 'MemberB', member: 'g0b', kind: 'replace', because: ['user_data_base64 (user_data_replace_on_change)'] }]);
    expect(r.ok).toBe(true);
    expect(r.diffs[0]).toEqual({ logicalId: 'MemberA', member: 'g0a', changed: ['user_data_base64'], ignored: ['user_data_base64'] });
    expect(formatInstanceChanges(r)).toMatch(/g0b\s+replace\s+user_data_base64/);
  });

  test('rollingUpdate b with the same user data replaces nobody (only the flag changes, in place)', () => {
    const r = checkInstanceChanges(plan(), plan({ rolling: 'b' }));
    expect(r.changes).toEqual([]);
    expect(r.rolling).toEqual(['g0b']);
  });

  test('new user data without ignore_changes and without replace-on-change stops and starts the member: refused', () => {
    const r = checkInstanceChanges(plan({ ignore: [] }), plan({ ignore: [], userData: { a: USER_DATA_2 } }));
    expect(r.changes).toEqual([{ logicalId: 'MemberA', member: 'g0a', kind: 'stop-start', because: ['user_data_base64'] }]);
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toMatch(/g0a .* would be stopped and started: user_data_base64/);
  });

  test('ignore_changes = "all" hides everything, even ForceNew arguments', () => {
    const r = checkInstanceChanges(plan({ ignore: 'all' }), plan({ ignore: 'all', extra: { key_name: 'new-key', subnet_id: 'subnet-2' } }));
    expect(r.changes).toEqual([]);
    expect(r.diffs[0].ignored).toEqual(['key_name', 'subnet_id']);
  });

  test.each([
    ['key_name', 'ops-key'],
    ['availability_zone', 'eu-west-1b'],
    ['subnet_id', 'subnet-2'],
    ['tenancy', 'dedicated'],
    ['placement_group', '${aws_placement_group.Other.name}'],
    ['primary_network_interface', { network_interface_id: '${aws_network_interface.Other.id}' }],
  ])('%s forces a replacement', (attr, value) => {
    const r = checkInstanceChanges(plan(), plan({ extra: { [attr]: value } }));
    expect(r.changes.map((c) => [c.member, c.kind, c.because[0]])).toEqual([['g0a', 'replace', attr], ['g0b', 'replace', attr]]);
    expect(r.ok).toBe(false);
  });

  test('iam_instance_profile, tags and metadata options change in place; instance_type stops and starts', () => {
    const inPlace = checkInstanceChanges(plan(), plan({ extra: { iam_instance_profile: '${aws_iam_instance_profile.Q.name}', tags: { x: 'y' }, metadata_options: { http_tokens: 'required' } } }));
    expect(inPlace.changes).toEqual([]);
    expect(inPlace.diffs[0].changed).toEqual(['iam_instance_profile', 'metadata_options', 'tags']);
    const resized = checkInstanceChanges(plan(), plan({ extra: { instance_type: 'c6in.4xlarge' } }));
    expect(resized.changes.map((c) => [c.member, c.kind])).toEqual([['g0a', 'stop-start'], ['g0b', 'stop-start']]);
  });

  test('a primary ENI replaced underneath (new subnet) replaces its instance though the reference text is the same', () => {
    const b = plan();
    b.resource.aws_network_interface.Primarya.subnet_id = 'subnet-9';
    const r = checkInstanceChanges(plan(), b);
    expect(r.changes).toEqual([{ logicalId: 'MemberA', member: 'g0a', kind: 'replace', because: ['primary_network_interface (aws_network_interface.Primarya is replaced (subnet_id))'] }]);
  });

  test('root_block_device: encryption replaces, a new size does not', () => {
    const enc = checkInstanceChanges(plan({ extra: { root_block_device: { volume_size: 8 } } }), plan({ extra: { root_block_device: { volume_size: 8, encrypted: true } } }));
    expect(enc.changes[0]).toMatchObject({ kind: 'replace', because: ['root_block_device (encrypted)'] });
    const size = checkInstanceChanges(plan({ extra: { root_block_device: { volume_size: 8 } } }), plan({ extra: { root_block_device: { volume_size: 16 } } }));
    expect(size.changes).toEqual([]);
  });

  test('members only in A are destroyed (refused), members only in B are created (allowed)', () => {
    const a = plan();
    const b = plan();
    delete b.resource.aws_instance.MemberB;
    b.resource.aws_instance.Pair1MemberA = { ...a.resource.aws_instance.MemberA, tags: { 'crossvpc:pair': '1', 'crossvpc:member': 'a' } };
    const r = checkInstanceChanges(a, b);
    expect(r.changes.map((c) => [c.member, c.kind])).toEqual([['g0b', 'destroy'], ['g1a', 'create']]);
    expect(r.violations).toEqual([expect.stringMatching(/^g0b .* would be destroyed: not in plan B; a member is removed only with its pair/)]);
  });

  test('a rolling member is one with user_data_replace_on_change and no ignore_changes', () => {
    expect(isRollingInstance({ user_data_replace_on_change: true, lifecycle: {} })).toBe(true);
    expect(isRollingInstance({ user_data_replace_on_change: true })).toBe(true);
    expect(isRollingInstance({ user_data_replace_on_change: true, lifecycle: { ignore_changes: ['ami'] } })).toBe(false);
    expect(isRollingInstance({ user_data_replace_on_change: false, lifecycle: {} })).toBe(false);
  });
});

describe('checkInstanceChanges on synthesized plans', () => {
  test('the example with a new amiId replaces no member', () => {
    const r = checkInstanceChanges(synthJson({ gateway: { amiId: 'ami-0aaaaaaaaaaaaaaaa' } }), synthJson({ gateway: { amiId: 'ami-0bbbbbbbbbbbbbbbb' } }));
    expect(r.changes).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.diffs.every((d) => d.changed.includes('ami') && d.ignored.includes('ami'))).toBe(true);
  });

  test('rollingUpdate b with a new advert interval replaces b only', () => {
    const r = checkInstanceChanges(synthJson({}), synthJson({ gateway: { rollingUpdate: 'b', advertIntervalSec: 0.5 } }));
    expect(r.rolling).toEqual(['g0b']);
    expect(r.changes.map((c) => [c.member, c.kind])).toEqual([['g0b', 'replace']]);
    expect(r.ok).toBe(true);
  });

  test('a new advert interval without rollingUpdate replaces nobody (ignored until the member is rolled)', () => {
    const r = checkInstanceChanges(synthJson({}), synthJson({ gateway: { advertIntervalSec: 0.5 } }));
    expect(r.changes).toEqual([]);
    expect(r.diffs.map((d) => d.ignored)).toEqual([['user_data_base64'], ['user_data_base64']]);
  });
});

/** Tenant changes between synthesized plans, as Emulation.apply reads them (no root). */
describe('tenantChanges and egressChanges on synthesized plans', () => {
  const nat = (name: string, vni: number, extra: Partial<TenantProps> = {}): TenantProps =>
    ({ name, vpcId: `vpc-0${name}`, subnetId: `subnet-0${name}`, cidrs: ['172.16.0.0/16'], vni, availabilityZone: 'eu-west-1a', ...extra });
  const peering = { functionRouteTableIds: ['rtb-0f1'], tenantRouteTableIds: ['rtb-0z1'], tenantSecurityGroupIds: ['sg-0z1'], ports: ['tcp:6379'] };
  const peered = (name: string, vni: number, cidrs: string[], extra: Partial<TenantProps> = {}): TenantProps =>
    ({ name, vpcId: `vpc-0${name}`, cidrs, vni, path: 'peering', peering, ...extra });
  const gateway = { instanceType: 'c6in.4xlarge' };
  const load = (opts: OverlappingTenantsOptions): EmulatedPlan => {
    const dir = mkdtempSync(join(tmpdir(), 'crossvpc-changes-'));
    writeFileSync(join(dir, 'cdk.tf.json'), JSON.stringify(synthJson({ gateway, ...opts })));
    return loadEmulatedPlan(join(dir, 'cdk.tf.json'));
  };
  /** Plan A's members (their rows) against plan B's rows, as the applier compares them. */
  const changes = (a: EmulatedPlan, b: EmulatedPlan) => {
    const members = (['a', 'b'] as const).map((member) => ({ pair: 0, member, tenants: memberRows(a, { pair: 0, member }) }) as unknown as GatewayMember);
    return tenantChanges(a, b, members, (m) => memberRows(b, m));
  };
  const alpha = nat('alpha', 1001);
  const beta = nat('beta', 1002);
  const zeta = peered('zeta', 1006, ['10.20.0.0/16']);
  const base = load({ tenants: [alpha, beta] });

  test('adding a peered tenant adds it and leaves every other tenant, its rows and the documents as they were', () => {
    const b = load({ tenants: [alpha, beta, zeta] });
    expect(changes(base, b)).toEqual({ added: ['zeta'], retired: [], edited: [], switched: [], unchanged: ['alpha', 'beta'], paths: { alpha: 'nat', beta: 'nat', zeta: 'peering' } });
    expect([...b.documents.values()].map((d) => d.value)).toEqual([...base.documents.values()].map((d) => d.value));
    expect(b.agentConfig.peered!.map((t) => t.name)).toEqual(['zeta']);
    // Control: an edit of beta shows as one (the comparison sees entries and rows).
    expect(changes(base, load({ tenants: [alpha, nat('beta', 1002, { cidrs: ['172.16.0.0/16', '172.20.0.0/16'] }), zeta] })).edited).toEqual(['beta']);
  });

  test('retiring a peered tenant (retired: true, or dropped from the list) retires it and nothing else', () => {
    const b = load({ tenants: [alpha, beta, zeta] });
    for (const c of [load({ tenants: [alpha, beta, { ...zeta, retired: true }] }), base]) {
      expect(changes(b, c)).toMatchObject({ added: [], retired: ['zeta'], edited: [], switched: [], unchanged: ['alpha', 'beta'] });
      expect(changes(b, c).paths.zeta).toBe('peering');
      expect(c.peerings).toEqual([]);
    }
  });

  test('NAT -> peering and back with the pair and slot pinned: a switch, the others unchanged, the same VNI', () => {
    const a = load({ tenants: [alpha, beta, nat('delta', 1004)] });
    const b = load({ tenants: [alpha, beta, peered('delta', 1004, ['172.16.0.0/16'], { pair: 0, slot: 3 })] });
    expect(changes(a, b)).toMatchObject({ added: [], retired: [], edited: [], switched: [{ tenant: 'delta', to: 'peering' }], unchanged: ['alpha', 'beta'] });
    expect(changes(b, a)).toMatchObject({ added: [], retired: [], edited: [], switched: [{ tenant: 'delta', to: 'nat' }], unchanged: ['alpha', 'beta'] });
    expect(b.agentConfig.peered!.find((t) => t.name === 'delta')!.vni).toBe(a.agentConfig.tenants.find((t) => t.name === 'delta')!.vni);
    // In the middle of the list: pinned, beta after it stays; unpinned (the control), beta moves into its slot.
    const c = load({ tenants: [alpha, nat('delta', 1004), beta] });
    expect(changes(c, load({ tenants: [alpha, peered('delta', 1004, ['172.16.0.0/16'], { pair: 0, slot: 2 }), beta] }))).toMatchObject({ edited: [], unchanged: ['alpha', 'beta'] });
    expect(replacedAttachments(c.plan.json, load({ tenants: [alpha, peered('delta', 1004, ['172.16.0.0/16'], { pair: 0, slot: 2 }), beta] }).plan.json)).toEqual({});
    // Its rows do not say where an ENI sits: the attachments do (the applier refuses this transition).
    const moved = replacedAttachments(c.plan.json, load({ tenants: [alpha, peered('delta', 1004, ['172.16.0.0/16']), beta] }).plan.json);
    expect(Object.keys(moved)).toEqual(['beta']);
    expect(moved.beta.join('\n')).toMatch(/Tenant-beta-MemberA_Attachment\S*: device_index 3 -> 2/);
  });

  test('internet egress on and off are edits of that tenant only, and egressChanges names them', () => {
    const on = load({ tenants: [{ ...alpha, internetEgress: 'tenantVpc' }, beta] });
    expect(egressChanges(base, on)).toEqual({ on: ['alpha'], off: [] });
    expect(egressChanges(on, base)).toEqual({ on: [], off: ['alpha'] });
    expect(changes(base, on)).toMatchObject({ edited: ['alpha'], unchanged: ['beta'] });
    expect(egressChanges(base, base)).toEqual({ on: [], off: [] });
  });

  test('a peered tenant edited in place is refused with its name; adds, retirements and switches are not', () => {
    const b = load({ tenants: [alpha, beta, zeta] });
    const edited = load({ tenants: [alpha, beta, peered('zeta', 1006, ['10.20.0.0/16'], { peering: { ...peering, ports: ['tcp:6379', 'tcp:6380'] } })] });
    expect(unsupportedPeeringEdit(changes(b, edited))).toMatch(/^plan B edits peered tenant\(s\) zeta in place .*emulate plan B on its own$/);
    expect(unsupportedPeeringEdit(changes(base, b))).toBeUndefined();
    expect(unsupportedPeeringEdit(changes(b, base))).toBeUndefined();
  });
});

describe('user data compared as Terraform evaluates it', () => {
  const script = (v: string) => `#cloud-config\nwrite_files:\n  - path: /etc/crossvpc/bin/x\n    content: |\n${`      echo "\${HOME}" ${v}\n`.repeat(60)}`;
  const withLocals = (text: string) => {
    const packed = packUserData(text);
    const p = plan({ rolling: 'b', userData: { a: packed.expression, b: packed.expression } });
    return { ...p, locals: Object.fromEntries(packed.shared.map((x) => [x.name, x.value])) };
  };
  test('the same text inline (plan A) and through a shared local (plan B) changes no member', () => {
    const inline = plan({ rolling: 'b', userData: { a: packBase64Gzip(script('v1')), b: packBase64Gzip(script('v1')) } });
    const b = withLocals(script('v1'));
    expect(b.resource.aws_instance.MemberA.user_data_base64).toContain('${local.crossvpc_user_data_');
    const r = checkInstanceChanges(inline, b);
    expect(r.changes).toEqual([]);
    expect(r.diffs.map((d) => d.changed)).toEqual([[], []]);
  });
  test('control: a changed shared part changes user data (the rolling member is replaced)', () => {
    const r = checkInstanceChanges(withLocals(script('v1')), withLocals(script('v2')));
    expect(r.changes).toEqual([{ logicalId: 'MemberB', member: 'g0b', kind: 'replace', because: ['user_data_base64 (user_data_replace_on_change)'] }]);
    expect(r.diffs.find((d) => d.logicalId === 'MemberA')?.ignored).toEqual(['user_data_base64']);
  });
});
