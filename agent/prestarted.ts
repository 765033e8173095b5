import { ChildProcessWithoutNullStreams, spawn } from 'child_process';

/** How a finished command ended: its exit code (-1 when killed or not started) and output. */
export interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the process could not be started or was killed (timeout). */
  readonly error?: string;
}

/**
 * A command that reads its whole input from stdin before doing anything (`nft -f -`),
 * started ahead of use: the caller's input goes to a process that already exists, so
 * process start-up (about 2 ms from the agent, most of an element update's cost) is
 * paid between applies, not inside one. Each process serves one input; the next is
 * started after it finishes. A spare that died meanwhile is replaced, never reused.
 */
export class PrestartedCommand {
  private spare?: { child: ChildProcessWithoutNullStreams; out: Buffer[]; err: Buffer[]; exited: Promise<Finished> };
  private stopped = false;

  constructor(
    readonly argv: readonly string[],
    private readonly timeoutMs = 30_000,
  ) {
    this.refill();
  }

  /** Gives `input` to the spare process (or a fresh one if the spare is gone) and waits for it to finish. */
  async run(input: string): Promise<Finished> {
    let s = this.spare;
    this.spare = undefined;
    if (!s || s.child.exitCode !== null || s.child.signalCode !== null) s = this.start();
    const timer = setTimeout(() => s!.child.kill('SIGKILL'), this.timeoutMs);
    s.child.stdin.on('error', () => undefined); // EPIPE from a process that died: its exit says why
    s.child.stdin.end(input);
    try {
      return await s.exited;
    } finally {
      clearTimeout(timer);
      setImmediate(() => this.refill());
    }
  }

  /** Ends the spare (our own child, by its handle). */
  stop(): void {
    this.stopped = true;
    this.spare?.child.kill('SIGKILL');
    this.spare = undefined;
  }

  private refill(): void {
    if (!this.stopped && !this.spare) this.spare = this.start();
  }

  private start(): NonNullable<PrestartedCommand['spare']> {
    const child = spawn(this.argv[0], this.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const exited = new Promise<Finished>((resolve) => {
      const output = () => ({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      child.on('error', (e) => resolve({ code: -1, ...output(), error: e.message })); // not started (ENOENT)
      child.on('close', (code, signal) => resolve({ code: code ?? -1, ...output(), ...(signal ? { error: `killed by ${signal}` } : {}) }));
    });
    // A spare that exits before use is dropped (the next run starts a fresh one).
    void exited.then(() => {
      if (this.spare?.child === child) this.spare = undefined;
    });
    return { child, out, err, exited };
  }
}
