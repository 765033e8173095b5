import { cidrsOverlap as overlaps } from '../contract';
import { describeAddress, DoctorFacts } from './facts';
import { Finding } from './findings';
import { servedTenants } from './nat-ip-checks';

interface CommonRange {
  readonly cidrs: readonly string[];
  readonly name: string;
  readonly check: string;
  readonly why: string;
  readonly fix: string;
}

const DOCKER_FIX = 'move Docker off it on nodes and tenant hosts ("bip" and "default-address-pools" in /etc/docker/daemon.json), or run nodes on containerd without Docker\'s bridge';

/** Ranges container engines and clusters commonly use whether or not the plan declares them. */
const CONTAINER_RANGES: readonly CommonRange[] = [
  {
    cidrs: ['172.17.0.0/16'], name: 'docker0 172.17.0.0/16 (Docker\'s default bridge)', check: 'docker-range',
    why: 'a node or tenant host running Docker routes it to its local bridge: the node itself and host-network pods miss the tenant (labelled pods are steered by fwmark, but Docker\'s FORWARD DROP policy may still drop them), and a tenant host answers that range on its own bridge (seed 003, step 3)',
    fix: DOCKER_FIX,
  },
  {
    cidrs: ['172.18.0.0/15', '172.20.0.0/14', '172.24.0.0/13'], name: '172.18.0.0-172.31.255.255 (Docker\'s default pool for user networks and compose)', check: 'docker-range',
    why: 'every `docker network create` or compose project on a node or tenant host takes the next /16 of it and routes it locally, shadowing the tenant',
    fix: DOCKER_FIX,
  },
];

const UNDECLARED_POD_RANGES: readonly CommonRange[] = [
  {
    cidrs: ['10.244.0.0/16'], name: '10.244.0.0/16 (flannel\'s and many kubeadm installs\' default pod CIDR)', check: 'pod-range',
    why: 'functionVpc.podCidrs is empty (pods take VPC addresses); if the CNI is an overlay after all, its routes on every node win over the tunnel',
    fix: 'declare the CNI\'s pod CIDRs in functionVpc.podCidrs (the model then refuses overlaps at synth), or confirm pods take VPC addresses',
  },
  {
    cidrs: ['100.64.0.0/10'], name: '100.64.0.0/10 (shared address space: EKS custom networking, secondary VPC CIDRs for pods, carrier NAT)', check: 'pod-range',
    why: 'clusters that run out of VPC addresses put pods here; if this one does and podCidrs does not say so, pod routes win over the tunnel',
    fix: 'declare the pods\' secondary CIDRs in functionVpc.podCidrs, or renumber the tenant range',
  },
];

const DEFAULT_SERVICE_RANGES: readonly CommonRange[] = [
  {
    cidrs: ['10.96.0.0/12'], name: '10.96.0.0/12 (kubeadm\'s default Service CIDR)', check: 'service-range',
    why: 'functionVpc.serviceCidr is not set; if the cluster uses this default, kube-proxy captures these addresses on every node before the tunnel sees them',
    fix: 'set functionVpc.serviceCidr to the cluster\'s Service CIDR (the model then refuses overlaps at synth)',
  },
  {
    cidrs: ['10.100.0.0/16', '172.20.0.0/16'], name: '10.100.0.0/16 or 172.20.0.0/16 (the Service CIDRs EKS picks when none is given)', check: 'service-range',
    why: 'functionVpc.serviceCidr is not set; on EKS one of these is the Service CIDR, which kube-proxy captures on every node',
    fix: 'set functionVpc.serviceCidr to the cluster\'s Service CIDR (aws eks describe-cluster --query cluster.kubernetesNetworkConfig)',
  },
];

