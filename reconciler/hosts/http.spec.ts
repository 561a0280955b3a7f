import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHost } from './fake.js';
import { hostHttpRequest } from './http.js';
import { LocalHost } from './local.js';

async function listen<T extends net.Server>(server: T): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

describe('hostHttpRequest', () => {
  const seen: { host?: string; path?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ host: req.headers.host, path: req.url });
    if (req.url === '/big') {
      res.end('x'.repeat(200_000));
      return;
    }
    if (req.url === '/hang') return; // never answers
    res.writeHead(req.url === '/missing' ? 404 : 200, { 'x-generation': '7' }).end(`hello ${req.headers.host}`);
  });
  let port = 0;
  beforeAll(async () => {
    port = await listen(server);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('answers with status, headers and body, sending the Host header asked for', async () => {
    const res = await hostHttpRequest(new LocalHost(), { port, path: '/ok', hostHeader: 'app.example.test' });
    expect(res).toMatchObject({ status: 200, body: 'hello app.example.test' });
    expect(res.headers['x-generation']).toBe('7');
    expect(seen.at(-1)).toEqual({ host: 'app.example.test', path: '/ok' });
    expect((await hostHttpRequest(new LocalHost(), { port, path: '/missing' })).status).toBe(404);
  });

  it('cuts long bodies at the limit', async () => {
    const res = await hostHttpRequest(new LocalHost(), { port, path: '/big', maxBodyBytes: 1000 });
    expect(res.body).toHaveLength(1000);
  });

  it('fails with the address and reason when nothing listens or nothing answers in time', async () => {
    const closed = net.createServer();
    const free = await listen(closed);
    closed.close();
    await expect(hostHttpRequest(new LocalHost(), { port: free, path: '/' })).rejects.toMatchObject({
      code: 'HOST_HTTP_FAILED',
      message: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${free}/ on local: .*ECONNREFUSED`)),
    });
    await expect(hostHttpRequest(new LocalHost(), { port, path: '/hang', timeoutMs: 300 })).rejects.toMatchObject({
      message: expect.stringContaining('timed out after 300 ms'),
    });
  });

  it('gives up on a server that accepts the connection but never answers the TLS handshake', async () => {
    const silent = net.createServer(() => undefined);
    const silentPort = await listen(silent);
    try {
      await expect(hostHttpRequest(new LocalHost(), { port: silentPort, path: '/', tlsServerName: 'tls.example.test', timeoutMs: 300 })).rejects.toMatchObject({
        code: 'HOST_HTTP_FAILED',
        message: expect.stringContaining('timed out after 300 ms in the TLS handshake'),
      });
    } finally {
      silent.close();
    }
  });

  it('refuses to connect for a re-rooted local host, whose ports are not this machine’s', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'hk-http-'));
    await expect(new LocalHost({ root }).connect(port)).rejects.toMatchObject({ code: 'CONNECT_ON_REROOTED_HOST' });
  });

  it('goes through the fake host’s connect handler, and is refused without one', async () => {
    const fake = new FakeHost();
    await expect(hostHttpRequest(fake, { port: 8080, path: '/' })).rejects.toMatchObject({ message: expect.stringContaining('ECONNREFUSED') });
    fake.onConnect((p) => (p === 8080 ? new LocalHost().connect(port) : undefined));
    expect((await hostHttpRequest(fake, { port: 8080, path: '/x' })).status).toBe(200);
    expect(fake.connections).toEqual(['127.0.0.1:8080', '127.0.0.1:8080']);
  });

  it('speaks TLS with SNI and returns the served certificate', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hk-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=tls.example.test',
      ],
      {
        stdio: 'ignore',
      },
    );
    let servername: string | undefined;
    const secure = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => res.end('secure'));
    secure.on('secureConnection', (socket) => (servername = socket.servername || undefined));
    const tlsPort = await listen(secure);
    try {
      const res = await hostHttpRequest(new LocalHost(), { port: tlsPort, path: '/', tlsServerName: 'tls.example.test' });
      expect(res.body).toBe('secure');
      expect(res.certificate?.subject.CN).toBe('tls.example.test');
      expect(servername).toBe('tls.example.test');
    } finally {
      secure.close();
    }
  });
});
