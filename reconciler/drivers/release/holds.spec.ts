import { describe, expect, it } from 'vitest';
import { recordFailure, resume, safetyPath, safetyStatus } from '../../apply/quarantine.js';
import { FakeHost } from '../../hosts/fake.js';
import { heldRelease, holdBinds, holdRelease, holdText, releaseHold } from './holds.js';
import { holdDigest } from './records.js';

const STATE = '/var/lib/hostkit';
const V1 = '20261207T101500Z-1a2b3c4d5e6f-b9c8';
const SPEC = { source: { git: { url: 'https://example.test/shop.git', ref: 'v3' } }, build: [], keep: 5, shared: [] };
const AT = new Date('2026-12-07T12:00:00Z');

describe('reconciler/drivers/release/holds', () => {
  it('holds a project on a release in STATE/safety.json, beside quarantine and pauses, until released', async () => {
    const host = new FakeHost();
    await recordFailure(host, STATE, { commit: 'c'.repeat(40), reason: 'health/shop failed', projects: [{ name: 'shop', fingerprint: 'f' }] });
    const entry = await holdRelease(host, STATE, { project: 'shop', release: V1, specDigest: holdDigest(SPEC), at: AT });
    expect(entry).toEqual({ project: 'shop', release: V1, at: '2026-12-07T12:00:00.000Z', specDigest: holdDigest(SPEC) });
    expect(await heldRelease(host, STATE, 'shop')).toEqual(entry);
    expect(await heldRelease(host, STATE, 'blog')).toBeUndefined();
    const status = await safetyStatus(host, STATE);
    expect(status.held).toEqual([entry]);
    expect(status.quarantined).toHaveLength(1);
    expect(JSON.parse(host.text(safetyPath(STATE))!).held.shop.release).toBe(V1);

    // The run that switched is recorded by holding again: the entry is replaced, not added.
    await holdRelease(host, STATE, { project: 'shop', release: V1, specDigest: holdDigest(SPEC), at: AT, run: 'r9' });
    expect((await safetyStatus(host, STATE)).held).toEqual([{ ...entry, run: 'r9' }]);

    expect(await releaseHold(host, STATE, 'shop')).toEqual({ ...entry, run: 'r9' });
    expect(await releaseHold(host, STATE, 'shop')).toBeUndefined();
    expect((await safetyStatus(host, STATE)).held).toEqual([]);
    expect((await safetyStatus(host, STATE)).quarantined).toHaveLength(1);
  });

  it('reads a safety file from before holds existed', async () => {
    const host = new FakeHost({ [safetyPath(STATE)]: JSON.stringify({ version: 1, quarantined: {}, failures: {}, paused: {} }) });
    expect(await safetyStatus(host, STATE)).toEqual({ quarantined: [], paused: [], held: [] });
    expect(await heldRelease(host, STATE, 'shop')).toBeUndefined();
  });

  it('hostkit resume lifts holds: one project with --project, every one without, none with --commit', async () => {
    const host = new FakeHost();
    for (const project of ['shop', 'blog']) await holdRelease(host, STATE, { project, release: V1, specDigest: 'd', at: AT });
    expect((await resume(host, STATE, { commit: 'abc' })).held).toEqual([]);
    expect((await resume(host, STATE, { project: 'shop' })).held.map((h) => h.project)).toEqual(['shop']);
    expect((await safetyStatus(host, STATE)).held.map((h) => h.project)).toEqual(['blog']);
    expect((await resume(host, STATE)).held.map((h) => h.project)).toEqual(['blog']);
    expect((await safetyStatus(host, STATE)).held).toEqual([]);
  });

  it('binds while the release spec digests alike; a commit changing source, build, keep or shared ends it', () => {
    const hold = { project: 'shop', release: V1, at: AT.toISOString(), specDigest: holdDigest(SPEC) };
    expect(holdBinds(hold, SPEC)).toBe(true);
    expect(holdBinds(hold, { ...SPEC, source: { git: { url: 'https://example.test/shop.git', ref: 'v4' } } })).toBe(false);
    expect(holdBinds(hold, { ...SPEC, build: [{ command: ['make'] }] })).toBe(false);
    expect(holdBinds(hold, { ...SPEC, keep: 2 })).toBe(false);
    expect(holdBinds(hold, { ...SPEC, shared: ['uploads'] })).toBe(false);
    expect(holdBinds(undefined, SPEC)).toBe(false);
  });

  it('says what a hold is and what ends it', () => {
    expect(holdText({ project: 'shop', release: V1, at: '2026-12-07T12:00:00.000Z', specDigest: 'd' })).toBe(
      `held: project shop on release ${V1} since 2026-12-07T12:00:00.000Z (rollback --to); a commit that changes its source or \`hostkit resume\` releases it`,
    );
  });
});
