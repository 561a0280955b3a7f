import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpDouble, throwawayCertificate, type Certificate, type SmtpDouble, type SmtpDoubleOptions } from '../../test/support/smtp-double.js';
import { parseAgentConfig } from '../agent/config.js';
import { silentLogger } from '../core/log.js';
import { Redactor } from '../core/secrets.js';
import { emailChannel, type SmtpOptions } from './channels.js';
import type { Notice } from './events.js';
import { setupNotifications } from './setup.js';

const PASSWORD = 'correct-horse-battery-staple';
const TOKEN = Buffer.from(`\0ops\0${PASSWORD}`).toString('base64');
const sample: Notice & { at: string; sender: string } = {
  kind: 'rolled-back',
  host: 'web-1',
  subject: 'web-1: apply failed',
  detail: '.hidden line',
  key: 'k',
  at: '2026-12-07T12:00:00Z',
  sender: 'web-1',
};

let cert: Certificate;
let stranger: Certificate;
const doubles: SmtpDouble[] = [];

beforeAll(async () => {
  [cert, stranger] = await Promise.all([throwawayCertificate(), throwawayCertificate()]);
});
afterEach(async () => {
  for (const d of doubles.splice(0)) await d.close();
});

async function double(o: SmtpDoubleOptions): Promise<SmtpDouble> {
  const d = await startSmtpDouble(o);
  doubles.push(d);
  return d;
}

const options = (d: SmtpDouble, o: Partial<SmtpOptions>): SmtpOptions => ({
  host: 'localhost',
  port: d.port,
  security: 'starttls',
  username: 'ops',
  password: PASSWORD,
  from: 'hostkit@example.test',
  to: ['a@example.test'],
  ...o,
});

const verbs = (d: SmtpDouble) => d.commands.map((c) => `${c.line.split(' ')[0]}${c.secure ? '+tls' : ''}`);

