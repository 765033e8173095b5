export { buildCrossVpcModel } from '../lib';
export { buildGatewayMemberSpec } from '../lib/render/gateway-spec';
export { renderConntrackdConf } from '../lib/render/conntrackd';
export { renderGatewayFiles } from '../lib/render/gateway-files';
export { renderGatewayRuleset } from '../lib/render/gateway-ruleset';
export { renderKeepalivedConf } from '../lib/render/keepalived';
export { GATEWAY_SCRIPTS as GATEWAY_SCRIPT_NAMES } from '../lib/render/gateway-files';
export { renderMemberDocument, renderPairDocumentText } from '../lib/render/gateway-files';
export { parsePairDocument } from '../lib/contract/pair-document';

import { buildCrossVpcModel as build } from '../lib';
/** Two tenants, alpha (VNI 1001) and beta (1002), with identical CIDRs on one pair: the gateway renderers' fixture. */
export function twoTenantModel() {
  return build('Test', {
    functionVpc: { vpcId: 'vpc-f', nodeSubnetIds: ['subnet-n'], vpcCidr: '10.0.0.0/16' },
    gateway: { subnetId: 'subnet-g' },
    tenants: [
      { name: 'alpha', vpcId: 'vpc-a', subnetId: 'subnet-a', cidrs: ['172.16.0.0/16'], vni: 1001, internetEgress: 'tenantVpc' },
      { name: 'beta', vpcId: 'vpc-b', subnetId: 'subnet-b', cidrs: ['172.16.0.0/16'], vni: 1002 },
    ],
  });
}
