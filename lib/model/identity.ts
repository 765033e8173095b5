import { createHash } from 'crypto';
import { VNI_MAX } from '../contract/names';

// The identities that cross to the gateways and nodes live in the contract; the model re-exports them.
export { conntrackZone, tenantTable, VNI_MAX, VNI_MIN } from '../contract/names';
export { gatewayMac, nodeMac } from '../contract/mac';

/** Auto-derived VNIs stay above this so they never collide with small hand-picked ones. */
export const AUTO_VNI_FLOOR = 65536;

/** A VNI that depends only on the tenant name: adding or removing tenants never moves it. */
export function derivedVni(tenantName: string): number {
  const h = createHash('sha256').update(`crossvpc/vni/${tenantName}`).digest();
  const span = VNI_MAX - AUTO_VNI_FLOOR + 1;
  return AUTO_VNI_FLOOR + (h.readUInt32BE(0) % span);
}
