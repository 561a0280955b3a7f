import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generatedSchemas } from '../reconciler/manifests/schema-files.js';
import { schemaDir } from '../reconciler/manifests/schemas.js';
import { fileManifest, gitCommitAll, HOST_YAML, scratchRoot, TESTER_ACCOUNT, writeRepo } from './support/fixtures.js';
import { manifestYaml } from './support/manifests.js';

// `hostkit plan --out FILE` and `hostkit reconcile --plan FILE` as an operator runs them:
// the built CLI on a scratch root, with a real git repository. How a saved plan is
// compared with a new one: reconciler/diff/saved-plan.spec.ts (fake host).

const CLI = path.resolve('dist/reconciler/cli.js');
const CACHE = path.join(os.tmpdir(), `hostkit-saved-plan-cache-${process.pid}`);
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const GIT_ENV = { GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@t' };

function hostkit(args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, env: { NO_COLOR: '1', HOSTKIT_CACHE_DIR: CACHE } });
}

const conf = (content: string) => manifestYaml(TESTER_ACCOUNT, fileManifest('conf', '/srv/app.conf', content), fileManifest('motd', '/srv/motd', 'hi\n'));

describe('hostkit plan --out, reconcile --plan (CLI, scratch root)', () => {
  let repo: string;
  let commit: string;
  let root: string;
  let cleanup: () => Promise<void>;
  let work: string;
  let base: string[];
  const planFile = () => path.join(work, 'plan.json');

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'hostkit-saved-plan-'));
  });
  afterAll(async () => rm(work, { recursive: true, force: true }));
  beforeEach(async () => {
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': conf('x=1\n') });
    commit = await gitCommitAll(repo);
    ({ root, cleanup } = await scratchRoot());
    base = ['--repo', repo, '--host', 'test-1', '--root', root];
    await rm(planFile(), { force: true });
  });
  afterEach(async () => cleanup());

  it('saves a plan valid against schema/saved-plan.schema.json; --dry-run says it is current; the apply applies it; afterwards it is stale', async () => {
    const saved = await hostkit(['plan', ...base, '--out', planFile()]);
    expect(saved.exitCode).toBe(0);
    expect(saved.stdout).toContain('+ file/srv/app.conf'); // the plan is shown as without --out
    expect(saved.stderr).toContain(`plan saved to ${planFile()}`);
    const doc = JSON.parse(await readFile(planFile(), 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema(generatedSchemas(schemaDir())['plan.schema.json']);
    const validate = ajv.compile(JSON.parse(await readFile(path.join(schemaDir(), 'saved-plan.schema.json'), 'utf8')) as object);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(doc).toMatchObject({ format: 'hostkit-saved-plan', formatVersion: 1, hostkitVersion: VERSION, host: 'test-1', commit });

    const check = await hostkit(['reconcile', '--dry-run', ...base, '--plan', planFile()]);
    expect(check.exitCode).toBe(0);
    expect(check.stdout).toContain(`The saved plan ${planFile()} (made ${doc.createdAt as string} at commit ${commit.slice(0, 12)}) is current`);
    const json = await hostkit(['plan', ...base, '--plan', planFile(), '-o', 'json', '--exit-code']);
    expect(json.exitCode).toBe(2); // changes pending
    expect(JSON.parse(json.stdout)).toMatchObject({ file: planFile(), current: true, commit, plan: { host: 'test-1' } });

    const applied = await hostkit(['reconcile', ...base, '--plan', planFile()]);
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    expect(applied.stdout).toContain('Applied 2 change(s) to test-1.');
    expect(await readFile(path.join(root, 'srv/app.conf'), 'utf8')).toBe('x=1\n');

    const after = await hostkit(['plan', ...base, '--plan', planFile()]);
    expect(after.exitCode).toBe(1);
    expect(after.stdout).toContain('is stale: changed since the plan: ');
    expect(after.stdout).toContain('file/srv/app.conf (observed state, planned change)');
  });

  it('refuses it once the repository is at another commit, naming both commits and the resource; the host is left as it was', async () => {
    expect((await hostkit(['plan', ...base, '--out', planFile()])).exitCode).toBe(0);
    await writeFile(path.join(repo, 'projects/app.yaml'), conf('x=2\n'));
    await execa('git', ['commit', '-qam', 'x=2'], { cwd: repo, env: GIT_ENV });
    const next = (await execa('git', ['rev-parse', 'HEAD'], { cwd: repo })).stdout.trim();
    const refused = await hostkit(['reconcile', ...base, '--plan', planFile()]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`the plan was made at commit ${commit}, and ${repo} is at ${next} now`);
    expect(refused.stderr).toContain('file/srv/app.conf (desired state, planned change)');
    expect(refused.stderr).toContain('Nothing was applied.');
    expect(refused.stderr).toContain('[PLAN_STALE]');
    expect(await stat(path.join(root, 'srv/app.conf')).catch(() => undefined)).toBeUndefined();
    expect(await stat(path.join(root, 'var/lib/hostkit/runs')).catch(() => undefined)).toBeUndefined();
  });

  it.each<[string, string, string, (file: string) => Promise<unknown>]>([
    ['a missing file', 'PLAN_FILE_INVALID', 'cannot read the saved plan FILE', (f) => rm(f)],
    ['a file that is not JSON', 'PLAN_FILE_INVALID', 'FILE is not a saved plan HostKit can read: not JSON', (f) => writeFile(f, '{ "format": ')],
    [
      'the plan of `plan -o json`, not a saved plan',
      'PLAN_FILE_INVALID',
      'its "format" is undefined, not "hostkit-saved-plan"',
      (f) => writeFile(f, JSON.stringify({ host: 'test-1', changes: [] })),
    ],
    ['a saved plan with a field cut', 'PLAN_FILE_INVALID', "/ must have required property 'resources'", (f) => edit(f, (d) => delete d.resources)],
    [
      'a plan saved by another HostKit version',
      'PLAN_INCOMPATIBLE',
      `FILE was saved by HostKit 0.0.9 (saved-plan format 1); this is HostKit ${VERSION} (format 1)`,
      (f) => edit(f, (d) => (d.hostkitVersion = '0.0.9')),
    ],
    ['a plan of a newer file format', 'PLAN_INCOMPATIBLE', 'saved-plan format 2', (f) => edit(f, (d) => (d.formatVersion = 2))],
    ['a plan for another host', 'PLAN_WRONG_HOST', 'FILE is a plan for host web-9; this run is for host test-1', (f) => edit(f, (d) => (d.host = 'web-9'))],
  ])('refuses %s, naming the file (exit 1, %s), and applies nothing', async (_what, code, message, spoil) => {
    expect((await hostkit(['plan', ...base, '--out', planFile()])).exitCode).toBe(0);
    await spoil(planFile());
    for (const args of [
      ['reconcile', ...base, '--plan', planFile()],
      ['plan', ...base, '--plan', planFile()],
    ]) {
      const r = await hostkit(args);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(message.replace('FILE', planFile()));
      expect(r.stderr).toContain(`[${code}]`);
    }
    expect(await stat(path.join(root, 'srv/app.conf')).catch(() => undefined)).toBeUndefined();
  });

  it('saves nothing without a git commit to name, or when asked to save an apply; --watch takes neither option', async () => {
    const loose = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': conf('x=1\n') });
    const noCommit = await hostkit(['plan', '--repo', loose, '--host', 'test-1', '--root', root, '--out', planFile()]);
    expect(noCommit.exitCode).toBe(1);
    expect(noCommit.stderr).toContain(`${loose} has no git commit: a saved plan names the commit of the manifests it read`);
    expect(noCommit.stderr).toContain('[PLAN_NO_COMMIT]');
    const apply = await hostkit(['reconcile', ...base, '--out', planFile()]);
    expect(apply.exitCode).toBe(1);
    expect(apply.stderr).toContain('--out saves the plan of a dry run');
    const watch = await hostkit(['plan', ...base, '--watch', '--plan', planFile()]);
    expect(watch.exitCode).toBe(1);
    expect(watch.stderr).toContain('--watch plans again and again: it takes neither --out nor --plan');
    expect(await stat(planFile()).catch(() => undefined)).toBeUndefined();
    expect(await stat(path.join(root, 'srv/app.conf')).catch(() => undefined)).toBeUndefined();
  });
});

async function edit(file: string, change: (doc: Record<string, unknown>) => unknown): Promise<void> {
  const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  change(doc);
  await writeFile(file, JSON.stringify(doc));
}
