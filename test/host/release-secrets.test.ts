// A canary deploy token and deploy key end to end, on a real host: two projects
// whose git sources need them (web: a branch over https with a token, through
// git http-backend behind a server that checks it; api: a commit over ssh with
// a deploy key), each with a build step, deployed and changed by the CLI run
// inside the host as an operator runs it. Neither value may show in the CLI's
// output, the logs (the journal), the run journal or any other file HostKit
// writes, a plan, a status report or the agent's report, nor in any process's
// arguments or environment sampled every 50 ms while the fetches and the builds
// run; the build itself cannot see them either.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StatusDocument } from '../../reconciler/commands/status.js';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { currentReleases, sourceProjects } from '../../reconciler/report/releases.js';
import { reportFiles, reportFromOutcome } from '../../reconciler/report/status.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';
import { releaseApp } from '../support/release-app.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_MANIFEST, HOST_NAME } from './reconcile.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
// Shared read-write into the host: the config repository the CLI inside reads.
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-release-secrets-'));
const STATE = '/var/lib/hostkit';

const TOKEN = 'hk-canary-token-5e0c93a1d7';
const WRONG_TOKEN = 'hk-canary-wrong-token-44b2c0';
const KEY_LINE = 'hkcanarydeploykeyAAAAC3NzaC1lZDI1NTE5AAAAIb71e';
const SSH_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\n${KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n`;
const basic = (token: string) => Buffer.from(`x-access-token:${token}`).toString('base64');
// Every form a credential could leak in: the values, and the token as the Authorization header carries it.
const CANARIES = [TOKEN, basic(TOKEN), WRONG_TOKEN, basic(WRONG_TOKEN), KEY_LINE];
// The canaries, one a line, for grep on this machine (not in SHARED: that is mounted into the host's /tmp).
const CANARY_FILE = path.join(mkdtempSync(path.join(os.tmpdir(), 'hostkit-canaries-')), 'canaries');

const SECRETS = '/etc/hostkit/secrets';
const TOKEN_FILE = `${SECRETS}/web/git-token`;
const KEY_FILE = `${SECRETS}/api/deploy-key`;
const BARE = '/srv/app.git';
const WORK = '/root/app-work';
const root = { uid: 0, gid: 0, mode: 0o755 };

// The build step: slow enough to be seen in the process list; it keeps its whole environment in the
// release and notes which credential files it could read (none: they are root's, or gone).
const BUILD = `import os, time
time.sleep(1.5)
open("build-env.txt", "w").write("\\n".join(k + "=" + v for k, v in sorted(os.environ.items())) + "\\n")
paths = ["${TOKEN_FILE}", "${KEY_FILE}", "/run/hostkit-source-web/token", "/run/hostkit-source-api/ssh-key"]
open("readable.txt", "w").write("".join(p + "\\n" for p in paths if os.access(p, os.R_OK)))
open("build-info.txt", "w").write("built " + open("VERSION").read().strip())
print("build of", open("VERSION").read().strip(), "done")
`;

// git over https as a forge serves it: git http-backend (as CGI) behind a check of the Authorization header,
// with a certificate the test host trusts. Every request waits 0.3 s, so git's processes are on the process
// list long enough to be sampled.
const GIT_HTTP = `import base64, http.server, ssl, subprocess, time
EXPECTED = "Basic " + base64.b64encode(b"x-access-token:" + open("/root/git-token", "rb").read().strip()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def serve(self):
        time.sleep(0.3)
        if self.headers.get("Authorization") != EXPECTED:
            open("/root/git-http.log", "a").write("refused " + self.path + "\\n")
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        open("/root/git-http.log", "a").write("served " + self.path + "\\n")
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": "/srv", "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "REMOTE_USER": "x-access-token", "REMOTE_ADDR": "127.0.0.1", "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = b"\\r\\n\\r\\n" if b"\\r\\n\\r\\n" in out else b"\\n\\n"
        head, _, rest = out.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = serve
    do_POST = serve
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 8419), H)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/usr/local/share/ca-certificates/hk-git.crt", "/root/git-https.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
`;

// The test host has no ssh client and no sshd: this stand-in for ssh runs the remote git command
// on the host itself, but only when given the deploy key (-i FILE holding it), as sshd would.
const SSH = `#!/bin/sh
key=
prev=
last=
for a in "$@"; do
  [ "$prev" = -i ] && key="$a"
  prev="$a"
  last="$a"
