import { Cidr, cidrContains, cidrContainsIp, cidrsOverlap, parseCidr, parseIp } from './cidr';
import { Checker } from './checker';
import { LabelledCidr } from './function-vpc-checks';
import type { InboundForward } from '../contract/ingress';
import { AUTO_VNI_FLOOR, derivedVni, VNI_MAX, VNI_MIN } from './identity';
import { TenantInput, TenantPath } from './inputs';
import { PeeringModel } from './model-types';
import { checkPathProps, checkPeering } from './peering-checks';

/**
 * Ranges no tenant service can live in: "this network", loopback, link-local (IMDS and the
 * nodes' tunnel next hop 169.254.0.1), multicast and the reserved class E (with broadcast).
 */
export const RESERVED_TENANT_RANGES: ReadonlyArray<{ readonly cidr: string; readonly label: string }> = [
  { cidr: '0.0.0.0/8', label: '"this network" (0.0.0.0/8)' },
  { cidr: '127.0.0.0/8', label: 'loopback (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', label: 'link-local (169.254.0.0/16: instance metadata and the tunnel next hop)' },
  { cidr: '224.0.0.0/4', label: 'multicast (224.0.0.0/4)' },
  { cidr: '240.0.0.0/4', label: 'reserved class E and broadcast (240.0.0.0/4)' },
];

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** A tenant that passed the checks it can pass alone, before placement. */
export interface TenantDraft {
  readonly t: TenantInput;
  /** Index in the tenant list, for error props (tenants[i]). */
  readonly i: number;
  readonly cidrs: Cidr[];
  readonly dests: Cidr[];
  readonly vni: number;
  readonly vniDerived: boolean;
  /** As written; `auto` is resolved once every tenant is checked (resolvePaths). */
  readonly path: TenantPath;
  /** Present when the tenant may take the peering path. */
  readonly peering?: PeeringModel;
  /** Port forwards (ingress-checks), attached by buildCrossVpcModel. */
  readonly inbound?: InboundForward[];
}

/**
 * Each tenant on its own, in declaration order: name, CIDRs (not reserved, not overlapping
 * each other or the cluster), destinations, NAT IP and a unique VNI.
 */
