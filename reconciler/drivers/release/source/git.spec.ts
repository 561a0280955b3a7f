import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { FakeHost } from '../../../hosts/fake.js';
import { LocalHost } from '../../../hosts/local.js';
import type { ExecOptions, ExecResult } from '../../../hosts/types.js';
import { credentialDirectory } from './credentials.js';
import { cachedCommit, commitSubjects, exportCommit, fetchCommit, resolveRefs, unpackArchive, type SourceAccess } from './index.js';

const TOKEN = 'canary-token-5f1e2d3c4b5a';
const KEY_LINE = 'canarykeyAAAAC3NzaC1lZDI1NTE5AAAAIdeploy';
const SSH_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\n${KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n`;
const C1 = 'a'.repeat(40);

function fakeAccess(host: FakeHost, project: string, credentials?: SourceAccess['credentials']): SourceAccess {
  return {
    host,
    project,
    user: 'www-data',
    stateDirectory: '/var/lib/hostkit',
    allowedRoots: ['/srv'],
    log: silentLogger(),
    ...(credentials ? { credentials } : {}),
  };
}

describe('reconciler/drivers/release/source (fake host)', () => {
  it('resolves commit-pinned refs with no process and one ls-remote per URL and credentials', async () => {
    const host = new FakeHost();
    host.onExec((call) => {
      if (!call.args.includes('ls-remote')) return undefined;
      const url = call.args[call.args.lastIndexOf('--') + 1];
      const lines =
        url === 'https://git.example/a.git'
          ? [`${'1'.repeat(40)}\trefs/heads/main`, `${'2'.repeat(40)}\trefs/tags/v1`, `${'3'.repeat(40)}\trefs/tags/v1^{}`]
          : [`${'4'.repeat(40)}\trefs/heads/main`];
      return { exitCode: 0, stdout: lines.join('\n') + '\n', stderr: '' };
    });
    const a = 'https://git.example/a.git';
    const resolved = await resolveRefs([
      { access: fakeAccess(host, 'one', { token: TOKEN }), source: { url: a, ref: 'main', token: 'secret:t' } },
      { access: fakeAccess(host, 'two', { token: TOKEN }), source: { url: a, ref: 'v1', token: 'secret:t' } },
      { access: fakeAccess(host, 'three'), source: { url: 'https://git.example/b.git', ref: 'main' } },
      { access: fakeAccess(host, 'pinned'), source: { url: 'https://git.example/c.git', ref: C1 } },
      { access: fakeAccess(host, 'missing', { token: TOKEN }), source: { url: a, ref: 'nope', token: 'secret:t' } },
      { access: fakeAccess(host, 'outside'), source: { url: 'file:///etc/repo', ref: 'main' } },
    ]);
    expect(Object.fromEntries([...resolved].map(([p, r]) => [p, 'commit' in r ? r.commit.slice(0, 3) : r.error.code]))).toEqual({
      one: '111',
      two: '333', // the annotated tag's commit
      three: '444',
      pinned: 'aaa',
      missing: 'SOURCE_REF_UNKNOWN',
      outside: 'SOURCE_PATH_NOT_ALLOWED',
    });
    const lsRemotes = host.calls.filter((c) => c.args.includes('ls-remote'));
    expect(lsRemotes.map((c) => c.args[c.args.lastIndexOf('--') + 1]).sort()).toEqual([a, 'https://git.example/b.git']);
    expect(JSON.stringify(host.calls)).not.toContain(TOKEN);
    // The token file was there during the call and is gone after it.
    expect(host.paths().filter((p) => p.startsWith(credentialDirectory('one')))).toEqual([]);
  });

  it('says which failure it was, naming the project and never the credential', async () => {
    const cases: [string, string][] = [
      [`fatal: Authentication failed for 'https://x-access-token:${TOKEN}@git.example/a.git/'`, 'SOURCE_AUTH_FAILED'],
      ["fatal: unable to access 'https://git.example/a.git/': Could not resolve host: git.example", 'SOURCE_UNREACHABLE'],
      ['git@git.example: Permission denied (publickey).', 'SOURCE_AUTH_FAILED'],
    ];
    for (const [stderr, code] of cases) {
      const host = new FakeHost();
      host.onExec((call) => (call.args.includes('ls-remote') ? { exitCode: 128, stdout: '', stderr } : undefined));
      const r = (await resolveRefs([{ access: fakeAccess(host, 'web', { token: TOKEN }), source: { url: 'https://git.example/a.git', ref: 'main' } }])).get(
        'web',
      )!;
      expect('error' in r && r.error.code).toBe(code);
      const error = 'error' in r ? r.error : undefined;
      expect(error?.message).toContain('project web');
      expect(JSON.stringify({ message: error?.message, data: error?.data })).not.toContain(TOKEN);
    }
  });

  it('runs a shared ls-remote as a project whose user exists; one whose user does not yet gets UNKNOWN_USER alone', async () => {
    const host = new FakeHost();
    host.onExec((call) => (call.args.includes('ls-remote') ? { exitCode: 0, stdout: `${'1'.repeat(40)}\trefs/heads/main\n`, stderr: '' } : undefined));
    const source = { url: 'https://git.example/a.git', ref: 'main' };
    const resolved = await resolveRefs([
      { access: { ...fakeAccess(host, 'new'), user: 'new-app' }, source },
      { access: fakeAccess(host, 'old'), source },
    ]);
    expect(resolved.get('old')).toEqual({ commit: '1'.repeat(40) });
    expect(resolved.get('new')).toMatchObject({ error: { code: 'UNKNOWN_USER', message: 'project new: user new-app does not exist on fake' } });
    const lsRemotes = host.calls.filter((c) => c.args.includes('ls-remote'));
    expect(lsRemotes.map((c) => c.args[0])).toEqual(['--reuid=33']);
  });

  it('resolves commit-pinned refs with no process and nothing written', async () => {
    const host = new FakeHost();
    const before = host.paths();
    const resolved = await resolveRefs([
      { access: fakeAccess(host, 'one', { token: TOKEN }), source: { url: 'https://git.example/a.git', ref: C1, token: 'secret:t' } },
      { access: fakeAccess(host, 'two'), source: { url: 'ssh://git@git.example/b.git', ref: 'b'.repeat(64) } },
    ]);
    expect(Object.fromEntries(resolved)).toEqual({ one: { commit: C1 }, two: { commit: 'b'.repeat(64) } });
    expect(host.calls).toEqual([]);
    expect(host.writes).toEqual([]);
    expect(host.paths()).toEqual(before);
  });

  it('refuses a password in the URL before any process, without repeating it', async () => {
    const host = new FakeHost();
    const r = (await resolveRefs([{ access: fakeAccess(host, 'web'), source: { url: `https://someone:${TOKEN}@git.example/a.git`, ref: 'main' } }])).get(
      'web',
    )!;
    expect('error' in r && r.error.code).toBe('SOURCE_PATH_NOT_ALLOWED');
    expect('error' in r && r.error.message).toContain('project web: source https://git.example/a.git holds a password');
    expect('error' in r && JSON.stringify({ m: r.error.message, d: r.error.data })).not.toContain(TOKEN);
    await expect(
      unpackArchive(fakeAccess(host, 'web'), { url: `https://someone:${TOKEN}@files.example/a.tar.gz`, sha256: 'a'.repeat(64) }, '/srv/web/r'),
    ).rejects.toMatchObject({ code: 'SOURCE_PATH_NOT_ALLOWED' });
    expect(host.calls).toEqual([]);
  });

  it('answers cachedCommit from the cache alone, with no process', async () => {
    const host = new FakeHost();
    const access = fakeAccess(host, 'web');
    const source = { url: 'https://git.example/a.git', ref: 'main' };
    expect(await cachedCommit(access, source)).toBeUndefined();
    host.seedFile('/var/lib/hostkit/sources/web/hostkit-refs.json', JSON.stringify({ refs: { 'https://git.example/a.git main': { commit: C1, at: 'x' } } }));
    expect(await cachedCommit(access, source)).toBe(C1);
    expect(await cachedCommit(access, { ...source, ref: 'b'.repeat(40) })).toBe('b'.repeat(40));
    expect(host.calls).toEqual([]);
  });
});

