import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { heldRelease, holdRelease, safetyStatus } from '../apply/quarantine.js';
import { isHostKitError } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import type { ReconcileInput, ReconcileOutcome } from '../engine.js';
import { FakeHost } from '../hosts/fake.js';
import { appendSwitch, currentLink, holdDigest, MARKER, releaseDir, type ReleaseMarker } from '../drivers/release/records.js';
import { collectReleases, renderReleasesText, switchToRelease } from './releases.js';
import { rollback } from './safety.js';
import { C1, C2, STATE, V1, V2, V3 } from '../../test/support/releases.js';

const SPEC = { project: 'shop', source: { git: { url: 'https://example.test/shop.git', ref: 'v2' } }, build: [], keep: 5, shared: [], restarts: [] };

function marker(id: string, commit: string, url = 'https://deploy:s3cret@example.test/shop.git'): ReleaseMarker {
  return { source: { git: { url, ref: 'main' } }, commit, buildDigest: 'b9c8'.padEnd(64, 'f'), builtAt: '2026-12-07T10:15:09.000Z', buildSeconds: 9.4, id };
}

/** shop: v1 and v2 finished, v3 interrupted, current -> v2 switched by run r2 after v1 by r1. */
async function layout(): Promise<FakeHost> {
  const host = new FakeHost();
  host.seedFile(`${releaseDir('shop', V1)}/${MARKER}`, JSON.stringify(marker(V1, C1)));
  host.seedFile(`${releaseDir('shop', V2)}/${MARKER}`, JSON.stringify(marker(V2, C2)));
  host.seedDir(releaseDir('shop', V3));
  await host.symlink(`releases/${V2}`, currentLink('shop'));
  await appendSwitch(host, STATE, 'shop', { id: V1, at: '2026-12-07T10:15:10.000Z', run: 'r1' });
  await appendSwitch(host, STATE, 'shop', { id: V2, at: '2026-12-07T11:15:10.000Z', run: 'r2' });
  return host;
}