/** Tenant destinations (and literal NAT IPs) against the cluster's ranges and common container ranges. */
export function cidrFindings(facts: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const cluster = facts.agent.cluster;
  const declared = cluster ? [cluster.vpcCidr, ...cluster.podCidrs, ...cluster.nodeCidrs] : facts.members.flatMap((m) => m.env.NODE_CIDRS.split(' ').filter(Boolean));
  const clusterRanges = cluster
    ? [
      { cidr: cluster.vpcCidr, label: `functionVpc.vpcCidr ${cluster.vpcCidr}` },
      ...cluster.podCidrs.map((c) => ({ cidr: c, label: `pod CIDR ${c}` })),
      ...cluster.nodeCidrs.map((c) => ({ cidr: c, label: `node CIDR ${c}` })),
      ...(cluster.serviceCidr ? [{ cidr: cluster.serviceCidr, label: `Service CIDR ${cluster.serviceCidr}` }] : []),
    ]
    : [...new Set(declared)].map((c) => ({ cidr: c, label: `node CIDR ${c}` }));
  if (!cluster) {
    out.push({ severity: 'info', check: 'cluster-ranges', subject: 'plan', what: 'the agent config carries no cluster ranges (a plan synthesized before functionVpc.serviceCidr existed): tenants were checked against the node CIDRs of gateway.env only.', fix: 'synthesize again with this release to check the VPC, pod and Service CIDRs too.' });
  }
  const common = [
    ...CONTAINER_RANGES,
    ...(cluster && cluster.podCidrs.length === 0 ? UNDECLARED_POD_RANGES : []),
    ...(cluster && !cluster.serviceCidr ? DEFAULT_SERVICE_RANGES : []),
  ];
  for (const { row } of servedTenants(facts)) {
    const tenant = row.name;
    const agentTenant = facts.agent.tenants.find((t) => t.name === tenant);
    if (!agentTenant || agentTenant.cidrs.join(',') !== row.destinations.join(',')) {
      out.push({ severity: 'error', check: 'destinations', tenant, what: `the node agent's destinations (${agentTenant?.cidrs.join(', ') ?? 'tenant missing'}) differ from the gateways' (${row.destinations.join(', ')}): traffic the nodes tunnel would be dropped as unmatched, or never tunnelled.`, fix: 'deploy the ConfigMap and the gateways from one synth; never edit cdk.tf.json by hand.' });
    }
    for (const dest of row.destinations) {
      for (const side of clusterRanges) {
        if (overlaps(dest, side.cidr)) {
          out.push({ severity: 'error', check: 'cluster-overlap', tenant, what: `destination ${dest} overlaps ${side.label}: pods route those addresses inside the cluster, never into the tunnel.`, fix: 'renumber one side, or narrow allowedDestinations; the model refuses this at synth, so the plan was edited or is from an older release.' });
        }
      }
    }
    out.push(...commonRangeFindings(tenant, row.destinations, common, declared, false));
    const nat = describeAddress(row.natIp, facts.json);
    const dockerHit = nat.literal ? CONTAINER_RANGES.find((r) => r.cidrs.some((c) => overlaps(nat.literal!, c))) : undefined;
    if (dockerHit) {
      out.push({ severity: 'warning', check: 'docker-range', tenant, what: `NAT IP ${nat.literal} lies in ${dockerHit.name}: a tenant host running Docker sends its replies to its own bridge, so connections from the functions hang (seed 003, step 3).`, fix: `pick a natIp outside 172.17.0.0-172.31.255.255, or ${DOCKER_FIX}.` });
    }
  }
  // Peered tenants' pods follow the node's main table, so a local range shadows them outright.
  for (const t of facts.agent.peered ?? []) out.push(...commonRangeFindings(t.name, t.cidrs, common, declared, true));
  return out;
}

function commonRangeFindings(tenant: string, dests: readonly string[], common: readonly CommonRange[], declared: readonly string[], peered: boolean): Finding[] {
  const out: Finding[] = [];
  for (const dest of dests) {
    for (const r of common) {
      const hit = r.cidrs.find((c) => overlaps(dest, c));
      // A range the user declared as the cluster's own was checked by the model already.
      if (!hit || declared.some((d) => overlaps(d, hit))) continue;
      const why = peered ? 'a node with that range routes it locally, and the pods of a peered tenant follow the node\'s main table (no tunnel, no fwmark table): they never reach the tenant' : r.why;
      out.push({ severity: 'warning', check: r.check, tenant, what: `destination ${dest} overlaps ${r.name}: ${why}.`, fix: `${r.fix}.` });
    }
  }
  return out;
}
