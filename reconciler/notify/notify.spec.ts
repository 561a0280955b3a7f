import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startSmtpDouble } from '../../test/support/smtp-double.js';
import { silentLogger } from '../core/log.js';
import { Redactor } from '../core/secrets.js';
import type { HostReport } from '../report/status.js';
import { emailChannel, slackChannel, webhookChannel, type Channel } from './channels.js';
import { backupNotices, NOTICE_KINDS, reportNotices, staleNotices, type Notice } from './events.js';
import { Notifier, type NotifierOptions } from './notifier.js';
import { watcherOf } from './setup.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const C = 'c'.repeat(40);

function report(o: Partial<HostReport> = {}): HostReport {
  return {
    host: 'web-1',
    commit: C,
    result: 'applied',
    summary: '1 change(s) applied',
    trigger: [],
    startedAt: '2026-12-07T11:59:00Z',
    finishedAt: '2026-12-07T11:59:01Z',
    timings: { totalMs: 1000 },
    resources: [],
    diagnostics: [],
    ...o,
  };
}

const kinds = (r: HostReport) => reportNotices(r, { now: NOW, certificateExpiryDays: 14 }).map((n) => n.kind);
const drift = (o: Partial<NonNullable<HostReport['drift']>>): HostReport['drift'] => ({
  checkedAt: '2026-12-07T11:00:00Z',
  commit: C,
  policy: 'report',
  resources: [],
  healed: [],
  renewed: [],
  held: [],
  backingOff: [],
  ...o,
});

describe('reconciler/notify/events', () => {
  it.each([
    ['an applied run', report(), []],
    ['a rolled-back run', report({ result: 'rolled-back', failed: { id: 'file/x', error: 'boom' } }), ['rolled-back']],
    ['a quarantined commit', report({ result: 'held' }), ['quarantined']],
    ['invalid manifests', report({ result: 'invalid' }), ['failed']],
    ['a paused project', report({ summary: '1 change(s) applied; held back for paused project(s): shop' }), ['paused']],
    [
      'a paused rollout',
      report({ rollout: { held: { commit: C, state: 'paused', wave: 1, reason: 'rollout paused', since: '2026-12-07T11:00:00Z' } } }),
      ['paused'],
    ],
    ['drift by hand', report({ drift: drift({ resources: [{ id: 'file/x', action: 'update', fields: [] }] }) }), ['drift']],
    ['only a renewal owed by time', report({ drift: drift({ resources: [{ id: 'certificate/a', action: 'update', fields: [], owedBy: 'time' }] }) }), []],
    ['a refused renewal', report({ drift: drift({ warnings: ['certificate renewal refused by the CA: rate limited'] }) }), ['certificate-renewal-failed']],
    ['a certificate 3 days from expiry', report({ certificates: [{ id: 'certificate/a', notAfter: '2026-12-10T12:00:00Z' }] }), ['certificate-expiring']],
    ['a certificate 60 days from expiry', report({ certificates: [{ id: 'certificate/a', notAfter: '2027-02-05T12:00:00Z' }] }), []],
  ] as const)('%s', (_t, r, expected) => {
    expect(kinds(r as HostReport)).toEqual(expected);
  });

  it('names the failing backup part once per failed record', () => {
    const notices = backupNotices('db-1', [
      {
        project: 'shop',
        records: [
          { part: 'database', at: '2026-12-07T01:00:00Z', ok: false, seconds: 1, error: 'pg_dump: connection refused', trigger: 'scheduled' },
          { part: 'files', at: '2026-12-07T01:00:00Z', ok: false, seconds: 1, trigger: 'scheduled' },
          { part: 'files', at: '2026-12-07T02:00:00Z', ok: true, seconds: 1, trigger: 'scheduled' },
        ],
      },
    ]);
    expect(notices.map((n) => [n.kind, n.subject])).toEqual([['backup-failed', 'db-1: backup of shop (database) failed at 2026-12-07T01:00:00Z']]);
  });

  it.each([
    ['web-2', ['web-1', 'web-3'], 'web-3'],
    ['web-9', ['web-1', 'web-3'], 'web-1'],
    ['web-1', [], undefined],
  ] as const)('a stale %s is told about by one live host of %j: %s', (stale, live, expected) => {
    expect(watcherOf(stale, live)).toBe(expected);
  });

  it('says which host went quiet', () => {
    expect(staleNotices([{ host: 'web-9', lastReport: '2026-12-07T01:00:00Z' }])[0]!.subject).toBe(
      'web-9: no report since 2026-12-07T01:00:00Z: its agent may be down',
    );
  });
});

function recording(): Channel & { got: (Notice & { at: string; sender: string })[] } {
  const got: (Notice & { at: string; sender: string })[] = [];
  return { name: 'recording', got, send: async (n) => void got.push(n) };
}

/** A notifier for web-1 sending every kind, with a fresh redactor and no log unless told otherwise. */
function notifier(o: Partial<NotifierOptions> & Pick<NotifierOptions, 'channels' | 'dedupeMs' | 'maxPerHour'>): Notifier {
  return new Notifier({ sender: 'web-1', on: new Set(NOTICE_KINDS), redactor: new Redactor(), log: silentLogger(), ...o });
}

