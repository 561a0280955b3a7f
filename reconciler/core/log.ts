import { pino, type Logger } from 'pino';
import type { Redactor } from './secrets.js';

export type { Logger };

// Structured events on stderr (stdout is for data). Every line passes the
// redactor, so a secret value that reached a log field is still never written.
export function createLogger(options: { level?: string; redactor?: Redactor; destination?: number } = {}): Logger {
  const redactor = options.redactor;
  return pino(
    {
      level: options.level ?? process.env.HOSTKIT_LOG_LEVEL ?? 'warn',
      base: undefined,
      ...(redactor ? { hooks: { streamWrite: (s: string) => redactor.scrub(s) } } : {}),
    },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