done
if [ -z "$key" ] || [ "$(sha256sum < "$key" | cut -d' ' -f1)" != "${createHash('sha256').update(SSH_KEY).digest('hex')}" ]; then
  echo "git@git.example: Permission denied (publickey)." >&2
  exit 255
fi
sleep 0.3
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
exec sh -c "$last"
`;

// Every 50 ms: every process's arguments (ps), and which processes hold a canary in their arguments or environment.
const SAMPLER = `#!/bin/bash
while :; do
  ps -e -ww -o pid=,user=,args= >> /root/ps.log
  grep -l -a -F -f /root/canaries /proc/[0-9]*/cmdline /proc/[0-9]*/environ >> /root/proc-hits.log 2>/dev/null
  sleep 0.05
done
`;

function project(name: string, port: number, git: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  source:
    git: ${git}
  build:
    - command: [/usr/bin/python3, build.py]
  service:
    command: [/usr/bin/python3, app.py]
    port: ${port}
  domains:
    - name: ${name}.hk.test
      tls: none
  health:
    http: { path: /healthz, bodyContains: ok }
    timeout: 2s
    retries: 2
`;
}

const web = () => project('web', 9321, `{ url: "https://127.0.0.1:8419/app.git", ref: main, token: { file: ${TOKEN_FILE} } }`);
const api = (commit: string) => project('api', 9322, `{ url: "ssh://git@git.example${BARE}", ref: "${commit}", sshKey: { file: ${KEY_FILE} } }`);

let configs = 0;

/** The config repository at a new commit holding these projects. */
async function configCommit(files: Record<string, string>): Promise<string> {
  const dir = path.join(SHARED, 'config');
  rmSync(path.join(dir, 'projects'), { recursive: true, force: true });
  configs++;
  await writeRepo({ 'hosts/test-host.yaml': HOST_MANIFEST, 'README.md': `config ${configs}\n`, ...files }, dir);
  await gitCommitAll(dir, `config ${configs}`);
  return dir;
}

/** The CLI as an operator runs it on the host itself. */
function hostkit(m: TestHost, args: string[]) {
  return m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1' }, timeoutMs: 180_000 });
}

/** The canaries in `text`, by index into CANARIES (the values themselves stay out of the test's output). */
function leaks(text: string): number[] {
  return CANARIES.flatMap((c, i) => (text.includes(c) ? [i] : []));
}

