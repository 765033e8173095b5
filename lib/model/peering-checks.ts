import { Cidr, cidrsOverlap } from './cidr';
import { Checker } from './checker';
import { checkEipEgressProp, isEipEgress } from './eip-egress';
import { PeeringInput, TenantInput, TenantPath } from './inputs';
import { PeeringModel, PeeringPort } from './model-types';

const PATHS: readonly TenantPath[] = ['nat', 'peering', 'auto'];
/** `tcp:6379`, `udp:53`, `tcp:5432-5433`; ports without leading zeros. */
const PORT_RULE = /^(tcp|udp):([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?$/;
const AWS_ACCOUNT = /^[0-9]{12}$/;
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]$/;

/** A tenant's path as written, checked against the props that go with it (no resolution of `auto` yet). */
export function checkPathProps(t: TenantInput, p: string, c: Checker): TenantPath {
  c.literal(t.path, `${p}.path`, 'the path', 'because it decides which resources exist', "'nat'");
  const path = t.path ?? 'nat';
  if (!PATHS.includes(path)) {
    throw c.err(`${p}.path`, t.path, `tenant "${t.name}" path must be one of ${PATHS.map((x) => `'${x}'`).join(', ')}`, "use 'nat' (through the gateway pairs), 'peering' (a VPC peering connection) or 'auto'");
  }
  if (path === 'nat' && t.peering !== undefined) {
    throw c.err(`${p}.peering`, t.peering, `tenant "${t.name}" takes the NAT path, so nothing would use its peering settings`, "set path: 'peering' (or 'auto'), or drop peering");
  }
  if (path !== 'nat' && t.peering === undefined) {
    throw c.err(`${p}.peering`, t.peering, `tenant "${t.name}" has path '${path}' but no peering settings, so there are no route tables to route it through`, 'give peering.functionRouteTableIds and peering.tenantRouteTableIds');
  }
  if (path !== 'peering' && t.subnetId === undefined) {
    throw c.err(`${p}.subnetId`, t.subnetId, `tenant "${t.name}" may take the NAT path, which needs a subnet for its NAT ENIs`, "give the tenant subnet in the gateway AZ, or set path: 'peering'");
  }
  if (path === 'peering' && t.subnetId !== undefined) {
    throw c.err(`${p}.subnetId`, t.subnetId, `tenant "${t.name}" takes the peering path, where nothing is created in a tenant subnet`, 'drop subnetId');
  }
  c.literal(t.internetEgress, `${p}.internetEgress`, 'the egress mode', 'because it decides the gateway rules', "'tenantVpc'");
  if (isEipEgress(t.internetEgress)) checkEipEgressProp(t, p, c);
  else if (t.internetEgress !== undefined && !(['none', 'tenantVpc'] as unknown[]).includes(t.internetEgress)) {
    throw c.err(`${p}.internetEgress`, t.internetEgress, `tenant "${t.name}" internet egress must be 'none', 'tenantVpc' or { eipAllocationId, privateIp }`, "use 'tenantVpc' (public destinations through the tenant VPC's own NAT gateway), { eipAllocationId, privateIp } (through a platform Elastic IP), or leave it unset");
  }
  if (path !== 'nat' && t.internetEgress !== undefined) {
    throw c.err(`${p}.internetEgress`, t.internetEgress, `tenant "${t.name}" has path '${path}'; internet egress goes through the gateway pair, so it needs path 'nat' (a peered tenant's pods use the node's own internet path)`, "set path: 'nat', or drop internetEgress");
  }
  if (path === 'peering') {
    for (const k of ['natIp', 'availabilityZone'] as const) {
      if (t[k] !== undefined) {
        throw c.err(`${p}.${k}`, t[k], `tenant "${t.name}" takes the peering path, where ${k} means nothing (no gateway, no NAT ENI)`, `drop ${k}`);
      }
    }
    if ((t.pair === undefined) !== (t.slot === undefined)) {
      const k = t.pair === undefined ? 'slot' : 'pair';
      throw c.err(`${p}.${k}`, t[k], `on the peering path pair and slot only keep a slot reserved (for a tenant moved off the NAT path, so nobody else moves), which takes both`, 'give both pair and slot (the ones it held), or neither');
    }
  }
  return path;
}

/** The peering settings of a tenant that takes the peering path. */
export function checkPeering(t: TenantInput, p: string, c: Checker): PeeringModel {
  const pe = t.peering as PeeringInput;
  const q = `${p}.peering`;
  const ids = (list: unknown, prop: string, required: boolean, prefix: string): string[] => {
    c.literal(list, `${q}.${prop}`, 'the list', 'because it decides how many resources exist', `["${prefix}0123456789abcdef0"]`);
    if (list === undefined && !required) return [];
    if (!Array.isArray(list) || (required && list.length === 0)) {
      throw c.err(`${q}.${prop}`, list, `tenant "${t.name}" needs at least one entry in ${prop}`, `list the ${prefix}… ids`);
    }
    const seen = new Set<string>();
    list.forEach((id, k) => {
      if (typeof id !== 'string' || (!c.isUnresolved(id) && !id.startsWith(prefix))) {
        throw c.err(`${q}.${prop}[${k}]`, id, `not a ${prefix}… id`, `give the id as AWS prints it (${prefix}0123456789abcdef0) or a reference to one`);
      }
      if (seen.has(id)) throw c.err(`${q}.${prop}[${k}]`, id, 'listed twice', 'list each id once');
      seen.add(id);
    });
    return [...list];
  };
  const functionRouteTableIds = ids(pe.functionRouteTableIds, 'functionRouteTableIds', true, 'rtb-');
  const tenantRouteTableIds = ids(pe.tenantRouteTableIds, 'tenantRouteTableIds', true, 'rtb-');
  const tenantSecurityGroupIds = ids(pe.tenantSecurityGroupIds, 'tenantSecurityGroupIds', false, 'sg-');
  c.literal(pe.ports, `${q}.ports`, 'the port list', 'because each entry becomes a security-group rule', '["tcp:6379"]');
  const rawPorts = pe.ports ?? ['all'];
  if (!Array.isArray(rawPorts) || rawPorts.length === 0) {
    throw c.err(`${q}.ports`, pe.ports, 'an empty port list opens nothing', "leave ports unset for ['all'], or list what the pods call, e.g. ['tcp:6379']");
  }
  const ports = rawPorts.map((raw, k) => parsePort(raw, `${q}.ports[${k}]`, c));
  if (pe.peerOwnerId !== undefined && !c.isUnresolved(pe.peerOwnerId) && !AWS_ACCOUNT.test(String(pe.peerOwnerId))) {
    throw c.err(`${q}.peerOwnerId`, pe.peerOwnerId, 'an AWS account id is 12 digits', 'give the tenant account id, e.g. "123456789012", or leave it unset for the same account');
  }
  if (pe.peerRegion !== undefined && !c.isUnresolved(pe.peerRegion) && !AWS_REGION.test(String(pe.peerRegion))) {
    throw c.err(`${q}.peerRegion`, pe.peerRegion, 'not an AWS region name', 'give the region as AWS writes it, e.g. "eu-west-1", or leave it unset for the same region');
  }
  return { functionRouteTableIds, tenantRouteTableIds, tenantSecurityGroupIds, ports, peerOwnerId: pe.peerOwnerId, peerRegion: pe.peerRegion };
}

function parsePort(raw: unknown, prop: string, c: Checker): PeeringPort {
  if (raw === 'all') return { protocol: 'all' };
  if (raw === 'icmp') return { protocol: 'icmp' };
  const m = typeof raw === 'string' ? PORT_RULE.exec(raw) : null;
  const from = m ? Number(m[2]) : NaN;
  const to = m?.[3] !== undefined ? Number(m[3]) : from;
  if (!m || from > 65535 || to > 65535 || to < from) {
    throw c.err(prop, raw, 'not a port rule', "write 'all', 'icmp', 'tcp:6379', 'udp:53' or 'tcp:5432-5433' (ports 1..65535, low-high)");
  }
  return { protocol: m[1] as 'tcp' | 'udp', fromPort: from, toPort: to };
}

/**
 * `auto` in declaration order: peering exactly when the tenant's CIDRs overlap no tenant
 * peered before it (the function VPC overlap is refused for every tenant). Tenants added
 * after it can never change its path; a `peering` tenant that overlaps an earlier peered one
 * is refused, since one VPC route table cannot send a range to two peerings.
 */
export function resolvePaths(drafts: ReadonlyArray<{ t: TenantInput; i: number; path: TenantPath; cidrs: Cidr[] }>, c: Checker): Array<'nat' | 'peering'> {
  const peered: Array<{ name: string; cidrs: Cidr[] }> = [];
  return drafts.map((d) => {
    if (d.path === 'nat') return 'nat';
    // A retired tenant builds nothing; a retired `auto` one keeps its slot, as the NAT path would.
    if (d.t.retired) return d.path === 'peering' ? 'peering' : 'nat';
    const clash = peered.find((o) => o.cidrs.some((oc) => d.cidrs.some((dc) => cidrsOverlap(oc, dc))));
    if (clash && d.path === 'peering') {
      throw c.err(`tenants[${d.i}].cidrs`, d.t.cidrs, `tenant "${d.t.name}" overlaps the peered tenant "${clash.name}"; the function VPC's route tables cannot send one range to two peerings`, `give tenant "${d.t.name}" path 'nat' (or 'auto'), which allows overlap`);
    }
    if (clash) return 'nat';
    peered.push({ name: d.t.name, cidrs: d.cidrs });
    return 'peering';
  });
}
