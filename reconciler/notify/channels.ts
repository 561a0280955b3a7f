// Where notices go: a generic JSON webhook signed with HMAC-SHA256 (the same
// header the agent's own webhook accepts), a Slack-compatible incoming webhook
// (Slack, Mattermost, Rocket.Chat take `{"text": ...}`), or email over SMTP
// (smtp.ts: plain, STARTTLS or TLS; AUTH PLAIN when a user is set). Each send either
// resolves or throws an error that names the channel and never the secret.
import { createHmac, randomUUID } from 'node:crypto';
import { HostKitError } from '../core/errors.js';
import type { Notice } from './events.js';
import { checkSmtpOptions, smtpSend, type SmtpOptions } from './smtp.js';

export type { SmtpOptions } from './smtp.js';

export interface Channel {
  /** For logs and errors: the kind and where, never a secret. */
  readonly name: string;
  send(notice: Notice & { at: string; sender: string }): Promise<void>;
}

const TIMEOUT_MS = 10_000;

async function post(name: string, url: string, body: string, headers: Record<string, string>): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (cause) {
    throw new HostKitError('NOTIFY_FAILED', `${name}: no answer (${(cause as Error).message})`, { retryable: true });
  }
  await res.body?.cancel();
  if (!res.ok) throw new HostKitError('NOTIFY_FAILED', `${name}: answered ${res.status}`, { retryable: res.status >= 500 || res.status === 429 });
}

/** The channel's public name: scheme, host and port only (a Slack URL's path is its secret). */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid URL)';
  }
}

/** A JSON POST; `X-HostKit-Signature: sha256=HEX` is the HMAC-SHA256 of the body with the shared secret. */
export function webhookChannel(url: string, secret: Buffer): Channel {
  const name = `webhook ${where(url)}`;
  return {
    name,
    async send(notice) {
      const body = JSON.stringify({
        kind: notice.kind,
        host: notice.host,
        subject: notice.subject,
        ...(notice.detail ? { detail: notice.detail } : {}),
        ...(notice.commit ? { commit: notice.commit } : {}),
        key: notice.key,
        at: notice.at,
        sender: notice.sender,
      });
      await post(name, url, body, {
        'x-hostkit-event': 'notice',
        'x-hostkit-delivery': randomUUID(),
        'x-hostkit-signature': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
      });
    },
  };
}

// Slack reads <...> as a link or a mention (<!channel> pings everyone): &, < and > are escaped, as its API asks.
const slackEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Slack's incoming-webhook shape: `{"text": ...}` with mrkdwn. */
export function slackChannel(url: string): Channel {
  const name = `slack ${where(url)}`;
  return {
    name,
    async send(notice) {
      const detail = notice.detail ? `\n\`\`\`${slackEscape(notice.detail.replace(/```/g, "'''"))}\`\`\`` : '';
      await post(name, url, JSON.stringify({ text: `*HostKit* ${slackEscape(notice.subject)}${detail}` }), {});
    },
  };
}

/** Email over SMTP (RFC 5321): one message per notice to every recipient. Options that cannot work throw here. */
export function emailChannel(options: SmtpOptions): Channel {
  checkSmtpOptions(options);
  const name = `email ${options.host}:${options.port}`;
  return {
    name,
    send: (notice) =>
      smtpSend(name, options, {
        subject: `[HostKit] ${notice.subject}`,
        text: [notice.subject, '', notice.detail ?? '', '', `kind: ${notice.kind}`, `sent by ${notice.sender} at ${notice.at}`].join('\n'),
      }),
  };
}
