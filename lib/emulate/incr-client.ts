/**
 * The failover workload: ONE long-lived TCP connection to a Redis server issuing INCR
 * back to back, recording every acknowledged reply. It never reconnects silently: a
 * lost connection is counted, then a new one is opened, so "the original connection
 * survived" is a fact, not an assumption.
 *
 *   node incr-client.js <host> <key> <statusFile> [opTimeoutMs]
 * Stops on SIGTERM and writes a final status line.
 */
import { Socket } from 'net';
import { renameSync, writeFileSync } from 'fs';

interface Status {
  acked: number;
  lastValue: number;
  failedOps: number;
  reconnects: number;
  maxGapMs: number;
  gapStartedAt?: number;
  gaps: Array<{ at: number; ms: number }>;
  lastAckAt: number;
  /** Replies whose value is not the previous one + 1: another writer or a corrupted flow. */
  sequenceBreaks: number;
  connected: boolean;
  final?: boolean;
}

function run(host: string, key: string, statusFile: string, opTimeoutMs: number): void {
  const st: Status = { acked: 0, lastValue: 0, failedOps: 0, reconnects: 0, maxGapMs: 0, gaps: [], lastAckAt: Date.now(), sequenceBreaks: 0, connected: false };
  let sock: Socket | undefined;
  let buf = '';
  let lastAck = Date.now();
  let inflight: NodeJS.Timeout | undefined;
  let stopping = false;
  let connections = 0;

  // Atomic: readers never see a half-written status.
  const write = () => {
    writeFileSync(`${statusFile}.tmp`, `${JSON.stringify(st)}\n`);
    renameSync(`${statusFile}.tmp`, statusFile);
  };
  const noteAck = () => {
    const now = Date.now();
    const gap = now - lastAck;
    if (gap > 200) st.gaps.push({ at: lastAck, ms: gap });
    st.maxGapMs = Math.max(st.maxGapMs, gap);
    lastAck = now;
    st.lastAckAt = now;
  };
  const send = () => {
    if (stopping || !sock) return;
    sock.write(`*2\r\n$4\r\nINCR\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
    inflight = setTimeout(() => {
      // No reply in time: the op is not acknowledged; keep waiting on the same connection.
      st.failedOps += 1;
      inflight = undefined;
    }, opTimeoutMs);
  };
  const connect = () => {
    if (stopping) return;
    connections += 1;
    if (connections > 1) st.reconnects += 1;
    buf = '';
    const s = new Socket();
    sock = s;
    s.setNoDelay(true);
    s.connect(6379, host, () => {
      st.connected = true;
      send();
    });
    s.on('data', (d) => {
      buf += d.toString();
      let idx: number;
      while ((idx = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        if (inflight) clearTimeout(inflight);
        inflight = undefined;
        if (line.startsWith(':')) {
          st.acked += 1;
          const v = Number(line.slice(1));
          if (st.acked > 1 && v !== st.lastValue + 1) st.sequenceBreaks += 1;
          st.lastValue = v;
          noteAck();
        } else {
          st.failedOps += 1;
        }
        send();
      }
    });
    const lost = () => {
      if (sock !== s) return;
      st.connected = false;
      sock = undefined;
      if (inflight) clearTimeout(inflight);
      inflight = undefined;
      if (!stopping) setTimeout(connect, 100);
    };
    s.on('error', lost);
    s.on('close', lost);
  };

  const timer = setInterval(write, 100);
  process.on('SIGTERM', () => {
    stopping = true;
    clearInterval(timer);
    st.final = true;
    write();
    sock?.destroy();
    process.exit(0);
  });
  connect();
}

if (require.main === module) {
  const [host, key, statusFile, timeout] = process.argv.slice(2);
  if (!host || !key || !statusFile) {
    console.error('usage: incr-client <host> <key> <statusFile> [opTimeoutMs]');
    process.exit(2);
  }
  run(host, key, statusFile, Number(timeout ?? 5000));
}
