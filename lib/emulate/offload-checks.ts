import type { Emulation } from './emulator';
import { Check } from './report';

/** One feature's state as `ethtool -k` prints it ("on", "off", "on [fixed]" → "on"), '' when unreadable. */
export function offloadState(ethtoolK: string, feature: string): string {
  const m = new RegExp(`^${feature}: (on|off)`, 'm').exec(ethtoolK);
  return m ? m[1] : '';
}

/**
 * What the shipped configuration turns on for speed is on (issue 12): every member's underlay
 * has GRO, as crossvpc-dataplane sets it. Control: the member's link to the cloud API, which
 * nothing of ours configures, reads off (a veth's default), so the probe tells the two apart.
 */
export function offloadChecks(emu: Emulation): Check[] {
  return emu.members().map((m) => {
    const gro = (dev: string) => offloadState(emu.exec(m.ns, 'ethtool', ['-k', dev], { allowFail: true }), 'generic-receive-offload');
    const underlay = gro('ens5');
    const control = gro('imds');
    return {
      name: `${m.id}: GRO is on on the underlay (crossvpc-dataplane sets it; control: the member's untouched cloud-API link reads off)`,
      pass: underlay === 'on' && control === 'off',
      detail: `ens5 ${underlay || 'unreadable'}, imds ${control || 'unreadable'}`,
    };
  });
}
