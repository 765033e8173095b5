import { Construct } from 'constructs';
import { TerraformProvider, Token } from 'cdktf';
import { ClusterRoleBindingV1 } from '@cdktf/provider-kubernetes/lib/cluster-role-binding-v1';
import { ClusterRoleV1 } from '@cdktf/provider-kubernetes/lib/cluster-role-v1';
import { ConfigMapV1 } from '@cdktf/provider-kubernetes/lib/config-map-v1';
import { DaemonSetV1 } from '@cdktf/provider-kubernetes/lib/daemon-set-v1';
import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1';
import { ServiceAccountV1 } from '@cdktf/provider-kubernetes/lib/service-account-v1';
import { stringify } from 'yaml';
import { CrossVpcError } from '../model/errors';
import { AGENT_CONFIG_KEY, buildAgentConfig, renderAgentConfig } from '../render/agent-config';
import { AGENT_CONFIG_PATH } from '../contract/agent-config';
import { escapeForTerraform } from '../render/terraform-escape';
import { AGENT_METRICS_PORT, NODE_NFT_TABLE } from '../contract/names';
import { CrossVpcLinkSpec, CrossVpcNat } from './cross-vpc-nat';
import { isUnresolvedValue } from './tokens';

export const DEFAULT_POD_LABEL_KEY = 'crossvpc.io/tenant';
export { AGENT_CONFIG_PATH };

export interface FunctionVpcLinkProps {
  /**
   * The CrossVpcNat to link to; give exactly one of nat and linkSpec.
   * @default - linkSpec
   */
  readonly nat?: CrossVpcNat;
  /**
   * An exported CrossVpcNat.linkSpec; give exactly one of nat and linkSpec.
   * @default - nat.linkSpec
   */
  readonly linkSpec?: CrossVpcLinkSpec;
  /**
   * Node agent image, built from this repository's agent/Dockerfile (see README). Required:
   * there is no published image we could truthfully default to.
   */
  readonly agentImage: string;
  /**
   * Pod label whose value names the pod's tenant; must be a valid label key.
   * @default 'crossvpc.io/tenant'
   */
  readonly podLabelKey?: string;
  /**
   * Namespace for the agent.
   * @default 'crossvpc-system'
   */
  readonly namespace?: string;
  /**
   * Also write the ip-masq-agent ConfigMap (kube-system/ip-masq-agent) with
   * `nonMasqueradeCIDRs: [vpcCidr, ...podCidrs]`, so pod traffic to anything but the VPC and pod
   * CIDRs is masqueraded, tenant CIDRs included. Fails at apply if that ConfigMap already exists.
   * @default false
   */
  readonly ipMasqAgent?: boolean;
  /**
   * Host port of the agent's GET /metrics (Prometheus) and /healthz (the DaemonSet's probes), on
   * each node's IP (the agent runs with hostNetwork). Must be free on every node; keep it closed to
   * anything but your Prometheus in the node security group. A Terraform number token is accepted.
   * @default 9740
   */
  readonly metricsPort?: number;
  /**
   * Node selector for the agent, merged with `kubernetes.io/os: linux`.
   * @default - every Linux node
   */
  readonly nodeSelector?: Record<string, string>;
  /**
   * Kubernetes provider of every resource; the constructs never create providers.
   * @default - the stack's default Kubernetes provider
   */
  readonly provider?: TerraformProvider;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isValidLabelKey(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1];
  const prefix = parts.length === 2 ? parts[0] : undefined;
  if (!name || name.length > 63 || !LABEL_NAME.test(name)) return false;
  return prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
}

const FUNCTION_VPC_LINK = Symbol.for('cdktf-crossvpc.FunctionVpcLink');

/**
 * The cluster side: a node agent DaemonSet that steers every pod labelled for a tenant
 * into that tenant's tunnel, with least-privilege RBAC and the tenant table as a ConfigMap.
 *
 * One per App: the agent owns fixed names on every node (nft table `crossvpc_node`, its
 * marks and tunnel device names), so a second FunctionVpcLink is refused at synth. Across
 * separate apps nothing can see the other at synth; see README, "Limits".
 */
