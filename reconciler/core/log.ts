import { pino, type Logger } from 'pino';
import type { Redactor } from './secrets.js';

export type { Logger };

export type LogFormat = 'json' | 'text';

// Structured events on stderr (stdout is for data). Every line passes the
// redactor, so a secret value that reached a log field is still never written.
// `beforeWrite` runs before each line (a live progress line clears itself, so the log line stands alone).
// JSON lines for machines (the agent's journal, a pipe, CI); on a terminal one readable line each
// (`hostkit: error: MESSAGE (key=value ...)`), unless HOSTKIT_LOG_FORMAT says otherwise.
export function createLogger(
  options: { level?: string; redactor?: Redactor; destination?: number; beforeWrite?: () => void; format?: LogFormat } = {},
): Logger {
  const { redactor, beforeWrite } = options;
  const dest = options.destination ?? 2;
  const format = options.format ?? logFormat(dest);
  const streamWrite = (s: string) => {
    beforeWrite?.();
    const line = format === 'text' ? textLine(s) : s;
    return redactor ? redactor.scrub(line) : line;
  };
  return pino(
    {
      level: options.level ?? process.env.HOSTKIT_LOG_LEVEL ?? 'warn',
      base: undefined,
      ...(redactor || beforeWrite || format === 'text' ? { hooks: { streamWrite } } : {}),
    },
    pino.destination({ dest, sync: true }),
  );
}

/** HOSTKIT_LOG_FORMAT (json or text), else text on a terminal and JSON anywhere else. */
export function logFormat(
  fd: number,
  env: NodeJS.ProcessEnv = process.env,
  isTTY = fd === 2 ? process.stderr.isTTY : fd === 1 ? process.stdout.isTTY : false,
): LogFormat {
  if (env.HOSTKIT_LOG_FORMAT === 'json' || env.HOSTKIT_LOG_FORMAT === 'text') return env.HOSTKIT_LOG_FORMAT;
  return isTTY ? 'text' : 'json';
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

/** One pino JSON line as a person reads it: `hostkit: error: apply failed (resource=health/shop error="...")`. */
export function textLine(json: string): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time: _time, msg, ...fields } = event;
  const shown = Object.entries(fields).map(([k, v]) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    return `${k}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
  });
  const name = LEVELS[level as number] ?? String(level);
  return `hostkit: ${name}: ${typeof msg === 'string' ? msg : ''}${shown.length > 0 ? ` (${shown.join(' ')})` : ''}\n`;
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
