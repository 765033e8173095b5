import { formatInboundCell, InboundForward, parseInboundCell } from './ingress';
import { EGRESS_MODES, EgressMode, NO_EIP } from './egress';
import { ipv4ToInt } from './ipv4';

/**
 * /etc/crossvpc/tenants.tsv: one line per tenant a gateway member serves, read by the gateway
 * scripts (tenant_next in crossvpc-lib.sh) and by the emulator, always by column name.
 *
 * Format: a header line `#name<TAB>vni<TAB>…` naming the columns, then one tab-separated row
 * per tenant. Readers map names to positions through the header, so adding or reordering
 * columns never shifts a field. No field may be empty (bash's `read` with IFS=tab would
 * merge two tabs) or hold a tab or newline. In a plan, the deploy-time fields are Terraform
 * references that resolve at apply; renderers never look inside them.
 */

export interface TenantTableRow {
  readonly name: string;
  readonly vni: number;
  /** Conntrack zone of both tenant devices. */
  readonly zone: number;
  /** fwmark and routing table. */
  readonly table: number;
  readonly gatewayMac: string;
  /** deploy-time: floating NAT IP, this member's NAT ENI id/MAC/IP, the tenant subnet CIDR and its router. */
  readonly natIp: string;
  readonly eniId: string;
  readonly eniMac: string;
  readonly eniIp: string;
  readonly subnetCidr: string;
  readonly routerIp: string;
  readonly destinations: readonly string[];
  /** Internet egress: `none`, or `tenant_vpc` (public destinations leave through the tenant ENI to the tenant VPC's router). */
  readonly egress: EgressMode;
  /**
   * Port forwards on the NAT IP (seed 001), written `none` or `tcp/443=10.0.5.10:8443,…`: the
   * ruleset holds them, the member keeps the tenant's inbound routing table when there are any.
   */
  readonly inbound: readonly InboundForward[];
  /** Egress `eip`: the gateway-subnet address the tenant's internet traffic is SNATed to (floats with the HaVip); NO_EIP otherwise. */
  readonly egressIp: string;
  /** Egress `eip`: the Elastic IP the active member associates with egressIp; NO_EIP otherwise. */
  readonly eipAllocationId: string;
}

/** Row field -> column name, in the order the renderer writes them. The single source of the column list. */
export const TENANT_TABLE_COLUMN_OF = {
  name: 'name',
  vni: 'vni',
  zone: 'zone',
  table: 'table',
  gatewayMac: 'gateway_mac',
  natIp: 'nat_ip',
  eniId: 'eni_id',
  eniMac: 'eni_mac',
  eniIp: 'eni_ip',
  subnetCidr: 'subnet_cidr',
  routerIp: 'router_ip',
  destinations: 'destinations',
  egress: 'egress',
  inbound: 'inbound',
  egressIp: 'egress_ip',
  eipAllocationId: 'eip_allocation_id',
} as const satisfies Record<keyof TenantTableRow, string>;

export type TenantTableColumn = (typeof TENANT_TABLE_COLUMN_OF)[keyof TenantTableRow];
export const TENANT_TABLE_COLUMNS: readonly TenantTableColumn[] = Object.values(TENANT_TABLE_COLUMN_OF);
const FIELDS = Object.keys(TENANT_TABLE_COLUMN_OF) as Array<keyof TenantTableRow>;
const NUMERIC = new Set<keyof TenantTableRow>(['vni', 'zone', 'table']);

/** The first line: `#` then the column names, tab-separated. */
export const TENANT_TABLE_HEADER = `#${TENANT_TABLE_COLUMNS.join('\t')}`;

function cell(row: TenantTableRow, field: keyof TenantTableRow): string {
  const v = row[field];
  const text = field === 'inbound' ? formatInboundCell(row.inbound) : Array.isArray(v) ? v.join(',') : String(v);
  if (text === '' || /[\t\n\r]/.test(text)) throw new Error(`tenant table: tenant ${row.name} ${TENANT_TABLE_COLUMN_OF[field]} ${JSON.stringify(text)} is empty or holds a tab or newline`);
  return text;
}

export function renderTenantTable(rows: readonly TenantTableRow[]): string {
  return [TENANT_TABLE_HEADER, ...rows.map((r) => FIELDS.map((f) => cell(r, f)).join('\t')), ''].join('\n');
}

/** Reads a table by its header; columns it does not know are ignored, a missing one is an error. */
export function parseTenantTable(text: string): TenantTableRow[] {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (!header?.startsWith('#')) throw new Error('tenant table: the first line must be the #column header');
  const names = header.slice(1).split('\t');
  const index = new Map(names.map((n, i) => [n, i]));
  const missing = TENANT_TABLE_COLUMNS.filter((c) => !index.has(c));
  if (missing.length) throw new Error(`tenant table: the header lacks ${missing.join(', ')}`);
  return lines.map((line, n) => {
    const cells = line.split('\t');
    if (cells.length !== names.length) throw new Error(`tenant table row ${n + 1}: ${cells.length} fields under a ${names.length}-column header`);
    const get = (f: keyof TenantTableRow) => cells[index.get(TENANT_TABLE_COLUMN_OF[f])!];
    const row: Record<string, unknown> = {};
    for (const f of FIELDS) row[f] = NUMERIC.has(f) ? Number(get(f)) : f === 'destinations' ? get(f).split(',') : get(f);
    try {
      row.inbound = parseInboundCell(get('inbound'));
    } catch (e) {
      throw new Error(`tenant table row ${n + 1}: ${(e as Error).message}`);
    }
    if (!(EGRESS_MODES as readonly string[]).includes(row.egress as string)) throw new Error(`tenant table row ${n + 1}: egress ${JSON.stringify(row.egress)} is not one of ${EGRESS_MODES.join(', ')}`);
    checkEipCells(row as unknown as TenantTableRow, n + 1);
    return row as unknown as TenantTableRow;
  });
}

/** egress `eip` needs an address and an allocation id; the other modes have neither. */
function checkEipCells(row: TenantTableRow, n: number): void {
  if (row.egress === 'eip') {
    if (ipv4ToInt(row.egressIp) === undefined) throw new Error(`tenant table row ${n}: egress eip needs an IPv4 egress_ip, got ${JSON.stringify(row.egressIp)}`);
    if (!/^eipalloc-[0-9a-f]+$/.test(row.eipAllocationId)) throw new Error(`tenant table row ${n}: egress eip needs an eip_allocation_id, got ${JSON.stringify(row.eipAllocationId)}`);
  } else if (row.egressIp !== NO_EIP || row.eipAllocationId !== NO_EIP) {
    throw new Error(`tenant table row ${n}: egress ${row.egress} takes no egress_ip or eip_allocation_id (${NO_EIP}), got ${row.egressIp} and ${row.eipAllocationId}`);
  }
}