// Real git on this machine, as the unprivileged user `nobody` (needs root to switch user).
const asRoot = process.getuid?.() === 0;

function sh(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', ...env },
    encoding: 'utf8',
  }).trim();
}

class CountingHost extends LocalHost {
  readonly calls: string[][] = [];
  readonly envs: (Record<string, string> | undefined)[] = [];
  override exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.calls.push([file, ...args]);
    this.envs.push(options?.env);
    return super.exec(file, args, options);
  }
}

// A smart-HTTP git server on loopback (git http-backend as CGI) that wants Basic auth with TOKEN.
function gitHttpServer(root: string, seen: string[]): http.Server {
  return http.createServer((req, res) => {
    seen.push(req.headers.authorization ?? '');
    if (req.headers.authorization !== `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(req.url!, 'http://x');
    const cgi = spawn('/usr/lib/git-core/git-http-backend', [], {
      env: {
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method!,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'x',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const end = out.indexOf('\r\n\r\n');
      const headers = out.subarray(0, end).toString().split('\r\n');
      const status = Number(/^Status: (\d+)/m.exec(headers.join('\n'))?.[1] ?? 200);
      for (const h of headers) if (!h.startsWith('Status:')) res.setHeader(h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1).trim());
      res.writeHead(status).end(out.subarray(end + 4));
    });
  });
}

describe.runIf(asRoot)('reconciler/drivers/release/source (real git, as nobody)', () => {
  let tmp: string;
  let repo: string;
  let c1: string;
  let c2: string;
  const host = new CountingHost();
  const access = (): SourceAccess => ({
    host,
    project: 'web',
    user: 'nobody',
    stateDirectory: path.join(tmp, 'state'),
    allowedRoots: [path.join(tmp, 'srv')],
    log: silentLogger(),
  });

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'hk-source-'));
    chmodSync(tmp, 0o755);
    repo = path.join(tmp, 'srv', 'app.git');
    mkdirSync(repo, { recursive: true });
    sh(repo, ['init', '-q', '-b', 'main', '.']);
    mkdirSync(path.join(repo, 'app'));
    for (let i = 0; i < 20; i++) writeFileSync(path.join(repo, 'app', `f${i}.txt`), `file ${i}\n`);
    sh(repo, ['add', '.']);
    sh(repo, ['commit', '-q', '-m', 'first']);
    sh(repo, ['tag', '-a', '-m', 'v1', 'v1']);
    c1 = sh(repo, ['rev-parse', 'HEAD']);
    writeFileSync(path.join(repo, 'app', 'f0.txt'), 'changed\n');
    sh(repo, ['commit', '-q', '-am', 'second']);
    c2 = sh(repo, ['rev-parse', 'HEAD']);
    sh(repo, ['checkout', '-q', c1]);
    execFileSync('chmod', ['-R', 'a+rX', tmp]);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const url = () => `file://${repo}`;
  const objects = () => {
    const out = sh(path.join(tmp, 'state/sources/web'), ['-c', 'safe.directory=*', 'count-objects', '-v']);
    return Number(/^count: (\d+)/m.exec(out)![1]) + Number(/^in-pack: (\d+)/m.exec(out)![1]);
  };

  it('resolves, fetches a delta, exports and lists subjects, as the project user', async () => {
    const resolved = await resolveRefs([
      { access: access(), source: { url: url(), ref: 'main' } },
      { access: { ...access(), project: 'tag' }, source: { url: url(), ref: 'v1' } },
    ]);
    expect(resolved.get('web')).toEqual({ commit: c2 });
    expect(resolved.get('tag')).toEqual({ commit: c1 });
    expect(host.calls.filter((c) => c.includes('ls-remote'))).toHaveLength(1);
    const cache = path.join(tmp, 'state/sources/web');
    expect(statSync(cache).uid).toBe(65534);
    expect(statSync(path.join(tmp, 'state')).mode & 0o777).toBe(0o711);

    expect(await cachedCommit(access(), { url: url(), ref: 'v1' })).toBeUndefined();
    await fetchCommit(access(), { url: url(), ref: 'v1' }, c1);
    expect(await cachedCommit(access(), { url: url(), ref: 'v1' })).toBe(c1);
    const before = objects();
    await fetchCommit(access(), { url: url(), ref: 'main' }, c2);
    // The delta: the new commit, its two trees and the changed file.
    expect(objects() - before).toBe(Number(execFileSync('sh', ['-c', `git rev-list --objects ${c1}..${c2} | wc -l`], { cwd: repo, encoding: 'utf8' })));

    const calls = host.calls.length;
    await fetchCommit(access(), { url: 'file:///nowhere', ref: 'main' }, c2).catch(() => undefined);
    await fetchCommit(access(), { url: url(), ref: 'main' }, c2);
    expect(host.calls.slice(calls).filter((c) => c.includes('fetch'))).toEqual([]);

    expect(await commitSubjects(access(), c1, c2)).toEqual(['second']);
    expect(await commitSubjects(access(), c2, 'f'.repeat(40))).toEqual([]);

    const dest = path.join(tmp, 'srv', 'release');
    await exportCommit(access(), { url: url(), ref: 'main', subdirectory: 'app' }, c2, dest);
    expect(readdirSync(dest)).toHaveLength(20);
    expect(statSync(path.join(dest, 'f0.txt')).uid).toBe(65534);
    await expect(exportCommit(access(), { url: url(), ref: 'main' }, c2, dest)).rejects.toMatchObject({ code: 'SOURCE_DESTINATION_NOT_EMPTY' });
    await expect(exportCommit(access(), { url: url(), ref: 'main', subdirectory: 'nope' }, c2, path.join(tmp, 'srv', 'r2'))).rejects.toMatchObject({
      code: 'SOURCE_SUBDIRECTORY_UNKNOWN',
    });
  });

  it('refuses local paths outside allowedRoots and names unknown refs and unreachable repositories', async () => {
    const resolved = await resolveRefs([
      { access: { ...access(), project: 'a' }, source: { url: 'file:///etc/x.git', ref: 'main' } },
      { access: { ...access(), project: 'b' }, source: { url: url(), ref: 'no-such-branch' } },
      { access: { ...access(), project: 'c' }, source: { url: `file://${tmp}/srv/missing.git`, ref: 'main' } },
      { access: { ...access(), project: 'd' }, source: { url: `file://${tmp}/srv/../../etc`, ref: 'main' } },
    ]);
    const codes = Object.fromEntries([...resolved].map(([p, r]) => [p, 'error' in r ? r.error.code : r.commit]));
    expect(codes).toEqual({ a: 'SOURCE_PATH_NOT_ALLOWED', b: 'SOURCE_REF_UNKNOWN', c: 'SOURCE_UNREACHABLE', d: 'SOURCE_PATH_NOT_ALLOWED' });
    await expect(fetchCommit({ ...access(), project: 'b' }, { url: url(), ref: 'c'.repeat(40) }, 'c'.repeat(40))).rejects.toMatchObject({
      code: 'SOURCE_REF_UNKNOWN',
    });
  });

  // Every process these functions start is recorded (argv and environment) with a canary token and
  // deploy key set: git over http with the token, a stand-in ssh with the key (it prints the key
  // back, as a confused ssh might), a missing ref, an unknown commit, an export and an archive.
  it('never puts the token or the deploy key in an argument, the environment, a log line or an error', async () => {
    const seen: string[] = [];
    const server = gitHttpServer(path.join(tmp, 'srv'), seen);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const bin = path.join(tmp, 'bin');
    const out = path.join(tmp, 'ssh-out');
    mkdirSync(bin, { mode: 0o755 });
    mkdirSync(out);
    chmodSync(out, 0o777);
    writeFileSync(
      path.join(bin, 'ssh'),
      [
        '#!/bin/sh',
        'prev=; for a in "$@"; do [ "$prev" = -i ] && key="$a"; prev="$a"; done',
        `{ echo "args: $*"; stat -c 'key: %u %a' "$key"; } > ${out}/seen`,
        `echo "Load key $key: invalid format: $(tr '\\n' ' ' < "$key")" >&2`,
        'echo "git@git.example: Permission denied (publickey)." >&2',
        'exit 255',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const logged: string[] = [];
    const log = pino({ level: 'trace' }, { write: (line: string) => void logged.push(line) });
    const canary: SourceAccess = { ...access(), project: 'canary', credentials: { token: TOKEN, sshKey: SSH_KEY }, log };
    const errors: unknown[] = [];
    const failing = (work: Promise<unknown>) =>
      work.then(
        () => expect.fail('expected an error'),
        (e: unknown) => errors.push(e),
      );
    const calls = host.calls.length;
    const PATH = process.env.PATH;
    process.env.PATH = `${bin}:${PATH}`;
    try {
      const http = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/app.git`, ref: 'main', token: 'secret:t' };
      expect((await resolveRefs([{ access: canary, source: http }])).get('canary')).toEqual({ commit: c2 });
      await fetchCommit(canary, { ...http, ref: 'v1' }, c1);
      await fetchCommit(canary, http, c2);
      expect(await cachedCommit(canary, http)).toBe(c2);
      expect(await commitSubjects(canary, c1, c2)).toEqual(['second']);
      await exportCommit(canary, http, c2, path.join(tmp, 'srv', 'canary-release'));
      const missing = (await resolveRefs([{ access: canary, source: { ...http, ref: 'no-such-branch' } }])).get('canary')!;
      errors.push('error' in missing ? missing.error : expect.fail('no-such-branch resolved'));
      await failing(fetchCommit(canary, http, 'e'.repeat(40)));
      const ssh = (await resolveRefs([{ access: canary, source: { url: 'ssh://git@git.example/app.git', ref: 'main', sshKey: 'secret:k' } }])).get('canary')!;
      expect('error' in ssh && ssh.error.code).toBe('SOURCE_AUTH_FAILED');
      errors.push('error' in ssh && ssh.error);
      await failing(unpackArchive(canary, { url: `file://${tmp}/srv/missing.tar.gz`, sha256: 'a'.repeat(64) }, path.join(tmp, 'srv', 'canary-archive')));
    } finally {
      process.env.PATH = PATH;
      server.close();
    }
    // The secrets did reach their consumers: the server saw the token, ssh was given a 0600 key file of the user.
    expect(seen).toContain(`Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`);
    const sshSeen = readFileSync(path.join(out, 'seen'), 'utf8');
    expect(sshSeen).toContain(`-i ${credentialDirectory('canary')}/ssh-key -o IdentitiesOnly=yes`);
    expect(sshSeen).toContain('key: 65534 600');
    expect(() => statSync(credentialDirectory('canary'))).toThrow();
    // ...and nowhere else.
    const execs = host.calls.slice(calls);
    expect(execs.filter((c) => c.includes('ls-remote') || c.includes('fetch') || c.includes('checkout-index')).length).toBeGreaterThanOrEqual(5);
    const errorText = errors.map((e) => JSON.stringify({ message: (e as Error).message, data: (e as { data?: unknown }).data }));
    expect(errorText).toHaveLength(4);
    expect(logged.length).toBeGreaterThan(0);
    for (const [what, texts] of [
      ['argv', execs.map((c) => JSON.stringify(c))],
      ['environment', host.envs.slice(calls).map((e) => JSON.stringify(e ?? {}))],
      ['log', logged],
      ['error', errorText],
    ] as const) {
      for (const secret of [TOKEN, KEY_LINE])
        expect(
          texts.filter((t) => t.includes(secret)),
          `${what} holds ${secret}`,
        ).toEqual([]);
    }
  });
});
