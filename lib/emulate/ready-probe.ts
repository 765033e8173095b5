/**
 * Pod readiness probe, run inside a pod's namespace: opens a fresh TCP connection to a
 * Redis every `stepMs` (10 ms after the first 250 ms), sends PING on each that connects, and stops
 * at the first +PONG. A SYN sent before the node agent binds the pod is dropped and would
 * wait a full retransmit, so each attempt is a new connection, abandoned after
 * `attemptTimeoutMs`: the first attempt started after the binding is the one that answers.
 *
 *   node ready-probe.js <host> <port> <deadlineMs> [stepMs=1] [attemptTimeoutMs=250]
 *
 * Warms its socket paths up on loopback, prints `armed` once the first attempt is under way, then one JSON line (ProbeResult) and
 * exits 0. Times are process.hrtime (CLOCK_MONOTONIC, the same clock in every process on
 * the host), so the caller compares them with the moment it published the pod event.
 */
import { spawn } from 'child_process';
import { AddressInfo, createServer, Socket } from 'net';
import { createInterface } from 'readline';

export interface ProbeResult {
  /** CLOCK_MONOTONIC ns as decimal strings (JSON has no bigint); undefined until it happened. */
  readonly attemptStartedNs?: string;
  readonly connectedNs?: string;
  readonly replyNs?: string;
  readonly attempts: number;
  /** The last failure seen, for a probe that never got a reply. */
  readonly lastError?: string;
}

/** Open attempts at most: attemptTimeoutMs / stepMs of them are in flight while SYNs are dropped. */
const MAX_OPEN = 400;
/** The step holds for this long, then becomes SLOW_STEP_MS (if coarser). */
const FAST_FOR_MS = 250;
const SLOW_STEP_MS = 10;

/** A probe started in a namespace and trying: publish the pod event, then await `result`. */
export interface ArmedProbe {
  readonly result: Promise<ProbeResult>;
  /** Ends the probe (by its PID) if it is still running. */
  kill(): void;
}

/**
 * Starts `node ready-probe.js` in `ns` (ip netns exec execs node, so the child is the probe)
 * and resolves once it prints `armed`: its start-up (tens of ms) stays out of the measurement.
 */
export function armReadyProbe(script: string, ns: string, host: string, port: number, deadlineMs: number, stepMs = 1): Promise<ArmedProbe> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, host, String(port), String(deadlineMs), String(stepMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<string>((resolve) => child.once('close', (code, sig) => resolve(`ready probe in ${ns} exited (${code ?? sig}) without a result: ${stderr.trim() || 'no stderr'}`)));
  const nextLine = () => new Promise<string | undefined>((resolve) => {
    lines.once('line', resolve);
    void exited.then(() => resolve(undefined));
  });
  return new Promise((resolve, reject) => {
    const armTimer = setTimeout(() => {
      kill();
      reject(new Error(`ready probe in ${ns} not armed within 10 s`));
    }, 10_000);
    void nextLine().then(async (first) => {
      clearTimeout(armTimer);
      if (first !== 'armed') {
        kill();
        return reject(new Error(first === undefined ? await exited : `ready probe in ${ns}: expected 'armed', got ${first}`));
      }
      const result = nextLine().then(async (line) => {
        if (line === undefined) throw new Error(await exited);
        return JSON.parse(line) as ProbeResult;
      });
      resolve({ result, kill });
    });
  });
}

/** One attempt: connect, PING, call onReply at +PONG. Returns the socket (the caller ends it). */
function attemptOnce(host: string, port: number, onReply: (started: bigint, connected: bigint | undefined) => void, onError: (e: Error) => void): Socket {
  const started = process.hrtime.bigint();
  let connected: bigint | undefined;
  let buf = '';
  const s = new Socket();
  s.setNoDelay(true);
  s.on('connect', () => {
    connected = process.hrtime.bigint();
    s.write('PING\r\n');
  });
  s.on('data', (d) => {
    buf += d.toString('latin1');
    if (buf.startsWith('+PONG\r\n')) onReply(started, connected);
  });
  s.on('error', onError);
  s.connect(port, host);
  return s;
}

/**
 * A few attempts against a loopback stand-in first: node compiles its socket, write and read
 * paths on first use (about 1 ms each), which would otherwise land inside the measured reply.
 * Skipped when loopback is not up in the namespace.
 */
async function warmUp(rounds = 5): Promise<void> {
  const server = createServer((c) => c.on('data', () => c.end('+PONG\r\n')).on('error', () => undefined));
  const port = await new Promise<number | undefined>((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  for (let i = 0; port !== undefined && i < rounds; i++) {
    await new Promise<void>((resolve) => {
      const s = attemptOnce('127.0.0.1', port, () => (s.destroy(), resolve()), () => (s.destroy(), resolve()));
    });
  }
  server.close();
}

function probe(host: string, port: number, deadlineMs: number, stepMs: number, attemptTimeoutMs: number): void {
  const open = new Set<Socket>();
  let attempts = 0;
  let lastError: string | undefined;
  let done = false;
  const finish = (r: Omit<ProbeResult, 'attempts' | 'lastError'>) => {
    if (done) return;
    done = true;
    clearInterval(tick);
    clearTimeout(slower);
    clearTimeout(deadline);
    for (const s of open) s.destroy();
    process.stdout.write(`${JSON.stringify({ ...r, attempts, lastError } satisfies ProbeResult)}\n`, () => process.exit(0));
  };
  const attempt = () => {
    if (done || open.size >= MAX_OPEN) return;
    attempts++;
    const s = attemptOnce(host, port, (started, connected) => finish({ attemptStartedNs: String(started), connectedNs: String(connected), replyNs: String(process.hrtime.bigint()) }), (e) => {
      lastError = e.message; // the next step tries again: no busy loop on a refusing path
    });
    open.add(s);
    const drop = setTimeout(() => s.destroy(), attemptTimeoutMs);
    s.on('close', () => {
      clearTimeout(drop);
      open.delete(s);
    });
  };
  let tick = setInterval(attempt, stepMs);
  // A pod still unbound after a while is slow anyway: a coarser step keeps a long wait from burning CPU.
  const slower = setTimeout(() => {
    clearInterval(tick);
    tick = setInterval(attempt, Math.max(stepMs, SLOW_STEP_MS));
  }, FAST_FOR_MS);
  const deadline = setTimeout(() => finish({}), deadlineMs);
  attempt();
  process.stdout.write('armed\n');
}

if (require.main === module) {
  const [host, port, deadlineMs, stepMs = '1', attemptTimeoutMs = '250'] = process.argv.slice(2);
  const nums = [port, deadlineMs, stepMs, attemptTimeoutMs].map(Number);
  if (!host || nums.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write('usage: ready-probe.js <host> <port> <deadlineMs> [stepMs=1] [attemptTimeoutMs=250]\n');
    process.exit(2);
  }
  void warmUp().then(() => probe(host, nums[0], nums[1], nums[2], nums[3]));
}