describe('reconciler/notify/notifier', () => {
  const notice = (key: string, detail?: string): Notice => ({ kind: 'drift', host: 'web-1', subject: `drift ${key}`, key, ...(detail ? { detail } : {}) });

  it('sends a key once per dedupe window, at most maxPerHour an hour, and counts what it dropped', async () => {
    let now = NOW;
    const channel = recording();
    const n = notifier({ channels: [channel], dedupeMs: 3_600_000, maxPerHour: 3, now: () => now });
    await n.notify([notice('a'), notice('a'), notice('b')]);
    await n.notify([notice('a')]);
    expect(channel.got.map((g) => g.key)).toEqual(['a', 'b']);
    await n.notify([notice('c'), notice('d'), notice('e')]); // c fills the hour; d and e are dropped
    expect(channel.got.map((g) => g.key)).toEqual(['a', 'b', 'c']);
    now += 3_600_001;
    await n.notify([notice('a'), notice('f')]);
    expect(channel.got.map((g) => g.key)).toEqual(['a', 'b', 'c', 'a', 'f']);
    expect(channel.got[3]!.detail).toBe('(2 notice(s) dropped by the rate limit before this one: 2 drift)');
  });

  it('counts a dropped notice once however often it comes back, by kind, and not once it went out after all', async () => {
    let now = NOW;
    const channel = recording();
    const n = notifier({ channels: [channel], dedupeMs: 86_400_000, maxPerHour: 1, now: () => now });
    const stale: Notice = { kind: 'stale', host: 'web-9', subject: 'web-9 quiet', key: 'stale/web-9' };
    await n.notify([notice('a')]);
    for (let check = 0; check < 12; check++) {
      now += 300_000; // a drift check every 5 minutes brings the same notices back
      await n.notify([notice('b'), notice('c'), stale]);
    }
    now += 3_600_000;
    await n.notify([notice('b')]);
    expect(channel.got.map((g) => [g.key, g.detail ?? ''])).toEqual([
      ['a', ''],
      ['b', '(2 notice(s) dropped by the rate limit before this one: 1 drift, 1 stale)'],
    ]);
  });

  it('remembers what it sent across restarts, even when the first two calls overlap (a report and the timer at start)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-notices-'));
    const stateFile = path.join(dir, 'web-1-notices.json');
    await writeFile(stateFile, JSON.stringify({ sent: { a: NOW - 60_000 } }));
    const channel = recording();
    const n = notifier({ channels: [channel], dedupeMs: 3_600_000, maxPerHour: 10, stateFile, now: () => NOW });
    await Promise.all([n.notify([notice('b')]), n.notify([notice('a')]), n.notify([notice('c')])]);
    expect(channel.got.map((g) => g.key)).toEqual(['b', 'c']);
    expect(Object.keys((JSON.parse(await readFile(stateFile, 'utf8')) as { sent: object }).sent).sort()).toEqual(['a', 'b', 'c']);
    await rm(dir, { recursive: true, force: true });
  });

  it('sends only the kinds asked for, and redacts secret values', async () => {
    const channel = recording();
    const redactor = new Redactor();
    redactor.add('hunter2-secret-token');
    const n = notifier({ channels: [channel], on: new Set(['drift'] as const), dedupeMs: 1, maxPerHour: 10, redactor });
    await n.notify([{ kind: 'failed', host: 'web-1', subject: 'x', key: 'f' }, notice('k', 'password=hunter2-secret-token')]);
    expect(channel.got).toHaveLength(1);
    expect(channel.got[0]!.detail).not.toContain('hunter2');
  });
});

