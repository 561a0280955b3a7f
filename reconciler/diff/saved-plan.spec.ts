import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { directoryManifest, envFileManifest, fileManifest, HOST_YAML, TEST_HOST, TESTER_ACCOUNT, writeRepo } from '../../test/support/fixtures.js';
import { fakeSystemd } from '../../test/support/fake-systemd.js';
import { manifestYaml, type ManifestInput } from '../../test/support/manifests.js';
import { approveSaved } from '../commands/saved-plan.js';
import { HostKitError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { fingerprintKeyPath } from '../core/secrets.js';
import { reconcileHost, type ReconcileInput } from '../engine.js';
import { FakeHost } from '../hosts/fake.js';
import { pendingChanges } from './model.js';
import { canonicalJson, savePlan, type SavedPlan } from './saved-plan.js';

const STATE = '/var/lib/hostkit';
const SECRET = 'tok-S3cret-4a9f1c77e2';
const CANARY = 'CANARY-unmanaged-5e1d0b';
const [C1, C2, C3] = ['1', '2', '3'].map((c) => c.repeat(40)) as [string, string, string];
const UNIT = 'unit/hk-web.service';

/** The manifests: tester's /srv/app with a file and an env file (TOKEN from HK_TEST_TOKEN), /srv/motd, a service. */
function manifests(o: { conf?: string; motd?: string; extra?: boolean } = {}): Record<string, string> {
  const docs: ManifestInput[] = [
    TESTER_ACCOUNT,
    directoryManifest('app', '/srv/app'),
    fileManifest('conf', '/srv/app/app.conf', o.conf ?? 'x=1\n'),
    fileManifest('motd', '/srv/motd', o.motd ?? 'hello\n', '0644'),
    envFileManifest('HK_TEST_TOKEN'),
    { kind: 'Unit', name: 'web', on: [TEST_HOST], spec: { command: ['/bin/sleep', 'infinity'] } },
    ...(o.extra ? [fileManifest('extra', '/srv/app/extra.conf', 'e=1\n')] : []),
  ];
  return { 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': manifestYaml(...docs) };
}

/** A fake test-1 with systemd, and a run of the engine on it (the CLI's reconcile, without the CLI). */
function world() {
  const host = new FakeHost();
  host.machineName = TEST_HOST;
  const units = fakeSystemd(host);
  const run = async (files: Record<string, string>, commit: string, o: Partial<ReconcileInput> & { env?: NodeJS.ProcessEnv } = {}) =>
    reconcileHost({
      repoDir: await writeRepo(files),
      hostName: TEST_HOST,
      host,
      log: silentLogger(),
      commit,
      dryRun: false,
      env: { HK_TEST_TOKEN: SECRET },
      ...o,
    });
  /** `hostkit plan --out`: the saved plan of `files` at `commit`. */
  const save = async (files: Record<string, string>, commit: string, env?: NodeJS.ProcessEnv): Promise<SavedPlan> => {
    const outcome = await run(files, commit, { dryRun: true, savedPlan: 'save', ...(env ? { env } : {}) });
    if (outcome.stage !== 'planned') throw new Error(`expected a plan, got ${outcome.stage}`);
    return JSON.parse(JSON.stringify(savePlan(outcome.planned, outcome.repo.manifests, { hostkitVersion: 'test', createdAt: new Date() }))) as SavedPlan;
  };
  /** `hostkit reconcile --plan`: applies `files` at `commit` only if the saved plan is still what they plan. */
  const applySaved = (saved: SavedPlan, files: Record<string, string>, commit: string, env?: NodeJS.ProcessEnv) =>
    run(files, commit, { approve: approveSaved(saved, 'plan.json', 'repo'), ...(env ? { env } : {}) });
  /** Every path with its mode and bytes (the run lock's own record aside), and each unit's state. */
  const snapshot = () => ({
    paths: Object.fromEntries(
      host
        .paths()
        .filter((p) => !p.startsWith(`${STATE}/run.lock`))
        .map((p) => [p, `${host.text(p)}`]),
    ),
    units: JSON.stringify([...units]),
  });
  return { host, units, run, save, applySaved, snapshot };
}

type World = ReturnType<typeof world>;

/** The error a refused apply threw. */
async function refusal(pending: Promise<unknown>): Promise<HostKitError> {
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof HostKitError)) throw new Error(`expected a HostKitError, got ${String(error)}`);
  return error;
}

