// Saved plans on a real host (issue #23): `hostkit plan --out` and `hostkit
// reconcile --plan` run inside the booted host as an operator runs them. A plan
// saved, reviewed and applied converges as a direct reconcile does; a change on
// the host between the plan and its apply (a managed file edited, a unit
// stopped) or a new commit makes the plan stale: refused with exit 1, naming the
// resource, and the host is left exactly as it was.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { HOST_MANIFEST, HOST_NAME, httpStatus, service, unitProperty } from './reconcile.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
// Shared read-write into the host: the repository the CLI inside reads, and the plan files it writes.
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-saved-plan-'));
const REPO = path.join(SHARED, 'repo');
const PLAN = path.join(SHARED, 'plan.json');
const GIT_ENV = { GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@t' };

const SECRET = 'tok-saved-plan-9c41e7b2';
const CANARY = 'CANARY-banner-3b8d50';
const UNIT = 'hk-web.service';
const STATE = '/var/lib/hostkit';

// web: a service with a secret (its env file), a file of its own, and a host file it takes over.
function manifests(o: { tag: string; motd: string }): Record<string, string> {
  return {
    'hosts/test-host.yaml': HOST_MANIFEST,
    'projects/web.yaml': service(
      'web',
      9341,
      `    environment:
      TAG: ${o.tag}
    secrets:
      TOKEN: { env: HK_TOKEN }
  files:
    - { name: motd, content: "${o.motd}" }
`,
    ),
    'hosts/banner.yaml': `apiVersion: hostkit.dev/v1
kind: File
metadata: { name: banner }
spec:
  placement: { hosts: [${HOST_NAME}] }
  path: /srv/hk-banner.txt
  owner: root
  group: root
  mode: "0644"
  content: "managed banner\\n"
`,
  };
}

/** Commit the manifests as the repository's new HEAD; returns the commit. */
async function commit(files: Record<string, string>, message: string): Promise<string> {
  await writeRepo(files, REPO);
  await execa('git', ['add', '-A'], { cwd: REPO });
  await execa('git', ['commit', '-qm', message], { cwd: REPO, env: GIT_ENV });
  return (await execa('git', ['rev-parse', 'HEAD'], { cwd: REPO })).stdout.trim();
}

/** The CLI as an operator runs it on the host itself. */
function hostkit(m: TestHost, args: string[]) {
  return m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args, '--repo', REPO, '--host', HOST_NAME], {
    env: { NO_COLOR: '1', HK_TOKEN: SECRET },
    timeoutMs: 120_000,
  });
}

/** What an apply would change, read inside the host: the unit (file, state, invocation), the managed files, and the runs recorded. */
async function hostState(m: TestHost) {
  const text = async (p: string) => (await m.host.readFile(p))?.toString() ?? '(absent)';
  const env = await text('/etc/hostkit/env/web.env');
  return {
    unit: await text(`/etc/systemd/system/${UNIT}`),
    // The env file holds the secret: compared by digest, and its TAG.
    env: createHash('sha256').update(env).digest('hex'),
    tag: /^TAG="?(\w+)/m.exec(env)?.[1],
    active: await unitProperty(m, UNIT, 'ActiveState'),
    invocation: await unitProperty(m, UNIT, 'InvocationID'),
    motd: await text('/srv/web/motd'),
    banner: await text('/srv/hk-banner.txt'),
    runs: (await m.host.readdir(`${STATE}/runs`))?.sort() ?? [],
  };
}

