// Release sources on a real booted host: a git repository under /srv (file://)
// fetched into the project's cache as its user, a delta for a new commit, an
// export; canary credentials that never show in `ps` or in errors; archives
// checked by digest and by entries before anything is written.
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../reconciler/core/log.js';
import {
  cachedCommit,
  commitSubjects,
  exportCommit,
  fetchCommit,
  resolveRefs,
  unpackArchive,
  type SourceAccess,
} from '../../reconciler/drivers/release/source/index.js';
import { tarOf } from '../support/archives.js';
import { describeHost, useHost, type TestHost } from './harness.js';

const TOKEN = 'hk-canary-token-8d41c7e2';
const KEY_LINE = 'hkcanarykeyAAAAC3NzaC1lZDI1NTE5AAAAIcanary';
const SSH_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\n${KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n`;
const REPO = '/srv/app.git';
const root = { uid: 0, gid: 0, mode: 0o755 };

// `ps -eo args` every 100 ms while `work` runs: every command line the host showed meanwhile.
async function psDuring<T>(m: TestHost, work: () => Promise<T>): Promise<{ result: T | Error; lines: Set<string> }> {
  const lines = new Set<string>();
  let done = false;
  const watcher = (async () => {
    while (!done) {
      for (const l of (await m.host.exec('ps', ['-eo', 'args'])).stdout.split('\n')) lines.add(l);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const result = await work().catch((e: unknown) => e as Error);
  done = true;
  await watcher;
  return { result, lines };
}

// A Python server (its lines) started on the test host's loopback as a transient unit; resolves once `port` answers.
async function serve(m: TestHost, unit: string, port: number, lines: readonly string[]): Promise<void> {
  await m.host.writeFile(`/root/${unit}.py`, [...lines, ''].join('\n'), { ...root, mode: 0o600 });
  await m.exec('systemd-run', [`--unit=${unit}`, '--collect', '/usr/bin/python3', `/root/${unit}.py`]);
  await m.exec('bash', ['-c', `for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && exit 0; sleep 0.1; done; exit 1`]);
}

describeHost('release sources on a real host', () => {
  const machine = useHost();
  let c1: string;
  let c2: string;
  const access = (extra: Partial<SourceAccess> = {}): SourceAccess => ({
    host: machine().host,
    project: 'app',
    user: 'app',
    stateDirectory: '/var/lib/hostkit',
    allowedRoots: ['/srv'],
    log: silentLogger(),
    ...extra,
  });
  const git = (args: string[]) => machine().exec('git', ['-C', REPO, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  const count = async (p: string) => {
    const out = (await machine().exec('git', ['-c', 'safe.directory=*', '-C', p, 'count-objects', '-v'])).stdout;
    return Number(/^count: (\d+)/m.exec(out)![1]) + Number(/^in-pack: (\d+)/m.exec(out)![1]);
  };

  beforeAll(async () => {
    const m = machine();
    await m.exec('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'app']);
    await m.exec('mkdir', ['-p', `${REPO}/app`]);
    await m.exec('git', ['init', '-q', '-b', 'main', REPO]);
    for (let i = 0; i < 30; i++) await m.host.writeFile(`${REPO}/app/f${i}.py`, `print(${i})\n`, { ...root, mode: 0o644 });
    await git(['add', '.']);
    await git(['commit', '-q', '-m', 'v1: the app']);
    await git(['tag', '-a', '-m', 'first release', 'v1']);
    c1 = (await git(['rev-parse', 'HEAD'])).stdout.trim();
    await m.host.writeFile(`${REPO}/app/f0.py`, 'print("v2")\n', { ...root, mode: 0o644 });
    await git(['commit', '-q', '-am', 'v2: a new greeting']);
    c2 = (await git(['rev-parse', 'HEAD'])).stdout.trim();
    await git(['checkout', '-q', c1]);
    await m.exec('mkdir', ['-p', '/srv/archives', '/srv/releases']);
  });

  it('resolves a branch, a tag and a commit; fetches as the user, a new commit as a delta; exports; lists subjects', async () => {
    const m = machine();
    const url = `file://${REPO}`;
    const resolved = await resolveRefs([
      { access: access(), source: { url, ref: 'main' } },
      { access: access({ project: 'tagged' }), source: { url, ref: 'v1' } },
      { access: access({ project: 'pinned' }), source: { url, ref: c1 } },
    ]);
    expect(Object.fromEntries([...resolved].map(([p, r]) => [p, 'commit' in r ? r.commit : r.error.message]))).toEqual({ app: c2, tagged: c1, pinned: c1 });

    await fetchCommit(access(), { url, ref: 'v1' }, c1);
    const cache = '/var/lib/hostkit/sources/app';
    expect((await m.exec('stat', ['-c', '%U %a', cache])).stdout.trim()).toBe('app 700');
    expect((await m.exec('find', [cache, '-not', '-user', 'app'])).stdout.trim()).toBe('');
    const before = await count(cache);
    await fetchCommit(access(), { url, ref: 'main' }, c2);
    const delta = Number((await m.exec('sh', ['-c', `git -C ${REPO} rev-list --objects ${c1}..${c2} | wc -l`])).stdout.trim());
    expect(delta).toBe(4); // the commit, two trees, one file
    expect((await count(cache)) - before).toBe(delta);
    expect(await cachedCommit(access(), { url, ref: 'main' })).toBe(c2);
    expect(await commitSubjects(access(), c1, c2)).toEqual(['v2: a new greeting']);

    await exportCommit(access(), { url, ref: 'main', subdirectory: 'app' }, c2, '/srv/releases/r2');
    expect((await m.exec('cat', ['/srv/releases/r2/f0.py'])).stdout).toBe('print("v2")\n');
    expect((await m.exec('sh', ['-c', 'ls /srv/releases/r2 | wc -l'])).stdout.trim()).toBe('30');
    expect((await m.exec('find', ['/srv/releases/r2', '-not', '-user', 'app'])).stdout.trim()).toBe('');
  });

  it('a token reaches the server through the credential helper, never in ps or in the error', async () => {
    const m = machine();
    // A slow server on the host's loopback: every request waits 1.5 s, then 401; it notes each Authorization header.
    await serve(m, 'hk-slow-git', 8418, [
      'import http.server, time',
      'class H(http.server.BaseHTTPRequestHandler):',
      '    def do_GET(self):',
      '        open("/root/auth.log", "a").write(self.headers.get("Authorization", "-") + "\\n")',
      '        time.sleep(1.5)',
      '        self.send_response(401)',
      '        self.send_header("WWW-Authenticate", "Basic realm=git")',
      '        self.end_headers()',
      '    def log_message(self, *a): pass',
      'http.server.HTTPServer(("127.0.0.1", 8418), H).serve_forever()',
    ]);
    const withToken = access({ project: 'tok', credentials: { token: TOKEN } });
    const { result, lines } = await psDuring(m, () =>
      resolveRefs([{ access: withToken, source: { url: 'http://127.0.0.1:8418/app.git', ref: 'main', token: 'secret:token' } }]),
    );
    await m.exec('systemctl', ['stop', 'hk-slow-git']);
    const r = (result as Map<string, { error?: Error & { code: string; data: unknown } }>).get('tok');
    expect(r?.error?.code).toBe('SOURCE_AUTH_FAILED');
    expect(JSON.stringify({ message: r?.error?.message, data: r?.error?.data })).not.toContain(TOKEN);
    // The helper did hand the token to git: the server saw it.
    const seen = (await m.exec('cat', ['/root/auth.log'])).stdout;
    expect(seen).toContain(`Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`);
    // While git waited on the server, its processes were on the host's process list, without the token.
    expect([...lines].some((l) => l.includes('git-remote-http') || l.includes('remote-http'))).toBe(true);
    expect([...lines].filter((l) => l.includes(TOKEN))).toEqual([]);
    expect((await m.host.exec('test', ['-e', '/run/hostkit-source-tok'])).exitCode).not.toBe(0);
  });

  it('a deploy key is handed to ssh as a 0600 file of the user, never in ps or in the error', async () => {
    const m = machine();
    // The test host has no ssh client: a stand-in ssh (first on PATH) notes its arguments and the
    // key file it was given (owner, mode, whether it holds the key), waits, and refuses like sshd would.
    await m.host.writeFile(
      '/usr/local/bin/ssh',
      [
        '#!/bin/sh',
        'key=',
        'prev=',
        'for a in "$@"; do [ "$prev" = -i ] && key="$a"; prev="$a"; done',
        'echo "args: $*" > /tmp/ssh-seen',
        `stat -c 'key: %U %a' "$key" >> /tmp/ssh-seen`,
        `grep -q ${KEY_LINE} "$key" && echo 'key: holds the key' >> /tmp/ssh-seen`,
        'sleep 2',
        'echo "git@git.example: Permission denied (publickey)." >&2',
        'exit 255',
        '',
      ].join('\n'),
      { ...root, mode: 0o755 },
    );
    const withKey = access({ project: 'keyed', credentials: { sshKey: SSH_KEY } });
    const { result, lines } = await psDuring(m, () =>
      resolveRefs([{ access: withKey, source: { url: 'ssh://git@git.example/app.git', ref: 'main', sshKey: 'secret:key' } }]),
    );
    await m.exec('rm', ['/usr/local/bin/ssh']);
    const r = (result as Map<string, { error?: Error & { code: string; data: unknown } }>).get('keyed');
    expect(r?.error?.code).toBe('SOURCE_AUTH_FAILED');
    expect(JSON.stringify({ message: r?.error?.message, data: r?.error?.data })).not.toContain(KEY_LINE);
    const seen = (await m.exec('cat', ['/tmp/ssh-seen'])).stdout;
    expect(seen).toContain('-i /run/hostkit-source-keyed/ssh-key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new');
    expect(seen).toContain('key: app 600');
    expect(seen).toContain('key: holds the key');
    expect([...lines].some((l) => l.includes('/run/hostkit-source-keyed/ssh-key'))).toBe(true);
    expect([...lines].filter((l) => l.includes(KEY_LINE))).toEqual([]);
    expect((await m.host.exec('test', ['-e', '/run/hostkit-source-keyed'])).exitCode).not.toBe(0);
  });

  it('archives: a wrong sha256 and unsafe entries are refused with nothing written; good .tar.gz and .zip unpack as the user', async () => {
    const m = machine();
    const put = async (name: string, bytes: Buffer) => {
      await m.host.writeFile(`/srv/archives/${name}`, bytes, { ...root, mode: 0o644 });
      return { url: `file:///srv/archives/${name}`, sha256: createHash('sha256').update(bytes).digest('hex') };
    };
    const absent = async (p: string) => expect((await m.host.exec('test', ['-e', p])).exitCode).not.toBe(0);
    const good = zlib.gzipSync(
      await tarOf([
        { name: 'site/', type: 'directory' },
        { name: 'site/index.html', body: 'v1\n' },
        { name: 'site/home.html', type: 'symlink', linkname: 'index.html' },
      ]),
    );

    const wrong = { ...(await put('good.tar.gz', good)), sha256: '0'.repeat(64) };
    await expect(unpackArchive(access(), wrong, '/srv/releases/a1')).rejects.toMatchObject({
      code: 'ARCHIVE_DIGEST_MISMATCH',
      data: { expected: '0'.repeat(64) },
    });
    await absent('/srv/releases/a1');

    const dotdot = await put(
      'dotdot.tar.gz',
      zlib.gzipSync(
        await tarOf([
          { name: 'ok.txt', body: 'ok' },
          { name: '../x', body: 'escaped' },
        ]),
      ),
    );
    await expect(unpackArchive(access(), dotdot, '/srv/releases/a2')).rejects.toMatchObject({ code: 'ARCHIVE_UNSAFE', data: { entry: '../x' } });
    await absent('/srv/releases/a2');
    await absent('/srv/releases/x');
    const etc = await put(
      'etc.tar.gz',
      zlib.gzipSync(
        await tarOf([
          { name: 'conf', type: 'symlink', linkname: '/etc' },
          { name: 'conf/evil', body: 'x' },
        ]),
      ),
    );
    await expect(unpackArchive(access(), etc, '/srv/releases/a3')).rejects.toMatchObject({ code: 'ARCHIVE_UNSAFE', data: { entry: 'conf' } });
    await absent('/srv/releases/a3');

    await unpackArchive(access(), await put('good2.tar.gz', good), '/srv/releases/a4');
    expect((await m.exec('cat', ['/srv/releases/a4/site/home.html'])).stdout).toBe('v1\n');
    expect((await m.exec('find', ['/srv/releases/a4', '-not', '-user', 'app'])).stdout.trim()).toBe('');

    await m.exec('python3', ['-c', 'import zipfile\nz=zipfile.ZipFile("/srv/archives/good.zip","w")\nz.writestr("app/main.py","print(1)\\n")\nz.close()']);
    const zip = (await m.host.readFile('/srv/archives/good.zip'))!;
    await unpackArchive(access(), { url: 'file:///srv/archives/good.zip', sha256: createHash('sha256').update(zip).digest('hex') }, '/srv/releases/a5');
    expect((await m.exec('cat', ['/srv/releases/a5/app/main.py'])).stdout).toBe('print(1)\n');
    expect((await m.exec('find', ['/srv/releases/a5', '-not', '-user', 'app'])).stdout.trim()).toBe('');
  });

  it('archives over https: the host curl downloads a .tar.zst as the user; a missing one is SOURCE_UNREACHABLE', async () => {
    const m = machine();
    // An https server on the test host's loopback, its self-signed certificate trusted by that host only.
    await m.exec('mkdir', ['-p', '/root/www']);
    await m.exec('openssl', [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', '/root/https.key', '-out', '/usr/local/share/ca-certificates/hk-test.crt'],
    ]);
    await m.exec('update-ca-certificates', []);
    await serve(m, 'hk-https', 8443, [
      'import functools, http.server, ssl',
      'class H(http.server.SimpleHTTPRequestHandler):',
      '    def log_message(self, *a): open("/root/https.log", "a").write(self.path + "\\n")',
      'server = http.server.HTTPServer(("127.0.0.1", 8443), functools.partial(H, directory="/root/www"))',
      'context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)',
      'context.load_cert_chain("/usr/local/share/ca-certificates/hk-test.crt", "/root/https.key")',
      'server.socket = context.wrap_socket(server.socket, server_side=True)',
      'server.serve_forever()',
    ]);
    try {
      const bytes = zlib.zstdCompressSync(await tarOf([{ name: 'index.html', body: 'over https\n' }]));
      await m.host.writeFile('/root/www/site.tar.zst', bytes, { ...root, mode: 0o644 });
      const source = { url: 'https://127.0.0.1:8443/site.tar.zst', sha256: createHash('sha256').update(bytes).digest('hex') };
      await unpackArchive(access(), source, '/srv/releases/h1');
      expect((await m.exec('cat', ['/srv/releases/h1/index.html'])).stdout).toBe('over https\n');
      expect((await m.exec('find', ['/srv/releases/h1', '-not', '-user', 'app'])).stdout.trim()).toBe('');
      expect((await m.exec('cat', ['/root/https.log'])).stdout).toContain('/site.tar.zst');

      const error = await unpackArchive(access(), { ...source, url: 'https://127.0.0.1:8443/missing.tar.zst' }, '/srv/releases/h2').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SOURCE_UNREACHABLE', data: { project: 'app' } });
      expect((error as Error).message).toMatch(/^project app: archive https:\/\/127\.0\.0\.1:8443\/missing\.tar\.zst could not be fetched: .*404/);
      expect((await m.host.exec('test', ['-e', '/srv/releases/h2'])).exitCode).not.toBe(0);
    } finally {
      await m.exec('systemctl', ['stop', 'hk-https']);
    }
  });
});
