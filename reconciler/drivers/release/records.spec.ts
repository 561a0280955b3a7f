import { describe, expect, it } from 'vitest';
import { FakeHost } from '../../hosts/fake.js';
import {
  appendSwitch,
  currentLink,
  HISTORY_LIMIT,
  historyPath,
  holdDigest,
  MARKER,
  newReleaseId,
  parseReleaseId,
  previousRelease,
  readCurrentRelease,
  readHistory,
  readReleases,
  releaseDir,
  releaseProjects,
  sourceText,
  type ReleaseMarker,
  type Switch,
} from './records.js';
import { C1, C2, STATE, V1, V2, V3 } from '../../../test/support/releases.js';

function marker(id: string, commit: string): ReleaseMarker {
  return {
    source: { git: { url: 'https://example.test/shop.git', ref: 'main' } },
    commit,
    buildDigest: 'b9c8'.padEnd(64, 'f'),
    builtAt: '2026-12-07T10:15:09.000Z',
    buildSeconds: 9.4,
    id,
  };
}

/** A project's tree as the release driver leaves it: v1 and v2 finished, v3 interrupted, current -> v2. */
async function layout(): Promise<FakeHost> {
  const host = new FakeHost();
  host.seedFile(`${releaseDir('shop', V1)}/${MARKER}`, JSON.stringify(marker(V1, C1)));
  host.seedFile(`${releaseDir('shop', V2)}/${MARKER}`, JSON.stringify(marker(V2, C2)));
  host.seedFile(`${releaseDir('shop', V3)}/app.py`, 'print(1)\n');
  host.seedDir(`${releaseDir('shop', '.build-tmp')}`);
  await host.symlink(`releases/${V2}`, currentLink('shop'));
  return host;
}

