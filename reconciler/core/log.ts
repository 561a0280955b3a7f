import { pino, type Logger } from 'pino';
import type { Redactor } from './secrets.js';

export type { Logger };

// Structured events on stderr (stdout is for data). Every line passes the
// redactor, so a secret value that reached a log field is still never written.
// `beforeWrite` runs before each line (a live progress line clears itself, so the log line stands alone).
export function createLogger(options: { level?: string; redactor?: Redactor; destination?: number; beforeWrite?: () => void } = {}): Logger {
  const { redactor, beforeWrite } = options;
  const streamWrite = (s: string) => {
    beforeWrite?.();
    return redactor ? redactor.scrub(s) : s;
  };
  return pino(
    {
      level: options.level ?? process.env.HOSTKIT_LOG_LEVEL ?? 'warn',
      base: undefined,
      ...(redactor || beforeWrite ? { hooks: { streamWrite } } : {}),
    },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
