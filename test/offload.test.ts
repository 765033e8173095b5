import { offloadState } from '../lib/emulate/offload-checks';

describe('offloadState', () => {
  const ethtoolK = 'Features for ens5:\nrx-checksumming: on\ngeneric-receive-offload: on\nrx-udp-gro-forwarding: off\ntx-udp_tnl-segmentation: off [fixed]\n';
  test('reads a feature by its full name', () => {
    expect(offloadState(ethtoolK, 'generic-receive-offload')).toBe('on');
    expect(offloadState(ethtoolK, 'rx-udp-gro-forwarding')).toBe('off');
    expect(offloadState(ethtoolK, 'tx-udp_tnl-segmentation')).toBe('off');
  });
  test('control: a missing feature or no output reads empty, never on', () => {
    expect(offloadState(ethtoolK, 'large-receive-offload')).toBe('');
    expect(offloadState('', 'generic-receive-offload')).toBe('');
  });
});
