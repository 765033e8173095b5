/**
 * The synth benchmark's floor (bench/synth-floor.ts) holds exactly the blocks of our plan,
 * and refuses a type it cannot build rather than leaving it out.
 */
import { App, Testing } from 'cdktf';
import { benchTenants } from '../bench/synth';
import { blockCounts, FloorStack } from '../bench/synth-floor';
import { OverlappingTenantsStack } from '../examples/overlapping-tenants/stack';

describe('bench:synth floor', () => {
  const ours = () => {
    const app = Testing.app();
    const stack = new OverlappingTenantsStack(app, 'ours', { tenants: benchTenants(10), gateway: { instanceType: 'c6in.xlarge' }, agentImage: 'crossvpc-agent:bench' });
    return blockCounts(JSON.parse(Testing.synth(stack)));
  };

  test('holds the same resource and data blocks, type by type, as our 10-tenant plan', () => {
    const counts = ours();
    expect(Object.keys(counts).length).toBeGreaterThan(15);
    const floor = new FloorStack(Testing.app(), 'floor', counts);
    expect(blockCounts(JSON.parse(Testing.synth(floor)))).toEqual(counts);
  });

  test('a type it has no factory for is an error naming it (control: one more known block changes the counts)', () => {
    expect(() => new FloorStack(new App(), 'floor', { 'resource.aws_lb': 1 })).toThrow(/no factory for resource\.aws_lb/);
    const counts = { 'data.aws_subnet': 2 };
    expect(blockCounts(JSON.parse(Testing.synth(new FloorStack(Testing.app(), 'floor', counts))))).toEqual(counts);
  });
});
