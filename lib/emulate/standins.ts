import { createHash } from 'crypto';
import { cidrhost, Plan } from './plan';

/**
 * Deterministic stand-ins for values a real plan learns only after apply: subnet
 * CIDRs, ENI addresses, ids and MACs. Same plan in, same values out.
 */
export interface StandIns {
  /** Resolve a Terraform reference such as `aws_network_interface.X.private_ip`. */
  resolve(ref: string): string;
  readonly functionCidr: string;
  /** Stand-in subnet the emulator puts its nodes in. */
  readonly nodeSubnet: string;
  /** The subnet router (VPC router, host .1) of a stand-in subnet. */
  router(subnet: string): string;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function lastSlash24(cidr: string, fromTop: number): string {
  const [ip, len] = cidr.split('/');
  if (Number(len) > 22) throw new Error(`stand-in subnets need a /22 or larger range, got ${cidr}`);
  const third = cidrhost(`${ip}/${len}`, -1).split('.').map(Number);
  return `${third[0]}.${third[1]}.${third[2] - fromTop}.0/24`;
}

function firstSlash24(cidr: string, n: number): string {
  const o = cidr.split('/')[0].split('.').map(Number);
  return `${o[0]}.${o[1]}.${o[2] + n}.0/24`;
}

export function buildStandIns(plan: Plan, tenantCidrs: Record<string, string[]>): StandIns {
  const json = plan.json;
  const enis: Record<string, any> = json.resource?.aws_network_interface ?? {};
  const subnets: Record<string, any> = json.data?.aws_subnet ?? {};
  const nodeCidrsMatch = /NODE_CIDRS='([^']*)'/.exec(plan.members[0].userData);
  if (!nodeCidrsMatch) throw new Error('user data has no NODE_CIDRS');
  const functionCidr = nodeCidrsMatch[1].split(' ')[0];

  // Subnet id -> stand-in CIDR. Tenant subnets take the top /24s of the tenant range,
  // function-side subnets the top /24s of the function range; nodes get the first /24 + 1.
  const subnetCidr = new Map<string, string>();
  let fnTop = 0;
  const tenantTop = new Map<string, number>();
  const subnetIds = [...new Set(Object.values(enis).map((e) => String(e.subnet_id)))].sort();
  for (const id of subnetIds) {
    const users = Object.values(enis).filter((e) => e.subnet_id === id);
    const tenant = users.map((e) => e.tags?.['crossvpc:tenant']).find(Boolean);
    if (tenant) {
      const cidrs = tenantCidrs[tenant];
      if (!cidrs?.length) throw new Error(`tenant ${tenant} has ENIs but no CIDRs in the agent tenant table`);
      const k = tenantTop.get(tenant) ?? 0;
      tenantTop.set(tenant, k + 1);
      subnetCidr.set(id, lastSlash24(cidrs[0], k));
    } else {
      subnetCidr.set(id, lastSlash24(functionCidr, fnTop++));
    }
  }
  const nodeSubnet = firstSlash24(functionCidr, 1);

  const eniIndex = new Map<string, number>();
  for (const id of subnetIds) {
    Object.keys(enis).filter((k) => enis[k].subnet_id === id).sort().forEach((k, i) => eniIndex.set(k, i));
  }

  const resolve = (ref: string): string => {
    const parts = ref.split('.');
    if (parts[0] === 'data' && parts[1] === 'aws_subnet' && parts[3] === 'cidr_block') {
      const ds = subnets[parts[2]];
      if (!ds) throw new Error(`unknown data source ${ref}`);
      const c = subnetCidr.get(String(ds.id));
      if (!c) throw new Error(`subnet ${ds.id} of ${ref} holds no ENI of this plan; the emulator cannot place it`);
      return c;
    }
    if (parts[0] === 'aws_network_interface') {
      const eni = enis[parts[1]];
      if (!eni) throw new Error(`unknown resource ${ref}`);
      const h = digest(parts[1]);
      switch (parts[2]) {
        case 'private_ip':
          return cidrhost(subnetCidr.get(String(eni.subnet_id))!, 10 + eniIndex.get(parts[1])!);
        case 'id':
          return `eni-${h.toString('hex').slice(0, 17)}`;
        case 'mac_address':
          return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
        default:
          break;
      }
    }
    throw new Error(`the emulator has no stand-in for ${ref}`);
  };
  return { resolve, functionCidr, nodeSubnet, router: (s) => cidrhost(s, 1) };
}