export function checkTenants(tenants: TenantInput[], clusterSide: LabelledCidr[], c: Checker, serviceCidr?: LabelledCidr): TenantDraft[] {
  const routed = serviceCidr ? [...clusterSide, serviceCidr] : clusterSide;
  const reserved = RESERVED_TENANT_RANGES.map((r) => ({ cidr: parseCidr(r.cidr, c.at('RESERVED_TENANT_RANGES')), label: r.label }));
  const names = new Map<string, number>();
  const vnis = new Map<number, string>();
  return tenants.map((t, i) => {
    const p = `tenants[${i}]`;
    c.literal(t.name, `${p}.name`, 'the tenant name', 'because it becomes Terraform ids, tags and the pod label value', '"alpha"');
    if (typeof t.name !== 'string' || !DNS_LABEL.test(t.name) || t.name.length > 40) {
      throw c.err(`${p}.name`, t.name, 'tenant names become Kubernetes keys, Terraform ids and tags', 'use a lowercase DNS label: a-z, 0-9 and "-", starting with a letter, at most 40 characters');
    }
    const prev = names.get(t.name);
    if (prev !== undefined) {
      throw c.err(`${p}.name`, t.name, `duplicate tenant name, also used by tenants[${prev}]`, 'give every tenant a unique name');
    }
    names.set(t.name, i);
    const path = checkPathProps(t, p, c);
    if (!t.cidrs || t.cidrs.length === 0) {
      throw c.err(`${p}.cidrs`, t.cidrs, `tenant "${t.name}" has no CIDRs`, 'list the tenant VPC CIDR blocks its functions must reach');
    }
    const cidrs = c.cidrList(t.cidrs, `${p}.cidrs`);
    cidrs.forEach((cidr, k) => {
      for (const r of reserved) {
        if (cidrsOverlap(cidr, r.cidr)) {
          throw c.err(`${p}.cidrs[${k}]`, t.cidrs[k], `tenant "${t.name}" CIDR ${cidr.text} overlaps ${r.label}, where no tenant service can be reached through a VPC`, 'list only the tenant VPC ranges its functions must reach');
        }
      }
    });
    c.noOverlapWithin(cidrs, `${p}.cidrs`, t.cidrs, `the gateway loads each tenant's CIDRs into one interval set, where overlapping ranges fail to load ("File exists")`);
    cidrs.forEach((cidr, k) => {
      for (const side of routed) {
        if (cidrsOverlap(cidr, side.cidr)) {
          throw c.err(
            `${p}.cidrs[${k}]`,
            t.cidrs[k],
            `tenant "${t.name}" CIDR ${cidr.text} overlaps ${side.label}; pods could not route to it, because the cluster's own addresses win`,
            'renumber one side, or list only the tenant ranges that do not overlap the function VPC, pod and node CIDRs (or the Service CIDR)',
          );
        }
      }
    });
    const dests = t.allowedDestinations === undefined ? cidrs : c.cidrList(t.allowedDestinations, `${p}.allowedDestinations`);
    dests.forEach((d, k) => {
      if (!cidrs.some((tc) => cidrContains(tc, d))) {
        throw c.err(`${p}.allowedDestinations[${k}]`, t.allowedDestinations![k], `not inside tenant "${t.name}" CIDRs ${cidrs.map((x) => x.text).join(', ')}`, 'list destinations inside the tenant CIDRs, or add the range to cidrs');
      }
    });
    if (t.allowedDestinations !== undefined) {
      c.noOverlapWithin(dests, `${p}.allowedDestinations`, t.allowedDestinations, 'the node agent and the gateway load each tenant\'s destinations into one interval set, where overlapping ranges fail to load');
    }
    if (t.natIp !== undefined) {
      // Inside the tenant subnet, and not its network, broadcast or AWS-reserved address, is
      // checked at plan time (the subnet CIDR is a data source): ProxyNodePair's precondition
      // on the NAT IP reservation. Tenant cidrs may list only the services' ranges, not the
      // NAT ENI subnet, so "natIp inside cidrs" is not required here.
      const ip = parseIp(t.natIp, c.at(`${p}.natIp`));
      for (const side of clusterSide) {
        if (cidrContainsIp(side.cidr, ip)) {
          throw c.err(`${p}.natIp`, t.natIp, `tenant "${t.name}" NAT IP is inside ${side.label}, but it must be an address of the tenant's own subnet (it is the functions' source address in the tenant VPC)`, `use a free address of subnet ${t.subnetId}, or leave natIp unset`);
        }
      }
    }
    c.literal(t.vni, `${p}.vni`, 'the VNI', 'because it keys the tenant\'s tunnel, conntrack zone, routing table and gateway MAC in the rendered configuration', '1001');
    c.literal(t.pair, `${p}.pair`, 'the pair index', 'to place the tenant and decide which pairs exist', '0');
    c.literal(t.slot, `${p}.slot`, 'the slot', 'to place the tenant (it is the ENI device index)', '1');
    let vni: number;
    let vniDerived = false;
    if (t.vni !== undefined) {
      if (!Number.isInteger(t.vni) || t.vni < VNI_MIN || t.vni > VNI_MAX) {
        throw c.err(`${p}.vni`, t.vni, `a VNI is a 24-bit integer from ${VNI_MIN} to ${VNI_MAX}`, `pick an unused VNI in range (auto-derived VNIs are >= ${AUTO_VNI_FLOOR}), or leave vni unset`);
      }
      vni = t.vni;
    } else {
      vni = derivedVni(t.name);
      vniDerived = true;
    }
    const other = vnis.get(vni);
    if (other !== undefined) {
      throw c.err(`${p}.vni`, vni, `VNI ${vni} is already used by tenant "${other}"${vniDerived ? ' (the name-derived VNIs collide)' : ''}`, `give tenant "${t.name}" a unique vni explicitly`);
    }
    vnis.set(vni, t.name);
    const peering = path === 'nat' ? undefined : checkPeering(t, p, c);
    return { t, i, cidrs, dests, vni, vniDerived, path, peering };
  });
}
