import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { Redactor } from '../core/secrets.js';
import type { Channel } from './channels.js';
import type { Notice, NoticeKind } from './events.js';

export interface NotifierOptions {
  /** The sending host (a notice about a stale host names another). */
  sender: string;
  channels: readonly Channel[];
  /** Only these kinds are sent. */
  on: ReadonlySet<NoticeKind>;
  /** A notice with the same key is not sent again within this long. */
  dedupeMs: number;
  /** At most this many notices an hour (all channels together count one per notice); the rest are dropped, and counted in the next. */
  maxPerHour: number;
  redactor: Redactor;
  log: Logger;
  /** Where sent keys are remembered across restarts (STATE/agent/HOST-notices.json). */
  stateFile?: string;
  now?: () => number;
}

interface Persisted {
  sent: Record<string, number>;
}

/**
 * Sends notices to every channel, at most once per key per dedupe window and at
 * most maxPerHour an hour, so a flapping resource cannot set off a storm. Every
 * text passes the redactor first. Sending never throws: a channel that fails is
 * logged, and the notice counts as sent (it is not retried into a storm).
 */
export class Notifier {
  private readonly o: NotifierOptions;
  private readonly now: () => number;
  private sent = new Map<string, number>();
  private window: number[] = [];
  /** Notices the rate limit dropped since the last one sent, by key (a notice dropped again counts once). */
  private dropped = new Map<string, NoticeKind>();
  private loading: Promise<void> | undefined;
  /** The notify calls in order, one at a time: the report hook and the timer's check can overlap. */
  private queue: Promise<void> = Promise.resolve();
  /** Every notice actually handed to the channels (tests, metrics). */
  readonly delivered: Notice[] = [];

  constructor(options: NotifierOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
  }

  notify(notices: readonly Notice[]): Promise<void> {
    const run = this.queue.then(() => this.send(notices));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async send(notices: readonly Notice[]): Promise<void> {
    this.loading ??= this.load();
    await this.loading;
    const now = this.now();
    let changed = false;
    for (const notice of notices) {
      if (!this.o.on.has(notice.kind)) continue;
      const last = this.sent.get(notice.key);
      if (last !== undefined && now - last < this.o.dedupeMs) continue;
      this.window = this.window.filter((t) => now - t < 3_600_000);
      if (this.window.length >= this.o.maxPerHour) {
        this.dropped.set(notice.key, notice.kind);
        this.o.log.warn({ kind: notice.kind, key: this.o.redactor.scrub(notice.key) }, 'notice dropped: rate limit');
        continue;
      }
      this.window.push(now);
      this.sent.set(notice.key, now);
      changed = true;
      this.dropped.delete(notice.key);
      const more = this.droppedLine();
      this.dropped.clear();
      const scrub = (t: string) => this.o.redactor.scrub(t);
      // Every text field, not only the prose: a key or a host name is as printable as a subject.
      const out = {
        kind: notice.kind,
        host: scrub(notice.host),
        subject: scrub(notice.subject),
        ...(notice.detail || more ? { detail: scrub((notice.detail ?? '') + more).trim() } : {}),
        ...(notice.commit ? { commit: scrub(notice.commit) } : {}),
        key: scrub(notice.key),
        at: new Date(now).toISOString(),
        sender: this.o.sender,
      };
      this.delivered.push(out);
      await Promise.all(
        this.o.channels.map(async (c) => {
          try {
            await c.send(out);
            this.o.log.info({ channel: c.name, kind: notice.kind, host: notice.host }, 'notice sent');
          } catch (cause) {
            this.o.log.warn({ channel: c.name, kind: notice.kind, err: scrub(errorMessage(cause)) }, 'notice not sent');
          }
        }),
      );
    }
    if (changed) await this.save(now);
  }

  // "(3 notice(s) dropped by the rate limit before this one: 2 drift, 1 stale)": what was missed, by kind.
  private droppedLine(): string {
    if (this.dropped.size === 0) return '';
    const kinds = new Map<NoticeKind, number>();
    for (const kind of this.dropped.values()) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const byKind = [...kinds].map(([kind, n]) => `${n} ${kind}`).join(', ');
    return `\n(${this.dropped.size} notice(s) dropped by the rate limit before this one: ${byKind})`;
  }

  private async load(): Promise<void> {
    if (!this.o.stateFile) return;
    try {
      const p = JSON.parse(await readFile(this.o.stateFile, 'utf8')) as Persisted;
      this.sent = new Map(Object.entries(p.sent));
    } catch {
      // first start, or unreadable: at worst a notice is sent once more
    }
  }

  // Keys older than the dedupe window are forgotten; the file is replaced whole (rename).
  private async save(now: number): Promise<void> {
    if (!this.o.stateFile) return;
    for (const [k, t] of this.sent) if (now - t >= this.o.dedupeMs) this.sent.delete(k);
    const temp = `${this.o.stateFile}.tmp`;
    try {
      await mkdir(path.dirname(this.o.stateFile), { recursive: true, mode: 0o700 });
      await writeFile(temp, JSON.stringify({ sent: Object.fromEntries(this.sent) } satisfies Persisted) + '\n', { mode: 0o600 });
      await rename(temp, this.o.stateFile);
    } catch (cause) {
      this.o.log.warn({ err: errorMessage(cause) }, 'sent notices not saved');
    }
  }
}