export class FunctionVpcLink extends Construct {
  /** True for a (fully constructed) FunctionVpcLink, also across copies of this library; prefer it to instanceof. */
  public static isFunctionVpcLink(x: unknown): x is FunctionVpcLink {
    return x !== null && typeof x === 'object' && FUNCTION_VPC_LINK in x;
  }

  public readonly namespace: NamespaceV1;
  public readonly serviceAccount: ServiceAccountV1;
  public readonly tenantTable: ConfigMapV1;
  public readonly daemonSet: DaemonSetV1;
  public readonly ipMasqAgentConfig?: ConfigMapV1;
  public readonly podLabelKey: string;
  /** The agent's host port for GET /metrics and /healthz on each node IP (scrape target `<node IP>:<port>`). */
  public readonly metricsPort: number;

  constructor(scope: Construct, id: string, props: FunctionVpcLinkProps) {
    super(scope, id);
    const path = this.node.path;
    const bad = (prop: string, value: unknown, problem: string, fix: string) => new CrossVpcError({ path, prop, value, problem, fix });
    if (!!props.nat === !!props.linkSpec) {
      throw bad('nat/linkSpec', props.nat ? 'both' : 'neither', 'exactly one of nat and linkSpec is needed', 'pass the CrossVpcNat as nat, or its linkSpec');
    }
    const spec = props.nat ? props.nat.linkSpec : props.linkSpec!;
    const podLabelKey = props.podLabelKey ?? DEFAULT_POD_LABEL_KEY;
    if (!isValidLabelKey(podLabelKey)) {
      throw bad('podLabelKey', podLabelKey, 'not a valid Kubernetes label key', 'use an optional DNS-subdomain prefix and a name of at most 63 alphanumerics, "-", "_" or ".", e.g. "crossvpc.io/tenant"');
    }
    const ns = props.namespace ?? 'crossvpc-system';
    if (ns.length > 63 || !DNS_LABEL.test(ns)) {
      throw bad('namespace', ns, 'not a valid Kubernetes namespace name', 'use a lowercase DNS label of at most 63 characters, e.g. "crossvpc-system"');
    }
    if (!props.agentImage || /\s/.test(props.agentImage)) {
      throw bad('agentImage', props.agentImage, 'an image reference is required', 'build agent/Dockerfile, push it, and pass e.g. "123456789012.dkr.ecr.eu-west-1.amazonaws.com/crossvpc-agent:0.1.0"');
    }
    const metricsPort = props.metricsPort ?? AGENT_METRICS_PORT;
    const portIsToken = isUnresolvedValue(metricsPort);
    if (!portIsToken && !(Number.isInteger(metricsPort) && metricsPort >= 1 && metricsPort <= 65535)) {
      throw bad('metricsPort', metricsPort, 'not a TCP port', `use an integer 1..65535 free on every node, e.g. ${AGENT_METRICS_PORT} (the default)`);
    }
    for (const [k, v] of Object.entries(props.nodeSelector ?? {})) {
      if (!isValidLabelKey(k) || (v !== '' && (v.length > 63 || !LABEL_NAME.test(v)))) {
        throw bad(`nodeSelector.${k}`, v, 'not a valid Kubernetes label', 'use valid label keys and values');
      }
    }
    const rival = this.node.root.node.findAll().find((c) => c !== this && FunctionVpcLink.isFunctionVpcLink(c));
    if (rival) {
      throw bad(
        props.nat ? 'nat' : 'linkSpec',
        props.nat ? props.nat.node.path : 'linkSpec',
        `${rival.node.path} is already a FunctionVpcLink in this App; two node agents on one cluster would fight over the same nft table (${NODE_NFT_TABLE}), marks and tunnel device names`,
        `keep one FunctionVpcLink (one agent per cluster) linked to one CrossVpcNat that holds all tenants (it manages up to 1,000 pairs)`,
      );
    }
    this.podLabelKey = podLabelKey;
    this.metricsPort = metricsPort;
    const provider = props.provider;
    const labels = { 'app.kubernetes.io/name': 'crossvpc-agent', 'app.kubernetes.io/part-of': 'cdktf-crossvpc' };
    const config = buildAgentConfig(spec.model, podLabelKey, spec.haVips, [spec.gatewaySubnetCidr]);

    this.namespace = new NamespaceV1(this, 'Namespace', { provider, metadata: { name: ns, labels } });
    const namespace = this.namespace.metadata.name;
    this.serviceAccount = new ServiceAccountV1(this, 'ServiceAccount', { provider, metadata: { name: 'crossvpc-agent', namespace, labels } });
    const role = new ClusterRoleV1(this, 'ClusterRole', {
      provider,
      metadata: { name: `crossvpc-agent-${ns}`, labels },
      rule: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
    });
    new ClusterRoleBindingV1(this, 'ClusterRoleBinding', {
      provider,
      metadata: { name: `crossvpc-agent-${ns}`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
      subject: [{ kind: 'ServiceAccount', name: this.serviceAccount.metadata.name, namespace }],
    });
    this.tenantTable = new ConfigMapV1(this, 'TenantTable', {
      provider,
      metadata: { name: 'crossvpc-tenants', namespace, labels },
      data: { [AGENT_CONFIG_KEY]: escapeForTerraform(renderAgentConfig(config)) },
    });
    this.daemonSet = new DaemonSetV1(this, 'Agent', {
      provider,
      metadata: { name: 'crossvpc-agent', namespace, labels },
      spec: {
        selector: { matchLabels: labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '1' } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: this.serviceAccount.metadata.name,
            hostNetwork: true,
            dnsPolicy: 'ClusterFirstWithHostNet',
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux', ...props.nodeSelector },
            toleration: [{ operator: 'Exists' }],
            container: [{
              name: 'agent',
              image: props.agentImage,
              args: ['--config', AGENT_CONFIG_PATH, '--pods', 'kube', '--metrics-addr', `:${portIsToken ? Token.asString(metricsPort) : metricsPort}`],
              // hostNetwork: the container port is the host port, on the node IP the agent binds.
              port: [{ name: 'metrics', containerPort: metricsPort, hostPort: metricsPort, protocol: 'TCP' }],
              // /healthz is 503 until the first full table is applied and after 60 s of failing applies.
              // Startup allows 5 min for the first pod list (API server reachable, CNI up); readiness gates
              // rolling updates (maxUnavailable 1); liveness restarts an agent stuck failing (the data plane stays).
              startupProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 60 },
              readinessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
                { name: 'CROSSVPC_SYSCTL_ROOT', value: '/host/proc/sys' },
              ],
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
              },
              resources: { requests: { cpu: '20m', memory: '48Mi' }, limits: { memory: '160Mi' } },
              volumeMount: [
                { name: 'tenants', mountPath: '/etc/crossvpc', readOnly: true },
                // Per-device sysctls of the tunnel devices (the runtime's /proc/sys is read-only).
                { name: 'sysctl-net', mountPath: '/host/proc/sys/net' },
              ],
            }],
            volume: [
              { name: 'tenants', configMap: { name: this.tenantTable.metadata.name } },
              { name: 'sysctl-net', hostPath: { path: '/proc/sys/net', type: 'Directory' } },
            ],
          },
        },
      },
    });
    if (props.ipMasqAgent) {
      const nonMasq = [spec.model.functionVpc.vpcCidr, ...spec.model.functionVpc.podCidrs];
      this.ipMasqAgentConfig = new ConfigMapV1(this, 'IpMasqAgent', {
        provider,
        metadata: { name: 'ip-masq-agent', namespace: 'kube-system', labels },
        data: { config: stringify({ nonMasqueradeCIDRs: nonMasq, masqLinkLocal: false, resyncInterval: '60s' }) },
      });
    }
    // Marked only once complete: a link whose constructor threw is not a rival.
    Object.defineProperty(this, FUNCTION_VPC_LINK, { value: true });
  }
}
