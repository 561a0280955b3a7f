// Email over SMTP (RFC 5321) for notices: plain (a relay on this machine),
// STARTTLS (RFC 3207) or TLS from the first byte (RFC 8314), AUTH PLAIN when a
// user is set. TLS is never given up: a server that does not offer STARTTLS,
// or smuggles data in ahead of the handshake, is refused, and the certificate
// is checked against the system's CAs or the one CA the operator names.
// Errors name the server and what failed, never the credentials.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { HostKitError } from '../core/errors.js';

export interface SmtpOptions {
  host: string;
  port: number;
  /** none: plain SMTP (a relay on this machine); starttls: upgrade after EHLO; tls: TLS from the start (465). */
  security: 'none' | 'starttls' | 'tls';
  username?: string;
  password?: string;
  from: string;
  to: string[];
  /** PEM: the CA certificate(s) the server's certificate must chain to, instead of the system's (`tlsCaFile`). */
  ca?: string;
}

export interface SmtpMessage {
  subject: string;
  text: string;
}

const TIMEOUT_MS = 10_000;

/** Whether a connection to `host` stays on this machine (the only place a password may travel without TLS). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Options that cannot work, refused when the channel is set up rather than at the first notice. */
export function checkSmtpOptions(o: SmtpOptions): void {
  const name = `email ${o.host}:${o.port}`;
  if (o.security === 'none' && o.username !== undefined && !isLoopback(o.host)) {
    throw new Error(`${name}: security none would send the SMTP password unencrypted to another machine; set security to starttls or tls`);
  }
  if (o.security === 'none' && o.ca !== undefined) throw new Error(`${name}: tlsCaFile is set but security is none: set security to starttls or tls`);
}

// Node's codes for a certificate chain it could not verify.
const UNTRUSTED =
  /^(?:DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_UNTRUSTED|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_SIGNATURE_FAILURE|CERT_REJECTED)$/;

