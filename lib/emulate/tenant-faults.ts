import type { Emulation } from './emulator';

/** The nftables table that stands for a tenant security group's inbound rules in a service namespace. */
const SECURITY_GROUP_TABLE = 'emulated_security_group';

/**
 * A tenant's security group (or its service's allow-list) that drops a source, such as the
 * tenant's NAT IP: an nft input drop in the namespace of the tenant's service (its Redis), so
 * SYNs arrive and are never answered, as an AWS security group drops them. `false` removes it.
 */
export function tenantSecurityGroupDrops(emu: Emulation, tenant: string, source: string, drop: boolean): void {
  const svc = emu.tenantService(tenant);
  if (!svc) throw new Error(`tenant ${tenant} has no service in this emulation`);
  if (!drop) {
    emu.exec(svc.ns, 'nft', ['delete', 'table', 'inet', SECURITY_GROUP_TABLE]);
    return;
  }
  emu.exec(svc.ns, 'nft', ['-f', '-'], {
    input: `table inet ${SECURITY_GROUP_TABLE} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${source} drop\n  }\n}\n`,
  });
}