describeHost('saved plans on a real host: plan --out, reconcile --plan, stale plans refused', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: SHARED }] });
  let first: string;

  beforeAll(async () => {
    const m = machine();
    // A host file HostKit did not write, which the banner File takes over.
    await m.host.writeFile('/srv/hk-banner.txt', `${CANARY}\n`, { uid: 0, gid: 0, mode: 0o644 });
    await writeRepo(manifests({ tag: 'one', motd: 'hello' }), REPO);
    first = await gitCommitAll(REPO);
  });
  afterAll(() => rmSync(SHARED, { recursive: true, force: true }));

  it('a plan saved, then applied, converges as a direct reconcile does; the file holds no secret and no byte of a file HostKit did not write', async () => {
    const m = machine();
    const saved = await hostkit(m, ['plan', '--out', PLAN]);
    expect(saved.stderr).toBe(
      `hostkit: plan saved to ${PLAN}: \`hostkit reconcile --plan ${PLAN}\` applies exactly it, and refuses it if the host or the manifests changed since\n`,
    );
    expect(saved.exitCode).toBe(0);
    expect(saved.stdout).toContain(`HostKit plan for host ${HOST_NAME} at commit ${first.slice(0, 12)}`);
    const text = readFileSync(PLAN, 'utf8');
    for (const v of [SECRET, CANARY])
      for (const form of [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('hex')]) expect(text).not.toContain(form);
    const doc = JSON.parse(text) as { host: string; commit: string; resources: { id: string }[] };
    expect(doc).toMatchObject({ host: HOST_NAME, commit: first });
    expect(doc.resources.map((r) => r.id)).toEqual(expect.arrayContaining([`unit/${UNIT}`, 'file/srv/web/motd', 'file/srv/hk-banner.txt']));
    expect(text).toMatch(/exists, 21 bytes, fingerprint hmac:[0-9a-f]{12}/); // the banner before HostKit: by size and fingerprint

    const check = await hostkit(m, ['plan', '--plan', PLAN]);
    expect(check.exitCode).toBe(0);
    expect(check.stdout).toContain(`The saved plan ${PLAN}`);
    expect(check.stdout).toContain('is current');

    const applied = await hostkit(m, ['reconcile', '--plan', PLAN]);
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    expect(applied.stdout).toMatch(/Applied \d+ change\(s\) to test-host\./);
    expect(await unitProperty(m, UNIT, 'ActiveState')).toBe('active');
    expect(await httpStatus(m, 'http://127.0.0.1:9341/')).toBe('200');
    expect((await m.host.readFile('/srv/hk-banner.txt'))?.toString()).toBe('managed banner\n');
    // Converged: a direct reconcile finds nothing to do and restarts nothing.
    const invocation = await unitProperty(m, UNIT, 'InvocationID');
    const direct = await hostkit(m, ['reconcile']);
    expect(direct.exitCode).toBe(0);
    expect(direct.stdout).toContain('Nothing to apply: the host matches the manifests.');
    expect(await unitProperty(m, UNIT, 'InvocationID')).toBe(invocation);
  });

  it('a managed file edited on the host between plan and apply: refused (exit 1, PLAN_STALE) naming it; nothing applied', async () => {
    const m = machine();
    await commit(manifests({ tag: 'two', motd: 'hello' }), 'web: tag two');
    expect((await hostkit(m, ['plan', '--out', PLAN])).exitCode).toBe(0);
    await m.host.writeFile('/srv/web/motd', 'edited by hand\n', { uid: 0, gid: 0, mode: 0o644 });
    const before = await hostState(m);
    const refused = await hostkit(m, ['reconcile', '--plan', PLAN]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`The saved plan ${PLAN} is stale: changed since the plan: file/srv/web/motd (observed state, planned change)`);
    expect(refused.stderr).toContain('Nothing was applied.');
    expect(refused.stderr).toContain('[PLAN_STALE]');
    expect(refused.stdout).toBe('');
    const after = await hostState(m);
    expect(after).toEqual(before);
    expect(after.tag).toBe('one'); // the planned update was not made
    expect(after.motd).toBe('edited by hand\n');
  });

  it('a unit stopped between plan and apply: refused naming it; nothing applied, the unit left stopped', async () => {
    const m = machine();
    expect((await hostkit(m, ['plan', '--out', PLAN])).exitCode).toBe(0);
    await m.exec('systemctl', ['stop', UNIT]);
    const before = await hostState(m);
    expect(before.active).toBe('inactive');
    const refused = await hostkit(m, ['reconcile', '--plan', PLAN]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`unit/${UNIT} (observed state, planned change)`);
    expect(refused.stderr).toContain('[PLAN_STALE]');
    expect(await hostState(m)).toEqual(before);
  });

  it('a new commit between plan and apply: refused naming both commits and the resource it changes; nothing applied', async () => {
    const m = machine();
    const planned = (await execa('git', ['rev-parse', 'HEAD'], { cwd: REPO })).stdout.trim();
    expect((await hostkit(m, ['plan', '--out', PLAN])).exitCode).toBe(0);
    const next = await commit(manifests({ tag: 'two', motd: 'hello again' }), 'web: motd');
    const before = await hostState(m);
    const refused = await hostkit(m, ['reconcile', '--plan', PLAN]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`the plan was made at commit ${planned}, and ${REPO} is at ${next} now`);
    expect(refused.stderr).toContain('file/srv/web/motd (desired state, planned change)');
    expect(refused.stderr).toContain('[PLAN_STALE]');
    expect(await hostState(m)).toEqual(before);
    // The --dry-run check says the same, on stdout, and exits 1.
    const check = await hostkit(m, ['reconcile', '--dry-run', '--plan', PLAN]);
    expect(check.exitCode).toBe(1);
    expect(check.stdout).toContain('is stale: the plan was made at commit');
  });

  it('a fresh plan of the drifted host applies: the edit healed, the unit running on the new commit', async () => {
    const m = machine();
    expect((await hostkit(m, ['plan', '--out', PLAN])).exitCode).toBe(0);
    const applied = await hostkit(m, ['reconcile', '--plan', PLAN]);
    expect(applied.exitCode).toBe(0);
    const after = await hostState(m);
    expect(after.motd).toBe('hello again');
    expect(after.tag).toBe('two');
    expect(after.active).toBe('active');
    expect((await hostkit(m, ['plan', '--exit-code'])).exitCode).toBe(0);
  });
});
