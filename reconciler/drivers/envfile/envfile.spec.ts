import { describe, expect, it } from 'vitest';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { Inventory } from '../../apply/inventory.js';
import type { Resource } from '../../core/resource.js';
import { fingerprinter, Redactor, REDACTED } from '../../core/secrets.js';
import type { EnvFileSpec } from '../../core/specs.js';
import { toJsonPlan } from '../../diff/render/json.js';
import { renderText } from '../../diff/render/text.js';
import { renderMarkdown } from '../../diff/render/markdown.js';
import { summarize } from '../../diff/model.js';
import { FakeHost } from '../../hosts/fake.js';
import { envFileDriver } from './index.js';
import { quote, redactEnvText, unquote } from './render.js';

const SECRET = 'hunter2-very-secret-value';
const ROTATED = 'rotated-secret-value-42';

const spec: EnvFileSpec = {
  path: '/etc/hostkit/env/api.env',
  owner: 'root',
  group: 'root',
  mode: 0o640,
  environment: { NODE_ENV: 'production', GREETING: 'say "hi" \\o/' },
  secrets: { SESSION_KEY: { file: '/etc/hostkit/secrets/session' } },
  derivedSecrets: { DATABASE_URL: { template: 'postgresql://api:{secret}@127.0.0.1:5432/api', secret: { env: 'DB_PASSWORD' } } },
};
const resource: Resource<EnvFileSpec> = {
  id: 'envfile/etc/hostkit/env/api.env',
  kind: 'envfile',
  name: spec.path,
  spec,
  dependsOn: [],
  origin: { file: 'projects/api.yaml', line: 9 },
};

async function planWith(host: FakeHost, env: NodeJS.ProcessEnv, mode: 'plan' | 'apply' = 'apply', inventory?: Inventory, r: Resource<EnvFileSpec> = resource) {
  const redactor = new Redactor();
  const ctx = driverContext(host, { env, mode, redactor, ...(inventory ? { inventory } : {}) });
  const wanted = (await envFileDriver.desire([r], ctx)).get(r.id)!;
  const observed = (await envFileDriver.observe([r], ctx)).get(r.id);
  const change = envFileDriver.plan({ resource: r, desired: wanted.desired, observed, orphan: false });
  change.diagnostics.push(...wanted.diagnostics);
  return { ctx, change, redactor };
}

function everythingShown(change: Awaited<ReturnType<typeof planWith>>['change']): string {
  const plan = { host: 'h', repository: 'r', changes: [change], diagnostics: change.diagnostics, summary: summarize([change]) };
  return JSON.stringify(toJsonPlan(plan)) + renderText(plan) + renderMarkdown(plan);
}

