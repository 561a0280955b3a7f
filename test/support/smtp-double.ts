// An SMTP server in miniature on loopback, for the notifier's email channel: it
// speaks plain SMTP, STARTTLS (RFC 3207) or TLS from the first byte, with a
// throwaway certificate made by openssl at test time, and records every
// command with whether it came over TLS. It can misbehave the ways real links
// and servers do: replies split across packets, no STARTTLS on offer, data
// smuggled after STARTTLS's 220, an AUTH reply that echoes the credentials.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execa } from 'execa';
import { selfSignedArgs } from '../../reconciler/drivers/certificate/selfsigned.js';

export interface Certificate {
  /** PEM: both the server's certificate and the CA a client is told to trust (self-signed). */
  cert: string;
  key: string;
}

/** A throwaway self-signed certificate for `localhost` (openssl, in a temporary directory it removes). */
export async function throwawayCertificate(): Promise<Certificate> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-smtp-cert-'));
  try {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    await execa('openssl', selfSignedArgs(key, cert, ['localhost'], 'self-signed'));
    return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface SmtpDoubleOptions {
  /** plain: no TLS at all; starttls: TLS after the STARTTLS command; tls: TLS from the first byte. */
  mode: 'plain' | 'starttls' | 'tls';
  certificate?: Certificate;
  /** In starttls mode, leave STARTTLS out of the EHLO reply (as a downgrading man in the middle would). */
  hideStarttls?: boolean;
  /** Write this in clear text right after STARTTLS's 220, in the same packet (CVE-2011-0411's server side). */
  afterStarttls?: string;
  /** Send each reply in two packets, 30 ms apart, split just after the last line's code. */
  split?: boolean;
  /** The answer to AUTH (default `235 2.7.0 accepted`). */
  authReply?: (line: string) => string;
  /** The EHLO reply's first line names the server: `250-NAME` (default `double`). */
  name?: string;
  /** Close the connection without a word when this command arrives (a server that dies mid-conversation). */
  hangUpOn?: string;
}

export interface SmtpCommand {
  line: string;
  /** The command came over TLS. */
  secure: boolean;
}

export interface SmtpDouble {
  port: number;
  commands: SmtpCommand[];
  /** Each message as received after DATA (dot-stuffing kept), and whether it came over TLS. */
  messages: { text: string; secure: boolean }[];
  /** Errors the server's sockets saw (a client that refused the certificate fails the handshake). */
  socketErrors: string[];
  close(): Promise<void>;
}

export async function startSmtpDouble(o: SmtpDoubleOptions): Promise<SmtpDouble> {
  const commands: SmtpCommand[] = [];
  const messages: { text: string; secure: boolean }[] = [];
  const socketErrors: string[] = [];
  const sockets = new Set<net.Socket>();
  const secureContext = o.certificate ? { cert: o.certificate.cert, key: o.certificate.key } : undefined;

  const serve = (socket: net.Socket, secure: boolean, greet: boolean) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', (e) => socketErrors.push(e.message));
    const reply = (text: string) => {
      if (!o.split) return void socket.write(text);
      // Just after the last line's three-digit code: "250-a\r\n250" then " ok\r\n".
      const start = text.lastIndexOf('\r\n', text.length - 3);
      const at = (start < 0 ? 0 : start + 2) + 3;
      socket.write(text.slice(0, at));
      setTimeout(() => socket.writable && socket.write(text.slice(at)), 30);
    };
    if (greet) reply('220 double ESMTP\r\n');
    let buffer = '';
    let data: string | undefined;
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (data !== undefined) {
          if (line === '.') {
            messages.push({ text: data, secure });
            data = undefined;
            reply('250 2.0.0 queued\r\n');
          } else data += line + '\n';
          continue;
        }
        commands.push({ line, secure });
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === o.hangUpOn) return void socket.destroy();
        if (verb === 'EHLO') {
          const starttls = o.mode === 'starttls' && !secure && !o.hideStarttls;
          reply(`250-${o.name ?? 'double'}\r\n${starttls ? '250-STARTTLS\r\n' : ''}250 AUTH PLAIN\r\n`);
        } else if (verb === 'STARTTLS') {
          if (o.mode !== 'starttls' || secure || !secureContext) {
            reply('502 5.5.1 not here\r\n');
            continue;
          }
          socket.off('data', onData);
          socket.write(`220 2.0.0 go ahead\r\n${o.afterStarttls ?? ''}`);
          const upgraded = new tls.TLSSocket(socket, { isServer: true, ...secureContext });
          upgraded.on('error', (e) => socketErrors.push(e.message));
          upgraded.once('secure', () => serve(upgraded, true, false));
          return;
        } else if (verb === 'AUTH') reply(o.authReply ? o.authReply(line) : '235 2.7.0 accepted\r\n');
        else if (verb === 'DATA') {
          data = '';
          reply('354 go on\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 2.0.0 bye\r\n');
          return;
        } else reply('250 2.1.0 ok\r\n');
      }
    };
    socket.on('data', onData);
  };

  let server: net.Server;
  if (o.mode === 'tls') {
    if (!secureContext) throw new Error('the tls mode needs a certificate');
    server = tls.createServer(secureContext, (socket) => serve(socket, true, true));
    server.on('tlsClientError', (e) => socketErrors.push(e.message));
  } else {
    server = net.createServer((socket) => serve(socket, false, true));
  }
  server.on('connection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    commands,
    messages,
    socketErrors,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