describe('reconciler/drivers/release/records', () => {
  it('lays a project out under /srv/NAME and its history under STATE/releases', () => {
    expect(releaseDir('shop', V1)).toBe(`/srv/shop/releases/${V1}`);
    expect(currentLink('shop')).toBe('/srv/shop/current');
    expect(historyPath(STATE, 'shop')).toBe('/var/lib/hostkit/releases/shop.json');
  });

  it('reads releases newest first: current marked, an unmarked build unfinished, dot-directories skipped', async () => {
    const host = await layout();
    await appendSwitch(host, STATE, 'shop', { id: V1, at: '2026-12-07T10:15:10Z', run: 'r1' });
    await appendSwitch(host, STATE, 'shop', { id: V2, at: '2026-12-07T11:15:10Z', run: 'r2' });
    const r = await readReleases(host, STATE, 'shop');
    expect(r.current).toBe(V2);
    expect(r.releases.map((x) => [x.id, x.complete, x.current, x.switched?.run])).toEqual([
      [V3, false, false, undefined],
      [V2, true, true, 'r2'],
      [V1, true, false, 'r1'],
    ]);
    expect(r.releases[1]!.marker?.commit).toBe(C2);
    expect(r.history.map((s) => s.id)).toEqual([V1, V2]);
  });

  it('does not take a marker naming another release as this one finished', async () => {
    const host = await layout();
    host.seedFile(`${releaseDir('shop', V3)}/${MARKER}`, JSON.stringify(marker(V2, C2)));
    host.seedFile(`${releaseDir('shop', V1)}/${MARKER}`, '{"source": ');
    const r = await readReleases(host, STATE, 'shop');
    expect(r.releases.map((x) => x.complete)).toEqual([false, true, false]);
  });

  it('reads a project without releases as empty, and a link outside releases/ as stray', async () => {
    const host = new FakeHost();
    expect(await readReleases(host, STATE, 'none')).toEqual({ project: 'none', releases: [], history: [] });
    host.seedDir('/srv/odd');
    await host.symlink('/opt/elsewhere', currentLink('odd'));
    expect(await readReleases(host, STATE, 'odd')).toMatchObject({ strayLink: '/opt/elsewhere', releases: [] });
    expect((await readReleases(host, STATE, 'odd')).current).toBeUndefined();
  });

  it('reads the current release with one readlink and one marker', async () => {
    const host = await layout();
    expect(await readCurrentRelease(host, 'shop')).toEqual({ id: V2, marker: marker(V2, C2) });
    await host.symlink(`/srv/shop/releases/${V3}`, currentLink('shop'));
    expect(await readCurrentRelease(host, 'shop')).toEqual({ id: V3 });
    expect(await readCurrentRelease(host, 'other')).toBeUndefined();
  });

  it('appends switches newest last, root-only, keeping the newest HISTORY_LIMIT', async () => {
    const host = new FakeHost();
    expect(await readHistory(host, STATE, 'shop')).toEqual([]);
    await appendSwitch(host, STATE, 'shop', { id: V1, at: 't1', run: 'r1' });
    await appendSwitch(host, STATE, 'shop', { id: V2, at: 't2' });
    expect(await readHistory(host, STATE, 'shop')).toEqual([
      { id: V1, at: 't1', run: 'r1' },
      { id: V2, at: 't2' },
    ]);
    expect(JSON.parse(host.text(historyPath(STATE, 'shop'))!)).toEqual({
      switches: [
        { id: V1, at: 't1', run: 'r1' },
        { id: V2, at: 't2' },
      ],
    });
    expect(await host.stat(historyPath(STATE, 'shop'))).toMatchObject({ uid: 0, mode: 0o600 });
    expect(await host.stat(`${STATE}/releases`)).toMatchObject({ uid: 0, mode: 0o700 });
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) await appendSwitch(host, STATE, 'shop', { id: `x${i}`, at: `t${i}` });
    const history = await readHistory(host, STATE, 'shop');
    expect(history).toHaveLength(HISTORY_LIMIT);
    expect(history.at(-1)!.id).toBe(`x${HISTORY_LIMIT + 4}`);
  });

  it('reads a broken history file as empty and drops entries that are not switches', async () => {
    const host = new FakeHost({
      [historyPath(STATE, 'a')]: 'not json',
      [historyPath(STATE, 'b')]: JSON.stringify({ switches: [{ id: V1, at: 't' }, { id: 3 }, null] }),
    });
    expect(await readHistory(host, STATE, 'a')).toEqual([]);
    expect(await readHistory(host, STATE, 'b')).toEqual([{ id: V1, at: 't' }]);
  });

  const s = (...ids: string[]): Switch[] => ids.map((id, i) => ({ id, at: `t${i}` }));
  it.each<[string, Switch[], string | undefined, string | undefined]>([
    ['the release switched to before the current one', s('A', 'B', 'C'), 'C', 'B'],
    ['by history, not by id order: back on A after C', s('A', 'B', 'C', 'A'), 'A', 'C'],
    ['a repeated switch to the current one is skipped', s('A', 'B', 'B'), 'B', 'A'],
    ['current switched to earlier than the newest entry (the newest was undone by hand)', s('A', 'B', 'C'), 'B', 'A'],
    ['current missing from the history: the newest other one', s('A', 'B'), 'Z', 'B'],
    ['only one release ever served', s('A'), 'A', undefined],
    ['no current release', s('A', 'B'), undefined, undefined],
    ['no history', [], 'A', undefined],
  ])('previousRelease: %s', (_what, history, current, expected) => {
    expect(previousRelease(history, current)).toBe(expected);
  });

  it('makes ids of time, 12 hex of the content and 4 of the build digest, sorting by time', () => {
    const a = newReleaseId(new Date('2026-12-07T10:15:00.123Z'), C1, 'b9c8d7');
    expect(a).toBe('20261207T101500Z-1a2b3c4d5e6f-b9c8');
    const ids = [
      newReleaseId(new Date('2027-01-01T00:00:00Z'), C1, 'ffff'),
      newReleaseId(new Date('2026-12-07T10:15:01Z'), C1, '0000'),
      a,
      newReleaseId(new Date('2026-12-07T09:59:59Z'), 'f'.repeat(64), 'abcd'),
    ];
    expect([...ids].sort()).toEqual([ids[3], ids[2], ids[1], ids[0]]);
    expect(parseReleaseId(a)).toEqual({ createdAt: new Date('2026-12-07T10:15:00Z'), content: '1a2b3c4d5e6f', build: 'b9c8' });
    expect(parseReleaseId('latest')).toBeUndefined();
    expect(() => newReleaseId(new Date(), 'main', 'abcd')).toThrow(/commit id or sha256/);
    expect(() => newReleaseId(new Date(), C1, 'xyz')).toThrow(/build digest/);
  });

  it('digests a hold from source, build, keep and shared only, whatever the key order', () => {
    const spec = { source: { git: { url: 'u', ref: 'main' } }, build: [{ command: ['make'] }], keep: 5, shared: ['uploads'] };
    const d = holdDigest(spec);
    expect(holdDigest({ shared: ['uploads'], keep: 5, build: [{ command: ['make'] }], source: { git: { ref: 'main', url: 'u' } } })).toBe(d);
    expect(holdDigest({ ...spec, restarts: ['hk-shop.service'] } as typeof spec)).toBe(d);
    expect(holdDigest({ ...spec, source: { git: { url: 'u', ref: 'v2' } } })).not.toBe(d);
    expect(holdDigest({ ...spec, keep: 2 })).not.toBe(d);
    expect(d).toMatch(/^[0-9a-f]{16}$/);
  });

  it('shows a source without credentials', () => {
    expect(sourceText({ git: { url: 'https://deploy:s3cret@example.test/shop.git', ref: 'v1.2' } })).toBe('https://example.test/shop.git v1.2');
    expect(sourceText({ git: { url: 'git@example.test:shop.git', ref: 'main' } })).toBe('git@example.test:shop.git main');
    expect(sourceText({ archive: { url: 'file:///srv/drop/shop.tar.gz', sha256: 'e'.repeat(64) } })).toBe('file:///srv/drop/shop.tar.gz sha256:eeeeeeeeeeee');
  });

  it('finds the projects with a history or a releases directory', async () => {
    const host = await layout();
    await appendSwitch(host, STATE, 'blog', { id: V1, at: 't' });
    host.seedDir('/srv/plain');
    expect(await releaseProjects(host, STATE)).toEqual(['blog', 'shop']);
  });
});
