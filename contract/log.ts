// Structured logs, the one shape of both programs: one JSON object per line with stable keys
// (time, level, msg, then the fields: { pool, domain, queueId, code }), never a string built up.
// Each program's main.ts picks the stream (the relay stdout, the operator stderr) and the level.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type Logger = (level: LogLevel, msg: string, fields?: LogFields) => void;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(write: (line: string) => void, minLevel: LogLevel = 'info'): Logger {
  return (level, msg, fields) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

/** The same logger with `fields` on every line ({ component: 'scraper' }, { pool, namespace }). */
export function withFields(log: Logger, fields: LogFields): Logger {
  return (level, msg, more) => log(level, msg, { ...fields, ...more });
}
