import { INBOUND_MAX_SLOT, INBOUND_PORTS_PER_SLOT, InboundForward } from '../contract/ingress';
import { Cidr, cidrContainsIp, parseIp } from './cidr';
import { Checker } from './checker';
import { GatewayInput, TenantInput } from './inputs';
import { TenantModel } from './model-types';

const PROTOCOLS = ['tcp', 'udp'] as const;
const TARGET = /^([^:]+):([0-9]+)$/;
const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/**
 * A tenant's port forwards (seed 001), on their own: protocol, port, a target inside the
 * function VPC CIDR that is no HaVip, each (protocol, port) once. The path (NAT only) is
 * checked with the other path props; the slot bound once the tenant is placed.
 */
export function checkInbound(t: TenantInput, p: string, vpcCidr: Cidr, gw: GatewayInput, c: Checker): InboundForward[] {
  c.literal(t.inbound, `${p}.inbound`, 'the inbound list', 'because it is rendered into the gateway ruleset and the security groups', "[{ protocol: 'tcp', port: 443, target: '10.0.5.10:443' }]");
  if (t.inbound === undefined) return [];
  if (!Array.isArray(t.inbound)) throw c.err(`${p}.inbound`, t.inbound, `tenant "${t.name}" inbound must be a list of port forwards`, "give [{ protocol: 'tcp', port: 443, target: '10.0.5.10:443' }], or leave it unset");
  if ((t.path ?? 'nat') !== 'nat' && t.inbound.length > 0) {
    throw c.err(`${p}.inbound`, t.inbound, `tenant "${t.name}" has path '${t.path}'; port forwards live on the NAT IP of the gateway pair, so they need path 'nat'`, "set path: 'nat', or drop inbound");
  }
  const seen = new Map<string, number>();
  const haVips = (gw.haVips ?? []).filter((v) => !c.isUnresolved(v));
  return t.inbound.map((f, k) => {
    const q = `${p}.inbound[${k}]`;
    for (const key of ['protocol', 'port', 'target'] as const) c.literal(f?.[key], `${q}.${key}`, `the ${key}`, 'because it is rendered into the gateway ruleset', key === 'target' ? "'10.0.5.10:443'" : key === 'port' ? '443' : "'tcp'");
    if (!(PROTOCOLS as readonly unknown[]).includes(f?.protocol)) throw c.err(`${q}.protocol`, f?.protocol, `tenant "${t.name}" forwards only TCP and UDP`, "use 'tcp' or 'udp'");
    if (!isPort(f.port)) throw c.err(`${q}.port`, f.port, `tenant "${t.name}" forward port must be an integer from 1 to 65535`, 'give the port the tenant clients connect to on the NAT IP');
    const key = `${f.protocol}/${f.port}`;
    const prev = seen.get(key);
    if (prev !== undefined) throw c.err(`${q}.port`, f.port, `tenant "${t.name}" already forwards ${f.protocol} port ${f.port} (inbound[${prev}]); one port on the NAT IP leads to one target`, 'forward each (protocol, port) once');
    seen.set(key, k);
    const m = typeof f.target === 'string' ? TARGET.exec(f.target) : null;
    const targetPort = m ? Number(m[2]) : NaN;
    if (!m || !/^[1-9][0-9]{0,4}$/.test(m[2]) || !isPort(targetPort)) {
      throw c.err(`${q}.target`, f.target, `tenant "${t.name}" forward target must be "a.b.c.d:port" with a port from 1 to 65535`, "give the address and port in the function VPC, e.g. '10.0.5.10:443'");
    }
    const targetIp = parseIp(m[1], c.at(`${q}.target`));
    if (!cidrContainsIp(vpcCidr, targetIp)) {
      throw c.err(`${q}.target`, f.target, `tenant "${t.name}" forward target ${targetIp} is outside functionVpc.vpcCidr ${vpcCidr.text}; the gateway forwards only into the function VPC`, 'give an address of the function VPC (an internal load balancer, a node for a NodePort)');
    }
    const vip = haVips.indexOf(targetIp);
    if (vip >= 0) {
      throw c.err(`${q}.target`, f.target, `tenant "${t.name}" forward target ${targetIp} is pair ${vip}'s HaVip (gateway.haVips[${vip}]), the gateway itself`, 'give the address of the service in the function VPC');
    }
    return { protocol: f.protocol, port: f.port, targetIp, targetPort };
  });
}

/**
 * Each tenant with forwards owns INBOUND_PORTS_PER_SLOT SNAT ports on its pair's HaVip, by
 * slot; only slots 1..INBOUND_MAX_SLOT have a range below 65536.
 */
export function checkInboundSlots(placed: TenantModel[], tenants: TenantInput[], c: Checker): void {
  for (const t of placed) {
    if (t.retired || t.inbound.length === 0 || t.slot <= INBOUND_MAX_SLOT) continue;
    throw c.err(
      `tenants[${tenants.findIndex((x) => x.name === t.name)}].inbound`,
      t.inbound.map((f) => `${f.protocol}/${f.port}`),
      `tenant "${t.name}" sits in slot ${t.slot} of pair ${t.pairIndex}, but port forwards need one of slots 1..${INBOUND_MAX_SLOT} (each owns ${INBOUND_PORTS_PER_SLOT} SNAT ports on the HaVip, which must end below 65536)`,
      `pin the tenant to a free slot of 1..${INBOUND_MAX_SLOT} (slot, and pair), or drop inbound`,
    );
  }
}