/** A TLS failure as the operator acts on it: an untrusted certificate names the option that fixes it. */
function tlsFailure(cause: Error, o: SmtpOptions): Error {
  const code = (cause as NodeJS.ErrnoException).code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new Error(`the server's TLS certificate is not for ${o.host}: ${cause.message}`, { cause });
  if (!UNTRUSTED.test(code)) return cause;
  const ca = o.ca !== undefined;
  const trust = ca ? 'the CA in tlsCaFile' : "the system's CAs (set tlsCaFile to the CA that signed it)";
  return new Error(`the server's TLS certificate is not trusted by ${trust}: ${cause.message}`, { cause });
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
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timed out')));
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.flush();
    });
    socket.on('error', (e) => {
      this.failure = e;
      this.flush();
    });
    // A server that hangs up without a word would otherwise leave the reply pending for ever.
    socket.on('close', () => {
      this.failure ??= new Error('the server closed the connection');
      this.flush();
    });
  }

  // A full reply ends with a complete line "250 ok" (a space after the code), after any "250-..." lines;
  // the text after the last CRLF may be the start of a line still on its way, so it never counts.
  private flush(): void {
    if (!this.waiting) return;
    const lines = this.buffer.split('\r\n').slice(0, -1);
    const last = lines.findIndex((l) => /^\d{3}(?: |$)/.test(l));
    if (last >= 0) {
      const reply = lines.slice(0, last + 1).join('\n');
      this.buffer = this.buffer
        .split('\r\n')
        .slice(last + 1)
        .join('\r\n');
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

  /** Send `line` (undefined: only read, as for the greeting) and read the reply, whatever it is. */
  exchange(line: string | undefined): Promise<string> {
    if (line !== undefined) this.socket.write(line + '\r\n');
    return this.reply();
  }

  /** `exchange`, and a reply that does not start with `expect` throws, named by `what` (never by the line sent). */
  async command(line: string | undefined, expect: string, what: string): Promise<string> {
    const reply = await this.exchange(line);
    if (!reply.startsWith(expect)) throw new Error(`${what}: ${reply.split('\n').at(-1)}`);
    return reply;
  }

  // Anything the server sent after its 220 and before the handshake would be read as if it came over TLS.
  async upgrade(o: SmtpOptions): Promise<void> {
    if (this.buffer !== '') throw new Error('the server sent data after its STARTTLS reply, before TLS began: refused');
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.setTimeout(0);
    const secure = tls.connect({ socket: plain, ...tlsTarget(o) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', (e) => reject(tlsFailure(e, o)));
    });
    this.socket = secure;
    this.attach(secure);
  }

  end(): void {
    this.socket.end();
  }
}

// Who the certificate must name: the configured host (an IP address is checked against the certificate's IP names, and sent as no SNI).
function tlsTarget(o: SmtpOptions): tls.ConnectionOptions {
  return { host: o.host, ...(net.isIP(o.host) ? {} : { servername: o.host }), ...(o.ca !== undefined ? { ca: o.ca } : {}), rejectUnauthorized: true };
}

// A subject in UTF-8 as an RFC 2047 encoded word (ASCII stays as it is, which every reader shows).
function subjectHeader(subject: string): string {
  const flat = subject.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(flat) ? flat : `=?UTF-8?B?${Buffer.from(flat, 'utf8').toString('base64')}?=`;
}

/** One message to every recipient; throws NOTIFY_FAILED naming the server and the step that failed. */
export async function smtpSend(name: string, o: SmtpOptions, message: SmtpMessage): Promise<void> {
  const socket = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
    const s =
      o.security === 'tls' ? tls.connect({ port: o.port, ...tlsTarget(o) }, () => resolve(s)) : net.connect({ host: o.host, port: o.port }, () => resolve(s));
    s.setTimeout(TIMEOUT_MS, () => s.destroy(new Error('timed out')));
    s.once('error', reject);
  }).catch((cause: Error) => {
    const failure = tlsFailure(cause, o);
    throw new HostKitError('NOTIFY_FAILED', `${name}: ${failure === cause ? `cannot connect (${cause.message})` : failure.message}`, { cause });
  });
  const smtp = new SmtpConversation(socket);
  const helo = os.hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  try {
    await smtp.command(undefined, '220', 'greeting');
    const ehlo = await smtp.command(`EHLO ${helo}`, '250', 'EHLO');
    if (o.security === 'starttls') {
      // An extension is a line of its own after the first ("250-STARTTLS"), not a word anywhere in the reply.
      const offered = ehlo
        .split('\n')
        .slice(1)
        .some((l) => /^250[ -]STARTTLS\s*$/i.test(l));
      if (!offered) throw new Error('the server does not offer STARTTLS (security: starttls): refused to go on without TLS');
      await smtp.command('STARTTLS', '220', 'STARTTLS');
      await smtp.upgrade(o);
      await smtp.command(`EHLO ${helo}`, '250', 'EHLO');
    }
    if (o.username !== undefined) {
      const token = Buffer.from(`\0${o.username}\0${o.password ?? ''}`).toString('base64');
      // Only the reply's codes are quoted: some servers echo the command, and with it the credentials.
      const answer = await smtp.exchange(`AUTH PLAIN ${token}`);
      const codes = /^\d{3}(?: \d\.\d{1,3}\.\d{1,3})?/.exec(answer.split('\n').at(-1)!)?.[0] ?? 'no reply';
      if (!answer.startsWith('235')) throw new Error(`AUTH PLAIN refused (${codes}): check username and passwordFile`);
    }
    await smtp.command(`MAIL FROM:<${o.from}>`, '250', 'MAIL FROM');
    for (const to of o.to) await smtp.command(`RCPT TO:<${to}>`, '25', `RCPT TO ${to}`);
    await smtp.command('DATA', '354', 'DATA');
    const headers = [
      `From: ${o.from}`,
      `To: ${o.to.join(', ')}`,
      `Subject: ${subjectHeader(message.subject)}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${randomUUID()}@${helo}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
    ];
    // Dot-stuffing: a line starting with "." gets another, so it cannot end the message.
    const body = message.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await smtp.command(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.`, '250', 'message');
    await smtp.command('QUIT', '221', 'QUIT').catch(() => undefined);
  } catch (cause) {
    throw new HostKitError('NOTIFY_FAILED', `${name}: ${(cause as Error).message}`, { cause });
  } finally {
    smtp.end();
  }
}