describe('reconciler/notify/channels', () => {
  const servers: { close: () => void }[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function httpDouble(): Promise<{ url: string; got: { headers: http.IncomingHttpHeaders; body: string }[] }> {
    const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/T000/SECRETPATH`, got };
  }

  const sample = {
    kind: 'rolled-back' as const,
    host: 'web-1',
    subject: 'web-1: apply failed',
    detail: 'file/x: boom',
    key: 'k',
    at: '2026-12-07T12:00:00Z',
    sender: 'web-1',
  };

  it('signs the generic webhook body with HMAC-SHA256', async () => {
    const double = await httpDouble();
    await webhookChannel(double.url, Buffer.from('s3cret')).send(sample);
    const [req] = double.got;
    expect(req!.headers['x-hostkit-signature']).toBe(`sha256=${createHmac('sha256', 's3cret').update(req!.body).digest('hex')}`);
    expect(JSON.parse(req!.body)).toMatchObject({ kind: 'rolled-back', host: 'web-1', subject: 'web-1: apply failed', detail: 'file/x: boom' });
  });

  it('posts {"text": ...} to a Slack-compatible webhook, and never names its secret path', async () => {
    const double = await httpDouble();
    const slack = slackChannel(double.url);
    await slack.send(sample);
    expect(JSON.parse(double.got[0]!.body)).toEqual({ text: '*HostKit* web-1: apply failed\n```file/x: boom```' });
    expect(slack.name).not.toContain('SECRETPATH');
  });

  it('speaks SMTP to a loopback double: AUTH PLAIN, one message, dot-stuffed', async () => {
    const double = await startSmtpDouble({ mode: 'plain' });
    servers.push({ close: () => void double.close() });
    await emailChannel({
      host: '127.0.0.1',
      port: double.port,
      security: 'none',
      username: 'ops',
      password: 'pw',
      from: 'hostkit@example.test',
      to: ['a@example.test', 'b@example.test'],
    }).send({
      ...sample,
      detail: '.hidden line',
    });
    const lines = double.commands.map((c) => c.line);
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['EHLO', 'AUTH', 'MAIL', 'RCPT', 'RCPT', 'DATA', 'QUIT']);
    expect(lines[1]).toBe(`AUTH PLAIN ${Buffer.from('\0ops\0pw').toString('base64')}`);
    expect(double.messages[0]!.text).toContain('Subject: [HostKit] web-1: apply failed\n');
    expect(double.messages[0]!.text).toContain('\n..hidden line\n');
  });

  it('posts Slack text with &, < and > escaped, so a message cannot ping <!channel> or make a link', async () => {
    const double = await httpDouble();
    await slackChannel(double.url).send({ ...sample, subject: 'web-1: <!channel> a & b', detail: 'got <html> from <https://x|y>' });
    expect(JSON.parse(double.got[0]!.body)).toEqual({
      text: '*HostKit* web-1: &lt;!channel&gt; a &amp; b\n```got &lt;html&gt; from &lt;https://x|y&gt;```',
    });
  });

  it('redacts secret values in every channel: the webhook body, the Slack text, the email subject and body', async () => {
    const SECRET = 'hunter2-secret-token';
    const webhook = await httpDouble();
    const slack = await httpDouble();
    const smtp = await startSmtpDouble({ mode: 'plain' });
    servers.push({ close: () => void smtp.close() });
    const redactor = new Redactor();
    redactor.add(SECRET);
    const n = notifier({
      channels: [
        webhookChannel(webhook.url, Buffer.from('s3cret')),
        slackChannel(slack.url),
        emailChannel({ host: '127.0.0.1', port: smtp.port, security: 'none', from: 'hostkit@example.test', to: ['ops@example.test'] }),
      ],
      dedupeMs: 60_000,
      maxPerHour: 10,
      redactor,
    });
    await n.notify([
      { kind: 'failed', host: 'web-1', subject: `web-1: DATABASE_URL=postgres://app:${SECRET}@db`, detail: `env: PASSWORD=${SECRET}`, key: `failed/${SECRET}` },
    ]);
    const seen = { webhook: webhook.got[0]!.body, slack: slack.got[0]!.body, email: smtp.messages[0]!.text };
    for (const [channel, text] of Object.entries(seen)) {
      expect(text, channel).not.toContain(SECRET);
      expect(text, channel).toContain('DATABASE_URL=postgres://app:(redacted)@db');
      expect(text, channel).toContain('PASSWORD=(redacted)');
    }
    expect(seen.email).toContain('Subject: [HostKit] web-1: DATABASE_URL=postgres://app:(redacted)@db\n');
    expect(JSON.parse(seen.webhook)).toMatchObject({ key: 'failed/(redacted)' });
  });

  it("the README's signature check accepts what the webhook channel signs, and nothing else", async () => {
    const readme = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
    const at = readme.indexOf('**Verifying the webhook.**');
    const code = /```js\n([\s\S]*?)\n```/.exec(readme.slice(at))![1]!;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-verify-'));
    await writeFile(path.join(dir, 'verify.mjs'), code);
    const { verifyHostKitSignature: verify } = (await import(pathToFileURL(path.join(dir, 'verify.mjs')).href)) as {
      verifyHostKitSignature: (body: string | Buffer, header: unknown, secret: string) => boolean;
    };
    await rm(dir, { recursive: true, force: true });
    const double = await httpDouble();
    await webhookChannel(double.url, Buffer.from('s3cret')).send(sample);
    const { headers, body } = double.got[0]!;
    expect(headers['x-hostkit-event']).toBe('notice');
    expect(headers['x-hostkit-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(verify(Buffer.from(body), headers['x-hostkit-signature'], 's3cret')).toBe(true);
    expect(verify(body.replace('apply failed', 'all is well'), headers['x-hostkit-signature'], 's3cret')).toBe(false);
    expect(verify(body, headers['x-hostkit-signature'], 'another')).toBe(false);
    expect(verify(body, undefined, 's3cret')).toBe(false);
  });

  it('names the channel and the answer when a webhook refuses', async () => {
    const server = http.createServer((_req, res) => res.writeHead(403).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/SECRET`;
    await expect(slackChannel(url).send(sample)).rejects.toThrow(/^slack http:\/\/127\.0\.0\.1:\d+: answered 403$/);
  });
});
