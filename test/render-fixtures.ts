export { buildCrossVpcModel, buildGatewayMemberSpec, renderConntrackdConf, renderGatewayFiles, renderGatewayRuleset, renderKeepalivedConf } from '../lib';
export { GATEWAY_SCRIPTS as GATEWAY_SCRIPT_NAMES } from '../lib/render/gateway-files';
