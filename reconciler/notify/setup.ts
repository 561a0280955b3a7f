import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { NotificationChannelConfig, NotificationsConfig } from '../agent/config.js';
import { errorMessage } from '../core/errors.js';
import type { Redactor } from '../core/secrets.js';
import type { BackupHistory } from '../drivers/backup/job.js';
import { fleetRows } from '../fleet/status.js';
import type { FleetState } from '../fleet/reports.js';
import type { HostReport } from '../report/status.js';
import { emailChannel, slackChannel, webhookChannel, type Channel } from './channels.js';
import { backupNotices, reportNotices, staleNotices } from './events.js';
import { Notifier } from './notifier.js';

// A secret file's content without its final newline; the value joins the redactor before anything can print it.
async function secret(file: string, what: string, redactor: Redactor): Promise<string> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (cause) {
    throw new Error(`Could not read the ${what} from ${file}: ${errorMessage(cause)}`, { cause });
  }
  if (!text) throw new Error(`Could not read the ${what} from ${file}: the file is empty`);
  redactor.add(text);
  return text;
}

async function channel(c: NotificationChannelConfig, redactor: Redactor): Promise<Channel> {
  if (c.type === 'webhook') return webhookChannel(c.url, Buffer.from(await secret(c.secretFile, 'notification webhook secret', redactor)));
  if (c.type === 'slack') return slackChannel(await secret(c.urlFile, 'Slack webhook URL', redactor));
  const password = c.passwordFile ? await secret(c.passwordFile, 'SMTP password', redactor) : undefined;
  const ca = c.tlsCaFile ? await caCertificate(c.tlsCaFile) : undefined;
  return emailChannel({
    host: c.host,
    port: c.port,
    security: c.security,
    ...(c.username ? { username: c.username } : {}),
    ...(password !== undefined ? { password } : {}),
    from: c.from,
    to: c.to,
    ...(ca !== undefined ? { ca } : {}),
  });
}

// Not a secret; checked now, so a wrong file stops the agent at start rather than failing every notice.
async function caCertificate(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new Error(`Could not read the SMTP CA certificate from ${file}: ${errorMessage(cause)}`, { cause });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`Could not read the SMTP CA certificate from ${file}: no PEM certificate in it`);
  return text;
}

/** The live host that tells about a stale one: the next in name order after it, wrapping around (one notice, not one per host). */
export function watcherOf(stale: string, live: readonly string[]): string | undefined {
  const sorted = [...live].sort();
  return sorted.find((h) => h > stale) ?? sorted[0];
}

export interface NotificationsSetup {
  notifier: Notifier;
  /** The agent's `notify`: what one published report calls for. */
  onReport: (report: HostReport) => Promise<void>;
  /** Backups that failed and hosts that went quiet, checked on a timer (the agent's drift interval). */
  start(intervalMs: number): void;
  stop(): void;
}

export async function setupNotifications(options: {
  config: NotificationsConfig;
  host: string;
  stateDirectory: string;
  redactor: Redactor;
  log: Logger;
  backups: () => Promise<BackupHistory[]>;
  /** The report branch as it is now (undefined: reports disabled). */
  fleet?: () => Promise<FleetState>;
  now?: () => number;
}): Promise<NotificationsSetup> {
  const { config, host, redactor, log } = options;
  const now = options.now ?? Date.now;
  const channels = await Promise.all(config.channels.map((c) => channel(c, redactor)));
  const notifier = new Notifier({
    sender: host,
    channels,
    on: new Set(config.on),
    dedupeMs: config.dedupeMs,
    maxPerHour: config.maxPerHour,
    redactor,
    log,
    stateFile: path.join(options.stateDirectory, 'agent', `${host}-notices.json`),
    now,
  });
  const check = async () => {
    try {
      await notifier.notify(backupNotices(host, await options.backups()));
      if (options.fleet) {
        const fleet = await options.fleet();
        const rows = fleetRows({ reports: fleet.reports, hosts: [], now: now(), staleAfterMs: config.staleAfterMs });
        const live = rows.filter((r) => !r.stale).map((r) => r.host);
        await notifier.notify(staleNotices(rows.filter((r) => r.stale && watcherOf(r.host, live) === host)));
      }
    } catch (cause) {
      log.warn({ err: errorMessage(cause) }, 'notification check failed');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    notifier,
    onReport: (report) => notifier.notify(reportNotices(report, { now: now(), certificateExpiryDays: config.certificateExpiryDays })),
    start(intervalMs) {
      void check();
      timer = setInterval(() => void check(), intervalMs);
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
