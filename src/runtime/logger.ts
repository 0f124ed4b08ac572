// Structured logs with winston: JSON lines in a cluster, readable text in a terminal.
// Fields whose names suggest a secret are redacted before any transport sees them, as a
// second line of defence: code must not put secrets in log fields in the first place.
import winston from 'winston';

export type Logger = winston.Logger;
export type LogFormat = 'json' | 'text' | 'auto';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const SECRET_FIELD = /pass(word)?|secret|token|authorization|credential|private.?key|hmac/i;
export const REDACTED = '[redacted]';

/** Copies a log field value with secret-looking keys redacted, at any depth. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { message: value.message, name: value.name };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELD.test(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message') continue;
    info[key] = SECRET_FIELD.test(key) ? REDACTED : redact(info[key]);
  }
  return info;
});

function textFormat(): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, message, timestamp, ...fields } = info;
    const rest = Object.entries(fields)
      .filter(([k]) => typeof k === 'string')
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${String(timestamp)} ${level} ${String(message)}${rest ? ' ' + rest : ''}`;
  });
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where to write; defaults to stdout. Tests pass a stream to read lines back. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const useText = options.format === 'text' || (options.format === 'auto' && process.stdout.isTTY === true);
  const format = winston.format.combine(
    redactFormat(),
    winston.format.timestamp(),
    useText ? winston.format.combine(winston.format.colorize(), textFormat()) : winston.format.json(),
  );
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({ level: options.level, format, transports: [transport] });
}

/** A logger that discards everything, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
