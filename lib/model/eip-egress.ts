// Internet egress through a platform-owned Elastic IP: the prop's shape, and the addresses it
// may not share. Inside the gateway subnet and off its AWS-reserved hosts and this pair's HaVip
// is a plan-time precondition (the subnet CIDR is a data source): ProxyNodePair.
import { Cidr, cidrContainsIp, parseIp } from './cidr';
import { Checker } from './checker';
import { EipEgress, GatewayInput, TenantInput } from './inputs';

/** `eipalloc-` and 8 or 17 lowercase hex digits, as EC2 writes allocation ids. */
export const EIP_ALLOCATION_ID = /^eipalloc-[0-9a-f]{8}([0-9a-f]{9})?$/;
const KEYS = ['eipAllocationId', 'privateIp'];

/** True for the object form of internetEgress (the string modes are not). */
export function isEipEgress(e: unknown): e is EipEgress {
  return typeof e === 'object' && e !== null && !Array.isArray(e);
}

/** The object form's own fields: literal, an allocation id, a strict IPv4 address, nothing else. */
export function checkEipEgressProp(t: TenantInput, p: string, c: Checker): EipEgress {
  const e = t.internetEgress as unknown as Record<string, unknown>;
  const prop = `${p}.internetEgress`;
  const extra = Object.keys(e).filter((k) => !KEYS.includes(k));
  if (extra.length) {
    throw c.err(`${prop}.${extra[0]}`, e[extra[0]], `tenant "${t.name}" EIP egress takes only eipAllocationId and privateIp`, `drop ${extra.join(', ')}`);
  }
  c.literal(e.eipAllocationId, `${prop}.eipAllocationId`, 'the EIP allocation id', "because the member role's permission to associate it names it", '"eipalloc-0123456789abcdef0"');
  if (typeof e.eipAllocationId !== 'string' || !EIP_ALLOCATION_ID.test(e.eipAllocationId)) {
    throw c.err(`${prop}.eipAllocationId`, e.eipAllocationId, `tenant "${t.name}" EIP egress needs an allocation id (eipalloc- and 8 or 17 lowercase hex digits), not a public IP or an association id`, "pass the Elastic IP's allocation id, e.g. an Eip resource's allocationId written out, or from `aws ec2 describe-addresses`");
  }
  if (e.privateIp === undefined) {
    throw c.err(`${prop}.privateIp`, e.privateIp, `tenant "${t.name}" EIP egress needs the private address the gateway translates to and the EIP maps to`, 'give a free host of the gateway subnet (not a HaVip, not another tenant\'s)');
  }
  const privateIp = parseIp(e.privateIp, c.at(`${prop}.privateIp`));
  return { eipAllocationId: e.eipAllocationId, privateIp };
}

/**
 * Across the model: each EIP and each private address serves one tenant (replies find the
 * tenant by the address alone), never a literal HaVip, inside the function VPC and outside its
 * overlay pod ranges (where HaVips may not be either). Retired tenants hold nothing.
 */
export function checkEipEgressAddresses(tenants: readonly TenantInput[], gw: GatewayInput, vpcCidr: Cidr, podCidrs: readonly Cidr[], c: Checker): void {
  const ips = new Map<string, string>();
  const allocations = new Map<string, string>();
  const haVips = new Map((gw.haVips ?? []).map((v, i) => [v, i]));
  tenants.forEach((t, i) => {
    if (t.retired || !isEipEgress(t.internetEgress)) return;
    const { eipAllocationId: id, privateIp: ip } = t.internetEgress;
    const prop = `tenants[${i}].internetEgress`;
    const other = allocations.get(id);
    if (other !== undefined) {
      throw c.err(`${prop}.eipAllocationId`, id, `tenant "${other}" already egresses through ${id}; an EIP maps to one private address, so two tenants would share one source and their replies could not be told apart`, 'give each tenant its own Elastic IP');
    }
    allocations.set(id, t.name);
    const twin = ips.get(ip);
    if (twin !== undefined) {
      throw c.err(`${prop}.privateIp`, ip, `tenant "${twin}" already uses ${ip} for EIP egress; the gateway finds a reply's tenant by this address alone`, 'give each EIP tenant its own free host of the gateway subnet');
    }
    ips.set(ip, t.name);
    const pair = haVips.get(ip);
    if (pair !== undefined) {
      throw c.err(`${prop}.privateIp`, ip, `it is pair ${pair}'s HaVip (gateway.haVips[${pair}]), the tunnel endpoint`, 'pick another free host of the gateway subnet');
    }
    if (!cidrContainsIp(vpcCidr, ip)) {
      throw c.err(`${prop}.privateIp`, ip, `outside the function VPC ${vpcCidr.text}, so it cannot be an address of the gateway subnet`, 'pick a free host of the gateway subnet');
    }
    podCidrs.forEach((pc, k) => {
      if (cidrContainsIp(pc, ip)) throw c.err(`${prop}.privateIp`, ip, `inside functionVpc.podCidrs[${k}] ${pc.text}, an overlay pod range, not a gateway subnet address`, 'pick a free host of the gateway subnet');
    });
  });
}
