/**
 * Every format that crosses a boundary between the renderers, the gateway scripts, the node
 * agent and the emulator. Imports nothing outside this directory but node built-ins: the agent
 * image runs it compiled beside dist/agent, without the CDK libraries.
 */
export * from './agent-config';
export * from './gateway-env';
export * from './ipv4';
export * from './mac';
export * from './names';
export * from './tenant-table';
export * from './member-status';
export * from './pair-document';
export * from './gateway-metrics';
export * from './doctor-findings';
export * from './agent-metrics';
export * from './egress';
export * from './ingress';
