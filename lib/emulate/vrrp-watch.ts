import { closeSync, openSync, readSync, statSync } from 'fs';
import { join } from 'path';
import type { Emulation, GatewayMember } from './emulator';

export interface VrrpTransition {
  /** ms since the watch started. */
  readonly atMs: number;
  readonly from: string;
  readonly to: string;
}

export interface MemberVrrp {
  readonly id: string;
  /** State changes seen by polling the member's vrrp-state every POLL_MS (NONE: no state file, e.g. a new instance). */
  readonly transitions: VrrpTransition[];
  /** keepalived's own `Entering <STATE> STATE` lines logged during the watch, in order (catches flaps shorter than a poll). */
  readonly entered: string[];
}

export interface VrrpWatchResult {
  readonly members: MemberVrrp[];
  /** Live master when the watch started and when it stopped. */
  readonly masterBefore?: string;
  readonly masterAfter?: string;
  /** Some member other than the first master entered MASTER: traffic moved. */
  readonly failover: boolean;
  /**
   * Some member entered FAULT. A member that booted during the watch (a replacement, a
   * reboot) is not ready until it has applied its first document: its FAULT before it first
   * reaches BACKUP or MASTER is its boot, not a fault, and is only reported.
   */
  readonly fault: boolean;
}

const POLL_MS = 25;
const keepalivedLog = (m: GatewayMember) => join(m.root, 'run/crossvpc/crossvpc-keepalived.service.log');

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The text a log gained since `from` (all of it when the file was replaced by a shorter one). */
function tail(file: string, from: number): string {
  const size = fileSize(file);
  const start = size < from ? 0 : from;
  if (size <= start) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(size - start, 4 << 20));
    const n = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Every gateway member's VRRP state during a transition, by polling and from keepalived's
 * log: what a step reports as its members' state changes, FAULTs and failovers.
 */
export class VrrpWatch {
  private readonly started = Date.now();
  private readonly last = new Map<string, string>();
  private readonly transitions = new Map<string, VrrpTransition[]>();
  private readonly logFrom = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly masterBefore?: string;

  constructor(private readonly emu: Emulation, private readonly pair = 0) {
    this.masterBefore = emu.liveMaster(pair)?.id;
    for (const m of emu.members(pair)) {
      this.last.set(m.id, emu.vrrpState(m));
      this.transitions.set(m.id, []);
      this.logFrom.set(m.id, fileSize(keepalivedLog(m)));
    }
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  private poll(): void {
    for (const m of this.emu.members(this.pair)) {
      const now = this.emu.vrrpState(m);
      const was = this.last.get(m.id) ?? 'NONE';
      if (now === was) continue;
      this.last.set(m.id, now);
      this.transitions.get(m.id)?.push({ atMs: Date.now() - this.started, from: was, to: now });
    }
  }

  /** `booted`: members that (re)booted during the watch. */
  stop(booted: readonly string[] = []): VrrpWatchResult {
    clearInterval(this.timer);
    this.poll();
    const members = this.emu.members(this.pair).map((m) => {
      // A booted member's log is a new file (its /run is new): all of it is from this watch.
      const entered = [...tail(keepalivedLog(m), booted.includes(m.id) ? 0 : this.logFrom.get(m.id) ?? 0).matchAll(/Entering (\w+) STATE/g)].map((x) => x[1]);
      return { id: m.id, transitions: this.transitions.get(m.id) ?? [], entered };
    });
    const failover = members.some((m) => m.id !== this.masterBefore && (m.transitions.some((t) => t.to === 'MASTER') || m.entered.includes('MASTER')));
    const ready = (s: string) => s === 'BACKUP' || s === 'MASTER';
    const faulted = (states: string[], boot: boolean) => {
      // A booting member's states count from its first BACKUP or MASTER; since a boot leaves a NONE in the poll, from the last one.
      const from = boot ? states.findIndex(ready) : 0;
      return from >= 0 && states.slice(from).includes('FAULT');
    };
    const fault = members.some((m) => {
      const boot = booted.includes(m.id);
      const polled = m.transitions.map((t) => t.to);
      const sinceBoot = boot ? polled.slice(polled.lastIndexOf('NONE') + 1) : polled;
      return faulted(sinceBoot, boot) || faulted(m.entered, boot);
    });
    return { members, masterBefore: this.masterBefore, masterAfter: this.emu.liveMaster(this.pair)?.id, failover, fault };
  }
}

export function formatVrrp(r: VrrpWatchResult): string {
  return r.members.map((m) => `${m.id}: ${m.transitions.length ? m.transitions.map((t) => `${t.from}->${t.to} at ${(t.atMs / 1000).toFixed(2)} s`).join(', ') : 'no change'}${m.entered.length ? ` (keepalived: entered ${m.entered.join(', ')})` : ''}`).join('; ');
}