describe('reconciler/diff/saved-plan', () => {
  it('canonicalJson: one text whatever the key order; bytes, Maps and Sets by content; functions and undefined left out; cycles refused', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: undefined, c: Buffer.from('x') }] })).toBe(canonicalJson({ a: [1, { c: Buffer.from('x') }], b: 1 }));
    expect(canonicalJson({ f: () => 1, m: new Map([['k', 1]]) })).toBe('{"m":{"$map":[["k",1]]}}');
    expect(canonicalJson(new Set([2, 1]))).toBe(canonicalJson(new Set([1, 2])));
    expect(canonicalJson(Buffer.from('a'))).not.toBe(canonicalJson(Buffer.from('b')));
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonicalJson(loop)).toThrow('refers to itself');
  });

  it('a plan saved, then applied, applies exactly its changes and leaves the host as a direct reconcile does', async () => {
    const viaPlan = world();
    const direct = world();
    for (const w of [viaPlan, direct]) await w.run(manifests(), C1);
    const saved = await viaPlan.save(manifests({ conf: 'x=2\n', extra: true }), C2);
    expect(saved.plan.changes.filter((c) => c.ops.length > 0).map((c) => `${c.action} ${c.id}`)).toEqual([
      'update file/srv/app/app.conf',
      'create file/srv/app/extra.conf',
    ]);
    const applied = await viaPlan.applySaved(saved, manifests({ conf: 'x=2\n', extra: true }), C2);
    const reconciled = await direct.run(manifests({ conf: 'x=2\n', extra: true }), C2);
    if (applied.stage !== 'applied' || reconciled.stage !== 'applied') throw new Error(`not applied: ${applied.stage}, ${reconciled.stage}`);
    expect(applied.result.steps.map((s) => s.id)).toEqual(pendingChanges(applied.planned.plan).map((c) => c.id));
    expect(applied.result.steps.map((s) => s.id)).toEqual(saved.plan.changes.filter((c) => c.ops.length > 0).map((c) => c.id));
    // Run ids and times aside, the same host.
    const managed = (w: World) => Object.fromEntries(Object.entries(w.snapshot().paths).filter(([p]) => !p.startsWith(STATE)));
    expect(managed(viaPlan)).toEqual(managed(direct));
    expect(viaPlan.host.text('/srv/app/app.conf')).toBe('x=2\n');
  });

  // Between `plan --out` (commit C2, conf x=2) and `reconcile --plan`: what changed, and what the refusal names.
  it.each<[string, (w: World) => Promise<{ files?: Record<string, string>; commit?: string; env?: NodeJS.ProcessEnv } | void>, string, object]>([
    [
      'a managed file edited on the host',
      async (w) => w.host.writeFile('/srv/motd', 'edited\n', { uid: 0, gid: 0, mode: 0o644 }),
      'file/srv/motd (observed state, planned change)',
      { resources: [{ id: 'file/srv/motd', why: ['observed state', 'planned change'] }] },
    ],
    [
      'a unit stopped',
      async (w) => void w.units.set('hk-web.service', { active: 'inactive', sub: 'dead', invocation: 0 }),
      `${UNIT} (observed state`,
      { resources: [{ id: UNIT, why: ['observed state', 'planned change'] }] },
    ],
    [
      'a secret value changed',
      async () => ({ env: { HK_TEST_TOKEN: 'another-token-value-77' } }),
      'envfile/srv/app/app.env (desired state, planned change)',
      { resources: [{ id: 'envfile/srv/app/app.env', why: ['desired state', 'planned change'] }] },
    ],
    [
      'a new commit that changes a manifest',
      async () => ({ files: manifests({ conf: 'x=2\n', motd: 'new motd\n' }), commit: C3 }),
      `the plan was made at commit ${C2}, and repo is at ${C3} now`,
      { commit: { saved: C2, now: C3 }, resources: [{ id: 'file/srv/motd', why: ['desired state', 'planned change'] }] },
    ],
    [
      'an uncommitted edit at the same commit',
      async () => ({ files: manifests({ conf: 'x=3\n' }) }),
      'differ from those the plan read at the same commit',
      { manifests: true, resources: [{ id: 'file/srv/app/app.conf', why: ['desired state', 'planned change'] }] },
    ],
    [
      "the host's fingerprint key replaced",
      async (w) => w.host.writeFile(fingerprintKeyPath(STATE), Buffer.alloc(32, 7), { uid: 0, gid: 0, mode: 0o600 }),
      "the host's fingerprint key (STATE/fingerprint.key) is not the one the plan was made with",
      { key: true },
    ],
  ])('stale when %s: refused (PLAN_STALE) naming it, and nothing is applied', async (_what, change, message, data) => {
    const w = world();
    await w.run(manifests(), C1);
    const saved = await w.save(manifests({ conf: 'x=2\n' }), C2);
    const next = (await change(w)) ?? {};
    const before = w.snapshot();
    const calls = w.host.calls.length;
    const error = await refusal(w.applySaved(saved, next.files ?? manifests({ conf: 'x=2\n' }), next.commit ?? C2, next.env));
    expect(error.code).toBe('PLAN_STALE');
    expect(error.message).toContain(message);
    expect(error.message).toContain('Nothing was applied.');
    expect(error.data).toMatchObject(data);
    expect(w.snapshot()).toEqual(before);
    expect(w.host.calls.slice(calls).filter((c) => c.file === 'systemctl' && !['show', 'list-units'].includes(c.args[0]!))).toEqual([]);
  });

  it('on a host never applied to, saving keeps the fingerprint key (its only write), and the plan applies', async () => {
    const w = world();
    const saved = await w.save(manifests(), C1);
    expect(w.host.writes).toEqual([STATE, fingerprintKeyPath(STATE)]);
    const applied = await w.applySaved(saved, manifests(), C1);
    expect(applied.stage === 'applied' && applied.result.status).toBe('applied');
  });

  it('holds no secret value and not a byte of a host file HostKit did not write, in any form', async () => {
    const w = world();
    w.host.seedFile('/srv/motd', `${CANARY}\n`);
    const text = JSON.stringify(await w.save(manifests(), C1));
    const forms = (v: string) => [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('hex'), createHash('sha256').update(v).digest('hex')];
    for (const form of [...forms(SECRET), ...forms(`${CANARY}\n`), ...forms(CANARY)]) expect(text).not.toContain(form);
    // What the plan says of them instead: the env file's secret by reference, the foreign file by size and fingerprint.
    expect(text).toContain('TOKEN=(redacted) hmac:');
    expect(text).toMatch(/exists, 24 bytes, fingerprint hmac:[0-9a-f]{12}/);
  });
});
