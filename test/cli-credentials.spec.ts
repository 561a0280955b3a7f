import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFileManifest, HOST_YAML, scratchRoot, TESTER_ACCOUNT, writeRepo } from './support/fixtures.js';
import { manifestYaml } from './support/manifests.js';

// Issue #18: a credential written as a plain environment value. validate warns
// (FILE:LINE:COL, the field, how to write a reference) without showing it, and
// no output of `hostkit plan` (text, JSON, YAML, markdown, its log lines), nor
// the journal of an apply, carries a byte of it.

const CLI = path.resolve('dist/reconciler/cli.js');
const CACHE = path.join(os.tmpdir(), `hostkit-cli-credentials-cache-${process.pid}`);
const STRIPE = 'sk_live_CANARY4f9a2c7e1b3d5f60';
const PASSWORD = 'CANARY-db-8c1e';

function hostkit(args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, env: { NO_COLOR: '', HOSTKIT_CACHE_DIR: CACHE, HK_CLI_TOKEN: 'tok-0c1d' }, extendEnv: true });
}

// Lines 12-14 hold the environment; the project plans (units included) but is never applied.
const PROJECT = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: shop
spec:
  placement:
    hosts: [test-1]
  runtime: node
  service:
    command: [/usr/bin/node, server.js]
    environment:
      NODE_ENV: production
      STRIPE_API_KEY: "${STRIPE}"
      DB_PASSWORD: ${PASSWORD}
  workers:
    - name: mailer
      command: [/usr/bin/node, mailer.js]
      environment:
        MAIL_TOKEN: ${PASSWORD}-mail
`;

// File operations only, so an apply to a re-rooted host is safe: the env file holds a plain credential.
const envFile = (mode: string) => envFileManifest('HK_CLI_TOKEN', { MODE: mode, API_TOKEN: `${PASSWORD}-env` });

describe('hostkit CLI: plain credentials in environment (issue #18)', () => {
  let root: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ root, cleanup } = await scratchRoot());
  });
  afterAll(async () => cleanup());

  it('validate warns at FILE:LINE:COL with the field and how to write a reference, exits 0, and shows the value nowhere', async () => {
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/shop.yaml': PROJECT });
    const text = await hostkit(['validate', '--repo', repo]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('projects/shop.yaml:13:23: warning: plain credential in environment (at /spec/service/environment/STRIPE_API_KEY)');
    expect(text.stdout).toContain('projects/shop.yaml:14:20: warning: plain credential in environment (at /spec/service/environment/DB_PASSWORD)');
    expect(text.stdout).toContain('projects/shop.yaml:19:21: warning: plain credential in environment (at /spec/workers/0/environment/MAIL_TOKEN)');
    expect(text.stdout).toContain('STRIPE_API_KEY: {file: /etc/hostkit/secrets/shop/stripe-api-key}, {env: STRIPE_API_KEY}');
    expect(text.stdout).toMatch(/3 warnings/);
    const json = await hostkit(['validate', '--repo', repo, '-o', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, errors: 0, warnings: 3 });
    for (const r of [text, json]) expect(r.stdout + r.stderr).not.toContain('CANARY');
  });

  it('no output format of a plan, nor its log lines, carries the value: each shows its length, redacted', async () => {
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/shop.yaml': PROJECT });
    for (const format of ['text', 'json', 'yaml', 'markdown']) {
      const r = await hostkit(['plan', '--repo', repo, '--host', 'test-1', '--root', root, '-o', format, '--log-level', 'trace']);
      expect(r.exitCode, `${format}: ${r.stderr}`).toBe(0);
      expect(r.stdout + r.stderr, format).not.toContain('CANARY');
      expect(r.stdout, format).toContain(`DB_PASSWORD=(plain value, ${PASSWORD.length} characters, redacted)`);
      expect(r.stdout, format).toContain('plain credential in environment');
    }
  });

  it('after an apply, the diff of the env file HostKit wrote shows the value redacted on both sides (an unchanged line), and the run journal holds none of it', async () => {
    const files = (mode: string) => ({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': manifestYaml(TESTER_ACCOUNT, envFile(mode)) });
    const base = ['--host', 'test-1', '--root', root];
    const applied = await hostkit(['reconcile', '--repo', await writeRepo(files('live')), ...base]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout + applied.stderr).not.toContain('CANARY');
    expect(await readFile(path.join(root, 'srv/app/app.env'), 'utf8')).toContain(`API_TOKEN="${PASSWORD}-env"`);

    const plan = await hostkit(['plan', '--repo', await writeRepo(files('debug')), ...base]);
    expect(plan.stdout).toContain('-MODE="live"');
    expect(plan.stdout).toContain('+MODE="debug"');
    expect(plan.stdout).not.toContain('CANARY');
    expect(plan.stdout).toMatch(/^ {9}API_TOKEN=\(plain value, 18 characters, redacted\) hmac:[0-9a-f]{12}$/m);

    const runs = path.join(root, 'var/lib/hostkit/runs');
    for (const run of await readdir(runs)) {
      for (const file of ['run.json', 'events.jsonl']) expect(await readFile(path.join(runs, run, file), 'utf8'), `${run}/${file}`).not.toContain('CANARY');
    }
  });
});
