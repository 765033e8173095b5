export type Level = 'info' | 'warn' | 'error';
export type Log = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

/** One JSON object per line on stdout, so the node's log pipeline can index every action. */
export function jsonLog(write: (line: string) => void = (l) => process.stdout.write(l)): Log {
  return (level, msg, fields) => write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export const silentLog: Log = () => undefined;