describe('reconciler/commands/releases', () => {
  describe('hostkit releases', () => {
    it('lists releases newest first with the current, previous and unfinished ones marked, full ids in JSON and no credentials', async () => {
      const host = await layout();
      const doc = await collectReleases(host, STATE);
      expect(doc.projects.map((p) => [p.project, p.current])).toEqual([['shop', V2]]);
      const rows = doc.projects[0]!.releases;
      expect(rows.map((r) => [r.id, r.current, r.previous, r.complete, r.run])).toEqual([
        [V3, false, false, false, undefined],
        [V2, true, false, true, 'r2'],
        [V1, false, true, true, 'r1'],
      ]);
      expect(rows[1]).toMatchObject({ commit: C2, builtAt: '2026-12-07T10:15:09.000Z', buildSeconds: 9.4, switchedAt: '2026-12-07T11:15:10.000Z' });
      expect(rows[1]!.source).toEqual({ git: { url: 'https://example.test/shop.git', ref: 'main' } });
      expect(JSON.stringify(doc)).not.toContain('s3cret');

      const text = renderReleasesText(doc);
      expect(text).toBe(
        [
          `shop  current ${V2}`,
          `    ${V3}  -             unfinished                                                                   an interrupted build: never switched to, removed on the next run`,
          `  * ${V2}  9f8e7d6c5b4a  built 2026-12-07T10:15:09Z in 9.4s  switched 2026-12-07T11:15:10Z by run r2  https://example.test/shop.git main`,
          `    ${V1}  1a2b3c4d5e6f  built 2026-12-07T10:15:09Z in 9.4s  switched 2026-12-07T10:15:10Z by run r1  https://example.test/shop.git main  (previous)`,
          '',
        ].join('\n'),
      );
    });

    it('shows a hold, and says so when there are no releases', async () => {
      const host = await layout();
      await holdRelease(host, STATE, { project: 'shop', release: V1, specDigest: 'd', at: new Date('2026-12-07T12:00:00Z'), run: 'r3' });
      const doc = await collectReleases(host, STATE, 'shop');
      expect(doc.projects[0]!.held).toEqual({ release: V1, at: '2026-12-07T12:00:00.000Z', run: 'r3' });
      expect(renderReleasesText(doc)).toContain(
        `  held on ${V1} since 2026-12-07T12:00:00Z (rollback --to); a commit that changes its source or \`hostkit resume --project shop\` releases it`,
      );
      expect(renderReleasesText(await collectReleases(new FakeHost(), STATE))).toBe(
        'No releases on this host (no /srv/NAME/releases, no switch history in /var/lib/hostkit/releases).\n',
      );
    });
  });

  describe('rollback --project --to', () => {
    const log = pino({ level: 'silent' });
    const input = (host: FakeHost): ReconcileInput => ({ host, hostName: 'web-1', repoDir: '/config', dryRun: false, log, redactor: new Redactor() });
    const resources = [
      { id: 'release/shop', kind: 'release', project: 'shop', spec: SPEC },
      { id: 'unit/hk-shop.service', kind: 'unit', project: 'shop', spec: {} },
      { id: 'envfile/shop', kind: 'envfile', project: 'shop', spec: {} },
      { id: 'unit/hk-blog.service', kind: 'unit', project: 'blog', spec: {} },
    ];
    const planned = { plan: { diagnostics: [], changes: [] }, resources, context: { stateDirectory: STATE } };
    const dryOutcome = { stage: 'planned', repo: {}, planned } as unknown as ReconcileOutcome;
    const applied = (status: 'applied' | 'rolled-back', run = 'r9') =>
      ({
        stage: 'applied',
        repo: {},
        planned,
        result: { status, run, steps: [], ...(status === 'rolled-back' ? { failed: { id: 'health/shop', error: 'HTTP 500 from /healthz' } } : {}) },
      }) as unknown as ReconcileOutcome;

    /** An engine that plans, then (apply) records what it was asked and does what `onApply` does. */
    function engine(host: FakeHost, onApply: (i: ReconcileInput) => Promise<ReconcileOutcome>) {
      const asked: ReconcileInput[] = [];
      const run = vi.fn(async (i: ReconcileInput) => {
        asked.push(i);
        return i.dryRun ? dryOutcome : onApply(i);
      });
      return { run, asked };
    }

    it('holds the project with the digest of its release spec, applies only its release and units, and records the run on the hold', async () => {
      const host = await layout();
      let holdDuringApply: unknown;
      const e = engine(host, async () => {
        holdDuringApply = await heldRelease(host, STATE, 'shop');
        await host.symlink(`releases/${V1}`, currentLink('shop')); // what the release driver does with the hold
        return applied('applied');
      });
      const result = await switchToRelease(input(host), { project: 'shop', to: V1 }, e.run);
      expect(e.asked.map((i) => i.dryRun)).toEqual([true, false]);
      const apply = e.asked[1]!;
      expect([...apply.only!].sort()).toEqual(['release/shop', 'unit/hk-shop.service']);
      expect(apply).toMatchObject({ operatorRun: true, stateDirectory: STATE, lockCommand: `hostkit rollback --project shop --to ${V1}` });
      expect(holdDuringApply).toMatchObject({ project: 'shop', release: V1, specDigest: holdDigest(SPEC) });
      expect(result).toMatchObject({ status: 'switched', project: 'shop', release: V1, run: 'r9' });
      expect(await heldRelease(host, STATE, 'shop')).toMatchObject({ release: V1, run: 'r9', specDigest: holdDigest(SPEC) });
    });

    it('refuses a release that is not a complete kept one, naming those that are, before holding or applying anything', async () => {
      const host = await layout();
      for (const to of [V3, '20200101T000000Z-000000000000-0000']) {
        const e = engine(host, () => Promise.reject(new Error('must not apply')));
        const error = await switchToRelease(input(host), { project: 'shop', to }, e.run).catch((x: unknown) => x);
        expect(isHostKitError(error) && error.code).toBe('RELEASE_NOT_KEPT');
        expect((error as Error).message).toContain('Project shop');
        expect((error as Error).message).toContain(`Its complete releases: ${V2} (current), ${V1}`);
        expect(e.asked.map((i) => i.dryRun)).toEqual([true]);
      }
      expect((await safetyStatus(host, STATE)).held).toEqual([]);
    });

    it('refuses a project without a source, and one not on the host', async () => {
      const host = await layout();
      const e = engine(host, () => Promise.reject(new Error('must not apply')));
      const noSource = await switchToRelease(input(host), { project: 'blog', to: V1 }, e.run).catch((x: unknown) => x);
      expect(isHostKitError(noSource) && noSource.code).toBe('RELEASE_NO_SOURCE');
      const unknown = await switchToRelease(input(host), { project: 'nope', to: V1 }, e.run).catch((x: unknown) => x);
      expect(isHostKitError(unknown) && unknown.code).toBe('UNKNOWN_PROJECT');
      expect((unknown as Error).message).toContain('its projects: blog, shop');
    });

    it('removes the hold when the run fails its health check and is rolled back', async () => {
      const host = await layout();
      const e = engine(host, () => Promise.resolve(applied('rolled-back', 'r10')));
      const result = await switchToRelease(input(host), { project: 'shop', to: V1 }, e.run);
      expect(result).toMatchObject({ status: 'rolled-back', run: 'r10', failed: { id: 'health/shop' } });
      expect(await heldRelease(host, STATE, 'shop')).toBeUndefined();
    });

    it('removes the hold when the run leaves current elsewhere (a driver that ignores holds) or throws', async () => {
      const host = await layout();
      const ignored = await switchToRelease(input(host), { project: 'shop', to: V1 }, engine(host, () => Promise.resolve(applied('applied'))).run).catch(
        (x: unknown) => x,
      );
      expect(isHostKitError(ignored) && ignored.code).toBe('RELEASE_NOT_SWITCHED');
      expect((ignored as Error).message).toContain(`left current on ${V2}`);
      expect(await heldRelease(host, STATE, 'shop')).toBeUndefined();
      const thrown = await switchToRelease(input(host), { project: 'shop', to: V1 }, engine(host, () => Promise.reject(new Error('host went away'))).run).catch(
        (x: unknown) => x,
      );
      expect((thrown as Error).message).toBe('host went away');
      expect(await heldRelease(host, STATE, 'shop')).toBeUndefined();
    });
  });

  describe('rollback argument errors', () => {
    afterEach(() => vi.restoreAllMocks());
    it.each([
      [{ project: 'shop' }, '--project NAME needs --to ID'],
      [{ to: V1 }, '--to ID needs --project NAME'],
      [{ project: 'shop', to: V1, last: true }, 'takes neither --last, --run, --dry-run nor --with-data'],
      [{ project: 'shop', to: V1, dryRun: true }, 'takes neither --last, --run, --dry-run nor --with-data'],
      [{}, 'give exactly one of --last, --run ID, or --project NAME --to ID'],
    ])('%j is a usage error (exit 1)', async (opts, message) => {
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      expect(await rollback({ output: 'text', root: '/nonexistent-root', ...opts })).toBe(1);
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain(message);
    });
  });
});