/** The app's source at `version`, committed and pushed to the bare repository; its commit id. */
async function push(m: TestHost, version: string): Promise<string> {
  for (const [name, text] of Object.entries({ VERSION: `${version}\n`, 'app.py': releaseApp(version), 'build.py': BUILD }))
    await m.host.writeFile(`${WORK}/${name}`, text, { ...root, mode: 0o644 });
  const git = (...args: string[]) => m.exec('git', ['-C', WORK, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', `app ${version}`);
  await git('push', '-q', BARE, 'HEAD:main');
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

async function served(m: TestHost, name: string, want: string): Promise<string> {
  const get = async () => (await m.host.exec('curl', ['-s', '--max-time', '3', '--resolve', `${name}:80:127.0.0.1`, `http://${name}/`])).stdout;
  await eventually(async () => (await get()) === want, 15_000);
  return get();
}

/** Run `work` while the sampler records the process list; the lines it saw and the processes that held a canary. */
async function sampled<T>(m: TestHost, work: () => Promise<T>): Promise<{ result: T; ps: string; hits: string }> {
  await m.exec('rm', ['-f', '/root/ps.log', '/root/proc-hits.log']);
  await m.exec('systemd-run', ['--unit=hk-sampler', '--collect', '/bin/bash', '/root/sampler.sh']);
  await eventually(async () => ((await m.host.readFile('/root/ps.log'))?.length ?? 0) > 0, 5_000, 20);
  try {
    const result = await work();
    return { result, ps: (await m.host.readFile('/root/ps.log'))?.toString() ?? '', hits: (await m.host.readFile('/root/proc-hits.log'))?.toString() ?? '' };
  } finally {
    await m.exec('systemctl', ['stop', 'hk-sampler']);
  }
}

// Each text (what the CLI printed, a report file, the process list sampled) free of the canaries.
function expectClean(what: string, texts: Record<string, string>): void {
  for (const [name, text] of Object.entries(texts)) expect(leaks(text), `${what}: ${name} holds canaries (by index)`).toEqual([]);
}

const printed = (name: string, run: { stdout: string; stderr: string }) => ({ [`${name} stdout`]: run.stdout, [`${name} stderr`]: run.stderr });

// The process list sampled while the CLI ran: no canary in any process's arguments, nor in any's environment.
function expectCleanProcesses(what: string, sample: { ps: string; hits: string }): void {
  expectClean(what, { 'the process list': sample.ps });
  expect(sample.hits.trim(), `${what}: processes with a canary in their arguments or environment`).toBe('');
}

describeHost('release sources with a token and a deploy key: the credentials in no output, log, journal, plan, report or process', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: SHARED }] });
  const commits: Record<'v1' | 'v2', string> = { v1: '', v2: '' };

  beforeAll(async () => {
    const m = machine();
    writeFileSync(CANARY_FILE, CANARIES.join('\n') + '\n');
    await m.host.writeFile('/root/canaries', CANARIES.join('\n') + '\n', { ...root, mode: 0o600 });
    for (const dir of ['/etc/hostkit', SECRETS, `${SECRETS}/web`, `${SECRETS}/api`]) await m.host.mkdir(dir, { ...root, mode: 0o700 });
    await m.host.writeFile(TOKEN_FILE, `${TOKEN}\n`, { ...root, mode: 0o600 });
    await m.host.writeFile(KEY_FILE, SSH_KEY, { ...root, mode: 0o600 });
    await m.host.writeFile('/root/git-token', TOKEN, { ...root, mode: 0o600 });
    await m.host.writeFile('/root/git-http.py', GIT_HTTP, { ...root, mode: 0o600 });
    await m.host.writeFile('/usr/local/bin/ssh', SSH, { ...root, mode: 0o755 });
    await m.host.writeFile('/root/sampler.sh', SAMPLER, { ...root, mode: 0o700 });
    await m.exec('git', ['init', '-q', '-b', 'main', WORK]);
    await m.exec('git', ['init', '-q', '--bare', '-b', 'main', BARE]);
    await m.exec('openssl', [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', '/root/git-https.key', '-out', '/usr/local/share/ca-certificates/hk-git.crt'],
    ]);
    await m.exec('update-ca-certificates', []);
    await m.exec('systemd-run', ['--unit=hk-git-http', '--collect', '/usr/bin/python3', '/root/git-http.py']);
    await m.exec('bash', ['-c', 'for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8419) 2>/dev/null && exit 0; sleep 0.1; done; exit 1']);
    commits.v1 = await push(m, 'v1');
  });
  afterAll(() => {
    rmSync(SHARED, { recursive: true, force: true });
    rmSync(path.dirname(CANARY_FILE), { recursive: true, force: true });
  });

  it('a first deploy of both by the CLI (debug logs, progress): built, served, and no canary in its output or any process while it fetched and built', async () => {
    const m = machine();
    const repo = await configCommit({ 'projects/web.yaml': web(), 'projects/api.yaml': api(commits.v1) });
    const { result: run, ...sample } = await sampled(m, () =>
      hostkit(m, ['reconcile', '--repo', repo, '--host', HOST_NAME, '--log-level', 'debug', '--progress']),
    );
    expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
    expect(await served(m, 'web.hk.test', 'v1 built v1\n')).toBe('v1 built v1\n');
    expect(await served(m, 'api.hk.test', 'v1 built v1\n')).toBe('v1 built v1\n');
    // The server saw the token: the credential helper handed it over; ssh was given the key.
    expect((await m.exec('cat', ['/root/git-http.log'])).stdout).toContain('served /app.git/info/refs');
    // The sampler ran while git fetched (over HTTP and through ssh with the key file) and while both builds ran.
    expect(sample.ps).toMatch(/git-remote-http/);
    expect(sample.ps).toContain('ssh -i /run/hostkit-source-api/ssh-key');
    expect(sample.ps.match(/^\s*\d+ (web|api) +\/usr\/bin\/python3 build\.py$/gm)?.length ?? 0).toBeGreaterThan(2);
    expect(run.stderr).toContain('build step');
    expectClean('first deploy', printed('reconcile', run));
    expectCleanProcesses('first deploy', sample);
    // The build ran without the credentials: not in its environment, and no credential file it could read.
    for (const p of ['web', 'api']) {
      expect((await m.host.readFile(`/srv/${p}/current/build-env.txt`))?.toString()).toMatch(/^HOME=\/var\/cache\/hostkit-build\//m);
      expect((await m.host.readFile(`/srv/${p}/current/readable.txt`))?.toString()).toBe('');
    }
  });

  it('a new commit: the plan (-o json), the apply (-o json), hostkit status (text and JSON, naming each release), releases and runs hold no canary', async () => {
    const m = machine();
    commits.v2 = await push(m, 'v2');
    const repo = await configCommit({ 'projects/web.yaml': web(), 'projects/api.yaml': api(commits.v2) });
    const plan = await hostkit(m, ['plan', '--repo', repo, '--host', HOST_NAME, '-o', 'json']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as { changes: { id: string; action: string }[] };
    expect(planned.changes.find((c) => c.id === 'release/api')?.action).toBe('update');
    const { result: apply, ...sample } = await sampled(m, () =>
      hostkit(m, ['reconcile', '--repo', repo, '--host', HOST_NAME, '-o', 'json', '--log-level', 'debug']),
    );
    expect(apply.exitCode, apply.stderr.slice(-3000)).toBe(0);
    expect(await served(m, 'web.hk.test', 'v2 built v2\n')).toBe('v2 built v2\n');
    expect(await served(m, 'api.hk.test', 'v2 built v2\n')).toBe('v2 built v2\n');
    expect(sample.ps).toMatch(/\/usr\/bin\/python3 build\.py$/m);

    const text = await hostkit(m, ['status', '--repo', repo, '--host', HOST_NAME]);
    const json = await hostkit(m, ['status', '--repo', repo, '--host', HOST_NAME, '-o', 'json']);
    const releases = await hostkit(m, ['releases', '-o', 'json']);
    const runs = await hostkit(m, ['runs', '-o', 'json', '--verbose']);
    for (const r of [text, json, releases, runs]) expect(r.exitCode, r.stderr).toBe(0);
    expectClean('new commit', {
      ...printed('plan -o json', plan),
      ...printed('reconcile -o json', apply),
      ...printed('status', text),
      ...printed('status -o json', json),
      ...printed('releases -o json', releases),
      ...printed('runs -o json --verbose', runs),
    });
    expectCleanProcesses('new commit', sample);

    // Status names each project's current release and its commit: the JSON field, and a line in its block.
    const doc = JSON.parse(json.stdout) as StatusDocument;
    for (const name of ['web', 'api']) {
      const release = doc.projects.find((p) => p.name === name)!.release!;
      expect(release).toMatchObject({ commit: commits.v2, run: expect.any(String) });
      expect(`releases/${release.id}`).toBe(await m.host.readlink(`/srv/${name}/current`));
      const block = text.stdout.split('\n\n').find((b) => b.startsWith(`● ${name} `))!;
      expect(block).toMatch(
        new RegExp(`^ {4}release +${release.id} +commit ${commits.v2.slice(0, 12)}, switched at \\S+; \\d+\\w+ ago by run ${release.run}$`, 'm'),
      );
    }
  });

  it('a wrong token fails naming the project and the cause; neither token is in the error, the CLI output or the agent report', async () => {
    const m = machine();
    await m.host.writeFile(TOKEN_FILE, `${WRONG_TOKEN}\n`, { ...root, mode: 0o600 });
    await push(m, 'v3');
    const repo = await configCommit({ 'projects/web.yaml': web(), 'projects/api.yaml': api(commits.v2) });
    const cli = await hostkit(m, ['reconcile', '--repo', repo, '--host', HOST_NAME, '--log-level', 'debug']);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stdout + cli.stderr).toMatch(/project web: listing the refs of https:\/\/127\.0\.0\.1:8419\/app\.git was refused: bad or missing credentials/);
    // The agent's report of the same commit (as it would commit it to the report branch).
    const redactor = new Redactor();
    const outcome = await reconcileHost({ repoDir: repo, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), redactor, env: {} });
    const facts = { host: HOST_NAME, trigger: ['test'], startedAt: new Date(), finishedAt: new Date(), timings: {} };
    const report = { ...reportFromOutcome(facts, outcome), releases: await currentReleases(m.host, STATE, sourceProjects(outcome)) };
    const files = reportFiles(report, redactor);
    expect(files['status/test-host.md']).toContain('bad or missing credentials');
    expect(report.releases.map((r) => [r.project, r.commit])).toEqual([
      ['api', commits.v2],
      ['web', commits.v2],
    ]);
    const written = Object.fromEntries(Object.entries(files).filter((e): e is [string, string] => e[1] !== undefined));
    expectClean('a wrong token', { ...printed('reconcile', cli), ...written });
    expect(await served(m, 'web.hk.test', 'v2 built v2\n')).toBe('v2 built v2\n');
  });

  it('after all of it: no canary in the journal, in any file written on the host but the secrets themselves, nor in /run and /tmp', async () => {
    const m = machine();
    // The whole journal, every field (the build units' output, _CMDLINE of every process that logged).
    const journal = (await m.exec('bash', ['-c', 'journalctl --no-pager -o export | grep -a -F -f /root/canaries | cut -d= -f1 | sort | uniq -c || true']))
      .stdout;
    expect(journal.trim(), 'journal fields holding a canary').toBe('');
    // Every file the host has that the pristine image had not: the run journals (STATE/runs), the inventory, the source
    // caches, the releases and their build output, the build caches, /var/log.
    const written = execFileSync('bash', ['-c', `grep -r -a -l -F -f ${CANARY_FILE} . || true`], { cwd: m.upperDir, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f !== '' && !f.startsWith(`.${SECRETS}/`) && !f.startsWith('./root/'));
    expect(written, 'files holding a canary').toEqual([]);
    expect((await m.exec('bash', ['-c', 'ls /var/lib/hostkit/runs | wc -l'])).stdout.trim()).not.toBe('0');
    // The checkout this test runs from is bound into the host (under /tmp in CI's clone): its own sources name the canaries.
    const checkout = checkoutMounts(WORKTREE).map((mount) => `${mount.hostPath}/`);
    const volatile = (await m.exec('bash', ['-c', 'grep -r -a -l -F -f /root/canaries /run /tmp 2>/dev/null || true'])).stdout
      .split('\n')
      .filter((f) => f !== '' && !checkout.some((dir) => f.startsWith(dir)));
    expect(volatile, 'files in /run or /tmp holding a canary').toEqual([]);
    expect((await m.host.exec('test', ['-e', '/run/hostkit-source-web'])).exitCode).not.toBe(0);
    expect((await m.host.exec('test', ['-e', '/run/hostkit-source-api'])).exitCode).not.toBe(0);
  });
});