describe('reconciler/drivers/envfile', () => {
  it('quotes values the way systemd reads them back', () => {
    for (const value of ['plain', 'with space', 'quote " inside', 'back\\slash', "it's", '$HOME']) {
      expect(unquote(quote(value))).toBe(value);
    }
    expect(quote('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it('writes secret values to the file but never into the plan, text, markdown or JSON', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', `${SECRET}\n`);
    const { ctx, change } = await planWith(host, { DB_PASSWORD: 'p@ss/word' });
    expect(change.action).toBe('create');
    expect(change.fields[0]).toMatchObject({ field: '/content', redacted: true });
    const shown = everythingShown(change);
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain('p@ss/word');
    expect(shown).not.toContain(encodeURIComponent('p@ss/word'));
    expect(shown).toContain('SESSION_KEY=(redacted) hmac:');
    await envFileDriver.apply(change, ctx);
    const written = host.text(spec.path)!;
    expect(written).toContain(`SESSION_KEY="${SECRET}"`);
    expect(written).toContain(`DATABASE_URL="postgresql://api:${encodeURIComponent('p@ss/word')}@127.0.0.1:5432/api"`);
    expect(written).toContain('GREETING="say \\"hi\\" \\\\o/"');
  });

  it('an unchanged secret is a noop; a rotated one is an update whose diff shows fingerprints only', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', SECRET);
    const first = await planWith(host, { DB_PASSWORD: 'x1234' });
    await envFileDriver.apply(first.change, first.ctx);
    const owned = inventoryAfter(first.ctx, [resource]);
    expect((await planWith(host, { DB_PASSWORD: 'x1234' }, 'apply', owned)).change.action).toBe('noop');

    host.seedFile('/etc/hostkit/secrets/session', ROTATED);
    const rotated = await planWith(host, { DB_PASSWORD: 'x1234' }, 'apply', owned);
    expect(rotated.change.action).toBe('update');
    expect(rotated.change.disruptive).toBe(true);
    const diff = rotated.change.fields[0]!.diff!;
    expect(diff).toMatch(/^-SESSION_KEY=\(redacted\) hmac:[0-9a-f]{12}$/m);
    expect(diff).toMatch(/^\+SESSION_KEY=\(redacted\) hmac:[0-9a-f]{12}$/m);
    const shown = everythingShown(rotated.change);
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain(ROTATED);
  });

  it('an env file HostKit did not write is shown by size and fingerprint only, never its lines', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', SECRET);
    host.seedFile(spec.path, 'OTHER_TOKEN=CANARY-7f3e9a\n');
    const { change } = await planWith(host, { DB_PASSWORD: 'x1234' });
    expect(change.action).toBe('update');
    expect(change.fields[0]).toMatchObject({ field: '/content', before: expect.stringMatching(/^exists, 26 bytes, fingerprint hmac:[0-9a-f]{12}$/) });
    expect(change.fields[0]!.diff).toBeUndefined();
    expect(everythingShown(change)).not.toContain('CANARY');
    expect(everythingShown(change)).not.toContain('OTHER_TOKEN');
  });

  it("a hand edit of HostKit's env file is shown as changed by hand, not as a diff", async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', SECRET);
    const first = await planWith(host, { DB_PASSWORD: 'x1234' });
    await envFileDriver.apply(first.change, first.ctx);
    host.seedFile(spec.path, host.text(spec.path)! + 'PASTED=CANARY-7f3e9a\n');
    const { change } = await planWith(host, { DB_PASSWORD: 'x1234' }, 'apply', inventoryAfter(first.ctx, [resource]));
    expect(change.fields[0]!.before).toMatch(/^changed by hand, \d+ bytes, fingerprint hmac:/);
    expect(everythingShown(change)).not.toContain('CANARY');
  });

  it('a key the applied spec held as a secret stays redacted in the before-side when the new spec makes it plain', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', SECRET);
    const first = await planWith(host, { DB_PASSWORD: 'x1234' });
    await envFileDriver.apply(first.change, first.ctx);
    const plain: Resource<EnvFileSpec> = { ...resource, spec: { ...spec, environment: { ...spec.environment, SESSION_KEY: 'now-plain' }, secrets: {} } };
    const { change } = await planWith(host, { DB_PASSWORD: 'x1234' }, 'apply', inventoryAfter(first.ctx, [resource]), plain);
    expect(change.fields[0]!.diff).toMatch(/^-SESSION_KEY=\(redacted\) hmac:/m);
    expect(everythingShown(change)).not.toContain(SECRET);
  });

  it('a secret that cannot be read is a warning in a dry run and an error for an apply', async () => {
    const host = new FakeHost();
    const dry = await planWith(host, {}, 'plan');
    expect(dry.change.diagnostics.map((d) => [d.severity, d.summary])).toEqual([
      ['warning', 'secret unavailable'],
      ['warning', 'secret unavailable'],
    ]);
    const real = await planWith(host, {}, 'apply');
    expect(real.change.diagnostics.every((d) => d.severity === 'error')).toBe(true);
    expect(real.change.diagnostics[0]!.detail).toContain('/etc/hostkit/secrets/session does not exist');
  });

  it('refuses a secret with a line break, which would inject another variable', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', 'abc\nLD_PRELOAD=/tmp/x.so\n');
    const { change } = await planWith(host, { DB_PASSWORD: 'x1234' });
    expect(change.diagnostics.map((d) => d.summary)).toContain('invalid secret value');
  });

  it('redacts secret keys in a file found on the host', () => {
    const text = 'A="1"\nSESSION_KEY="abc"\nexport OTHER=2\n';
    const fingerprint = fingerprinter(Buffer.alloc(32, 7));
    const out = redactEnvText(text, new Set(['SESSION_KEY']), fingerprint);
    expect(out).not.toContain('abc');
    expect(out).toContain(`SESSION_KEY=${REDACTED} ${fingerprint('abc')}`);
    expect(out).toContain('A="1"');
  });
});

describe('reconciler/drivers/envfile operations', () => {
  it('create, a rotated secret, a mode change and a removal: write, write, chmod, remove; the JSON plan names them without the secret', async () => {
    const host = new FakeHost();
    host.seedFile('/etc/hostkit/secrets/session', `${SECRET}\n`);
    const created = await planWith(host, { DB_PASSWORD: 'first-password' });
    expect(created.change.ops).toEqual([{ op: 'write' }]);
    await envFileDriver.apply(created.change, created.ctx);

    const rotated = await planWith(host, { DB_PASSWORD: ROTATED });
    expect(rotated.change.ops).toEqual([{ op: 'write' }]);
    const json = toJsonPlan({ host: 'h', repository: 'r', changes: [rotated.change], diagnostics: [], summary: summarize([rotated.change]) });
    expect(json.changes[0]!.ops).toEqual([{ op: 'write' }]);
    for (const secret of [SECRET, ROTATED, 'first-password']) expect(JSON.stringify(json)).not.toContain(secret);

    await host.setOwnership(spec.path, { uid: 0, gid: 0, mode: 0o644 });
    const chmod = await planWith(host, { DB_PASSWORD: 'first-password' });
    expect(chmod.change.ops).toEqual([{ op: 'chmod' }]);
    const observed = (await envFileDriver.observe([resource], chmod.ctx)).get(resource.id);
    expect(envFileDriver.plan({ resource, desired: undefined, observed, orphan: true }).ops).toEqual([{ op: 'remove' }]);
  });
});
