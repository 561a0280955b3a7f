// Where notices go: a generic JSON webhook signed with HMAC-SHA256 (the same
// header the agent's own webhook accepts), a Slack-compatible incoming webhook
// (Slack, Mattermost, Rocket.Chat take `{"text": ...}`), or email over SMTP
// (plain, STARTTLS or TLS; AUTH PLAIN when a user is set). Each send either
// resolves or throws an error that names the channel and never the secret.
import { createHmac, randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { HostKitError } from '../core/errors.js';
import type { Notice } from './events.js';

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

/** Slack's incoming-webhook shape: `{"text": ...}` with mrkdwn. */
export function slackChannel(url: string): Channel {
  const name = `slack ${where(url)}`;
  return {
    name,
    async send(notice) {
      const detail = notice.detail ? `\n\`\`\`${notice.detail.replace(/```/g, "'''")}\`\`\`` : '';
      await post(name, url, JSON.stringify({ text: `*HostKit* ${notice.subject}${detail}` }), {});
    },
  };
}

export interface SmtpOptions {
  host: string;
  port: number;
  /** none: plain SMTP (a relay on localhost); starttls: upgrade after EHLO; tls: TLS from the start (465). */
  security: 'none' | 'starttls' | 'tls';
  username?: string;
  password?: string;
  from: string;
  to: string[];
  /** Test doubles with a self-signed certificate. */
  rejectUnauthorized?: boolean;
}

/** Email over SMTP (RFC 5321): one message per notice to every recipient. */
export function emailChannel(options: SmtpOptions): Channel {
  const name = `email ${options.host}:${options.port}`;
  return {
    name,
    send: (notice) =>
      smtpSend(
        name,
        options,
        `[HostKit] ${notice.subject}`,
        [notice.subject, '', notice.detail ?? '', '', `kind: ${notice.kind}`, `sent by ${notice.sender} at ${notice.at}`].join('\n'),
      ),
  };
}

/** One SMTP conversation: a reply per command, checked against the code it must start with. */
class SmtpConversation {
  private socket: net.Socket | tls.TLSSocket;
  private buffer = '';
  private waiting: ((line: string) => void) | undefined;
  private failure: Error | undefined;

  constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.flush();
    });
    socket.on('error', (e) => {
      this.failure = e;
      this.flush();
    });
  }

  // A full reply is its last line: "250 ok" (a space after the code), after any "250-..." lines.
  private flush(): void {
    if (!this.waiting) return;
    const lines = this.buffer.split('\r\n');
    const last = lines.findIndex((l) => /^\d{3}(?: |$)/.test(l));
    if (last >= 0) {
      const reply = lines.slice(0, last + 1).join('\n');
      this.buffer = lines.slice(last + 1).join('\r\n');
      const w = this.waiting;
      this.waiting = undefined;
      w(reply);
    } else if (this.failure) {
      const w = this.waiting;
      this.waiting = undefined;
      w(`000 ${this.failure.message}`);
    }
  }

  reply(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.flush();
    });
  }

  async command(line: string | undefined, expect: string, what: string): Promise<string> {
    if (line !== undefined) this.socket.write(line + '\r\n');
    const reply = await this.reply();
    if (!reply.startsWith(expect)) throw new Error(`${what}: ${reply.split('\n').at(-1)}`);
    return reply;
  }

  async upgrade(host: string, rejectUnauthorized: boolean): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, servername: host, rejectUnauthorized });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  end(): void {
    this.socket.end();
  }
}

async function smtpSend(name: string, o: SmtpOptions, subject: string, text: string): Promise<void> {
  const rejectUnauthorized = o.rejectUnauthorized ?? true;
  const socket = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
    const s =
      o.security === 'tls'
        ? tls.connect({ host: o.host, port: o.port, servername: o.host, rejectUnauthorized }, () => resolve(s))
        : net.connect({ host: o.host, port: o.port }, () => resolve(s));
    s.setTimeout(TIMEOUT_MS, () => s.destroy(new Error('timed out')));
    s.once('error', reject);
  }).catch((cause: Error) => {
    throw new HostKitError('NOTIFY_FAILED', `${name}: cannot connect (${cause.message})`, { retryable: true });
  });
  const smtp = new SmtpConversation(socket);
  const helo = os.hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  try {
    await smtp.command(undefined, '220', 'greeting');
    let ehlo = await smtp.command(`EHLO ${helo}`, '250', 'EHLO');
    if (o.security === 'starttls') {
      if (!/STARTTLS/i.test(ehlo)) throw new Error('the server does not offer STARTTLS');
      await smtp.command('STARTTLS', '220', 'STARTTLS');
      await smtp.upgrade(o.host, rejectUnauthorized);
      ehlo = await smtp.command(`EHLO ${helo}`, '250', 'EHLO');
    }
    if (o.username !== undefined) {
      const token = Buffer.from(`\0${o.username}\0${o.password ?? ''}`).toString('base64');
      await smtp.command(`AUTH PLAIN ${token}`, '235', 'AUTH');
    }
    await smtp.command(`MAIL FROM:<${o.from}>`, '250', 'MAIL FROM');
    for (const to of o.to) await smtp.command(`RCPT TO:<${to}>`, '25', `RCPT TO ${to}`);
    await smtp.command('DATA', '354', 'DATA');
    const headers = [
      `From: ${o.from}`,
      `To: ${o.to.join(', ')}`,
      `Subject: ${subject.replace(/[\r\n]+/g, ' ')}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${randomUUID()}@${helo}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
    ];
    // Dot-stuffing: a line starting with "." gets another, so it cannot end the message.
    const body = text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await smtp.command(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.`, '250', 'message');
    await smtp.command('QUIT', '221', 'QUIT').catch(() => undefined);
  } catch (cause) {
    throw new HostKitError('NOTIFY_FAILED', `${name}: ${(cause as Error).message}`, { retryable: true });
  } finally {
    smtp.end();
  }
}