describe('reconciler/notify/smtp', () => {
  it.each([
    ['starttls', ['EHLO', 'STARTTLS', 'EHLO+tls', 'AUTH+tls', 'MAIL+tls', 'RCPT+tls', 'DATA+tls', 'QUIT+tls']],
    ['tls', ['EHLO+tls', 'AUTH+tls', 'MAIL+tls', 'RCPT+tls', 'DATA+tls', 'QUIT+tls']],
  ] as const)('delivers a notice over %s to a server whose CA it was told to trust; the password only ever travels over TLS', async (security, expected) => {
    const d = await double({ mode: security, certificate: cert });
    await emailChannel(options(d, { security, ca: cert.cert })).send(sample);
    expect(verbs(d)).toEqual(expected);
    expect(d.commands.find((c) => c.line.startsWith('AUTH'))!.line).toBe(`AUTH PLAIN ${TOKEN}`);
    expect(d.messages).toHaveLength(1);
    expect(d.messages[0]!.secure).toBe(true);
    expect(d.messages[0]!.text).toContain('Subject: [HostKit] web-1: apply failed\n');
    expect(d.messages[0]!.text).toContain('\n..hidden line\n');
  });

  it.each([
    [
      'starttls',
      'no tlsCaFile (the system CAs)',
      undefined,
      /the server's TLS certificate is not trusted by the system's CAs \(set tlsCaFile to the CA that signed it\): self[- ]signed certificate/,
    ],
    ['starttls', 'another CA in tlsCaFile', 'stranger', /the server's TLS certificate is not trusted by the CA in tlsCaFile: self[- ]signed certificate/],
    [
      'tls',
      'no tlsCaFile (the system CAs)',
      undefined,
      /the server's TLS certificate is not trusted by the system's CAs \(set tlsCaFile to the CA that signed it\): self[- ]signed certificate/,
    ],
    ['tls', 'another CA in tlsCaFile', 'stranger', /the server's TLS certificate is not trusted by the CA in tlsCaFile: self[- ]signed certificate/],
  ] as const)('over %s, refuses a certificate it does not trust (%s): a clear error, no credentials sent or shown', async (security, _what, ca, message) => {
    const d = await double({ mode: security, certificate: cert });
    const sent = emailChannel(options(d, { security, ...(ca ? { ca: stranger.cert } : {}) })).send(sample);
    await expect(sent).rejects.toThrow(message);
    const error = (await sent.catch((e: unknown) => e)) as Error;
    expect(String(error.message)).toMatch(new RegExp(`^email localhost:${d.port}: `));
    expect(JSON.stringify([error.message, String(error.cause)])).not.toMatch(new RegExp(`${PASSWORD}|${TOKEN}`));
    expect(verbs(d)).not.toContain('AUTH');
    expect(verbs(d)).not.toContain('AUTH+tls');
    expect(d.messages).toEqual([]);
  });

  it('refuses a certificate that names another host, even from the trusted CA', async () => {
    const d = await double({ mode: 'tls', certificate: cert });
    await expect(emailChannel(options(d, { host: '127.0.0.1', security: 'tls', ca: cert.cert })).send(sample)).rejects.toThrow(
      /^email 127\.0\.0\.1:\d+: the server's TLS certificate is not for 127\.0\.0\.1: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list: $/,
    );
    expect(d.commands).toEqual([]);
  });

  it.each([
    ['does not offer it', { hideStarttls: true }, /the server does not offer STARTTLS \(security: starttls\): refused to go on without TLS$/],
    ['names itself STARTTLS but offers no such extension', { hideStarttls: true, name: 'STARTTLS' }, /the server does not offer STARTTLS/],
    ['offers it but then refuses it', { mode: 'plain', name: 'x\r\n250-STARTTLS' }, /STARTTLS: 502 5\.5\.1 not here$/],
    [
      'smuggles a reply in ahead of the handshake',
      { afterStarttls: '250 AUTH PLAIN\r\n' },
      /the server sent data after its STARTTLS reply, before TLS began: refused$/,
    ],
  ] as const)('with starttls configured, a server that %s is refused, never used in clear text', async (_what, o, message) => {
    const d = await double({ mode: 'starttls', certificate: cert, ...o });
    await expect(emailChannel(options(d, { ca: cert.cert })).send(sample)).rejects.toThrow(message);
    expect(d.commands.filter((c) => !c.secure).map((c) => c.line.split(' ')[0])).not.toContain('AUTH');
    expect(d.commands.filter((c) => !c.secure).map((c) => c.line.split(' ')[0])).not.toContain('MAIL');
    expect(d.messages).toEqual([]);
  });

  it('reads a reply split across packets as one reply (a slow link), over plain SMTP and STARTTLS', async () => {
    const plain = await double({ mode: 'plain', split: true });
    await emailChannel(options(plain, { security: 'none' })).send(sample);
    expect(plain.messages).toHaveLength(1);
    const starttls = await double({ mode: 'starttls', certificate: cert, split: true });
    await emailChannel(options(starttls, { ca: cert.cert })).send(sample);
    expect(starttls.messages.map((m) => m.secure)).toEqual([true]);
  });

  it('fails at once, naming the step, when the server hangs up mid-conversation', async () => {
    const d = await double({ mode: 'plain', hangUpOn: 'MAIL' });
    const started = Date.now();
    await expect(emailChannel(options(d, { security: 'none' })).send(sample)).rejects.toThrow(/: MAIL FROM: 000 the server closed the connection$/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('sends a UTF-8 subject as an encoded word', async () => {
    const d = await double({ mode: 'plain' });
    await emailChannel(options(d, { security: 'none' })).send({ ...sample, subject: 'web-1: Zertifikat läuft ab' });
    expect(d.messages[0]!.text).toContain(`Subject: =?UTF-8?B?${Buffer.from('[HostKit] web-1: Zertifikat läuft ab').toString('base64')}?=\n`);
  });

  it('refuses, when the channel is set up, to send a password without TLS to another machine, and a CA with no TLS to use it', () => {
    const o = { host: 'smtp.example.com', port: 25, from: 'a@example.test', to: ['b@example.test'] };
    expect(() => emailChannel({ ...o, security: 'none', username: 'ops', password: PASSWORD })).toThrow(
      'email smtp.example.com:25: security none would send the SMTP password unencrypted to another machine; set security to starttls or tls',
    );
    expect(() => emailChannel({ ...o, security: 'none', ca: cert.cert })).toThrow('email smtp.example.com:25: tlsCaFile is set but security is none');
    expect(() => emailChannel({ ...o, host: '127.0.0.1', security: 'none', username: 'ops', password: PASSWORD })).not.toThrow();
    expect(() => emailChannel({ ...o, security: 'none' })).not.toThrow();
  });
});

describe('reconciler/notify/setup: email', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hk-notify-smtp-'));
    await writeFile(path.join(dir, 'ca.pem'), cert.cert);
    await writeFile(path.join(dir, 'password'), `${PASSWORD}\n`);
    await writeFile(path.join(dir, 'not-a-ca.pem'), 'hello\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(d: SmtpDouble, channel: Record<string, unknown>, log = silentLogger()) {
    return setupNotifications({
      config: {
        on: ['rolled-back'],
        certificateExpiryDays: 14,
        dedupeMs: 60_000,
        maxPerHour: 10,
        staleAfterMs: 3_600_000,
        channels: [
          {
            type: 'email',
            host: 'localhost',
            port: d.port,
            security: 'starttls',
            username: 'ops',
            passwordFile: path.join(dir, 'password'),
            from: 'hostkit@example.test',
            to: ['ops@example.test'],
            ...channel,
          } as never,
        ],
      },
      host: 'web-1',
      stateDirectory: dir,
      redactor: new Redactor(),
      log,
      backups: async () => [],
    });
  }

  it.each([
    ['tls', 'tlsCaFile: /etc/hostkit/smtp-ca.pem', { port: 465, security: 'tls', tlsCaFile: '/etc/hostkit/smtp-ca.pem' }],
    ['starttls', '', { port: 587, security: 'starttls' }],
    ['none', '', { port: 587, security: 'none' }],
  ] as const)('agent.yaml: with security %s the port defaults to the right one', async (security, extra, expected) => {
    const yaml = [
      'repository: { url: /srv/config.git }',
      'host: web-1',
      'notifications:',
      '  channels:',
      `    - { type: email, host: smtp.example.com, security: ${security}, from: a@example.test, to: [b@example.test]${extra ? `, ${extra}` : ''} }`,
      '',
    ].join('\n');
    const r = await parseAgentConfig('agent.yaml', Buffer.from(yaml));
    expect(r.ok ? r.config.notifications?.channels[0] : r.diagnostics).toMatchObject(expected);
  });

  it('agent.yaml: tlsCaFile must be an absolute path', async () => {
    const yaml =
      'repository: { url: /srv/config.git }\nhost: web-1\nnotifications:\n  channels:\n    - { type: email, host: h, from: a@b, to: [c@d], tlsCaFile: ca.pem }\n';
    const r = await parseAgentConfig('agent.yaml', Buffer.from(yaml));
    expect(r.ok).toBe(false);
    expect(r.ok || r.diagnostics.map((d) => d.location?.pointer ?? d.detail)).toContainEqual(expect.stringContaining('tlsCaFile'));
  });

  it('trusts the CA of tlsCaFile: a notice arrives over STARTTLS', async () => {
    const d = await double({ mode: 'starttls', certificate: cert });
    const n = await setup(d, { tlsCaFile: path.join(dir, 'ca.pem') });
    await n.notifier.notify([{ ...sample, key: 'trusted' }]);
    expect(d.messages.map((m) => m.secure)).toEqual([true]);
  });

  it('refuses to start with a tlsCaFile that is not a PEM certificate, naming the file', async () => {
    const d = await double({ mode: 'starttls', certificate: cert });
    await expect(setup(d, { tlsCaFile: path.join(dir, 'not-a-ca.pem') })).rejects.toThrow(
      `Could not read the SMTP CA certificate from ${path.join(dir, 'not-a-ca.pem')}: no PEM certificate in it`,
    );
    await expect(setup(d, { tlsCaFile: path.join(dir, 'absent.pem') })).rejects.toThrow(/^Could not read the SMTP CA certificate from .*absent\.pem: ENOENT/);
  });

  it('never puts the password or the AUTH token in an error or a log line, even when the server echoes them', async () => {
    const d = await double({ mode: 'starttls', certificate: cert, authReply: (line) => `535-5.7.8 no such user: ${line}\r\n535 5.7.8 ${line}\r\n` });
    const lines: string[] = [];
    // A logger without the agent's redactor: what reaches it must be clean already.
    const n = await setup(d, { tlsCaFile: path.join(dir, 'ca.pem') }, pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) }));
    await n.notifier.notify([{ ...sample, key: 'refused' }]);
    expect(d.commands.some((c) => c.line === `AUTH PLAIN ${TOKEN}` && c.secure)).toBe(true);
    const logged = lines.join('');
    expect(logged).toContain('AUTH PLAIN refused (535 5.7.8): check username and passwordFile');
    expect(logged).not.toContain(PASSWORD);
    expect(logged).not.toContain(TOKEN);
    expect(d.messages).toEqual([]);
  });
});
