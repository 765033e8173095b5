export { buildCrossVpcModel } from '../lib';
export { buildGatewayMemberSpec } from '../lib/render/gateway-spec';
export { renderConntrackdConf } from '../lib/render/conntrackd';
export { renderGatewayFiles } from '../lib/render/gateway-files';
export { renderGatewayRuleset } from '../lib/render/gateway-ruleset';
export { renderKeepalivedConf } from '../lib/render/keepalived';
export { GATEWAY_SCRIPTS as GATEWAY_SCRIPT_NAMES } from '../lib/render/gateway-files';
export { renderMemberDocument, renderPairDocumentText } from '../lib/render/gateway-files';
export { parsePairDocument } from '../lib/contract/pair-document';
