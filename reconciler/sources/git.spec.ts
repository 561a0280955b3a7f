import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gitRemote, type GitRemote } from '../../test/support/git-remote.js';
import { silentLogger } from '../core/log.js';
import { GitSource } from './git.js';
import { nextDelay, startPoller } from './poll.js';

describe('reconciler/sources/git', () => {
  let remote: GitRemote | undefined;
  let state: string | undefined;
  afterEach(async () => {
    await remote?.cleanup();
    if (state) await rm(state, { recursive: true, force: true });
  });

  async function setup() {
    remote = await gitRemote();
    state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-source-'));
    return new GitSource({ url: remote.bare, branch: 'main', stateDirectory: state, log: silentLogger() });
  }

  it('reads manifests at a commit: uncommitted and later changes in a working tree are not seen', async () => {
    // The source is the working clone itself (a non-bare repository with a dirty tree).
    const source = await setup();
    const first = await remote!.push({ 'hosts/a.yaml': 'kind: Host # one\n', 'projects/p.yml': 'p: 1\n', 'README.md': 'not a manifest\n' });
    const work = new GitSource({ url: remote!.work, branch: 'main', stateDirectory: path.join(state!, 'w'), log: silentLogger() });
    await writeFile(path.join(remote!.work, 'hosts/a.yaml'), 'kind: Host # edited, not committed\n');
    await writeFile(path.join(remote!.work, 'projects/new.yaml'), 'untracked: true\n');
    expect(await work.fetch()).toBe(first);
    const snap = await work.snapshot(first);
    expect(await readFile(path.join(snap, 'hosts/a.yaml'), 'utf8')).toBe('kind: Host # one\n');
    expect((await readdir(path.join(snap, 'projects'))).sort()).toEqual(['p.yml']);
    await expect(readFile(path.join(snap, 'README.md'))).rejects.toThrow(); // only manifests are materialized
    // A later commit does not change the earlier snapshot.
    const second = await remote!.push({ 'hosts/a.yaml': 'kind: Host # two\n', 'projects/new.yaml': undefined });
    expect(await source.fetch()).toBe(second);
    expect(await readFile(path.join(await source.snapshot(second), 'hosts/a.yaml'), 'utf8')).toBe('kind: Host # two\n');
    expect(await readFile(path.join(await source.snapshot(first), 'hosts/a.yaml'), 'utf8')).toBe('kind: Host # one\n');
    expect(await source.changedFiles(first, second)).toEqual(['hosts/a.yaml']);
  });

  it('refuses something that is not a commit id', async () => {
    const source = await setup();
    await expect(source.snapshot('main')).rejects.toThrow(/40-hex commit id/);
  });

  it('a poll of an unchanged remote costs one git process (ls-remote) and fetches nothing', async () => {
    const source = await setup();
    const head = await remote!.push({ 'hosts/a.yaml': 'a: 1\n' });
    expect(await source.fetch()).toBe(head);
    const changes: string[] = [];
    const poller = startPoller({
      intervalMs: 3_600_000,
      remoteHead: () => source.remoteHead(),
      lastSeen: () => head,
      onChange: (c) => changes.push(c),
      log: silentLogger(),
    });
    try {
      const before = source.processes;
      expect(await poller.poll()).toBe(false);
      expect(source.processes - before).toBe(1);
      expect(changes).toEqual([]);
      // A new commit is seen, and handed on (the loop fetches it).
      const next = await remote!.push({ 'hosts/a.yaml': 'a: 2\n' });
      expect(await poller.poll()).toBe(true);
      expect(changes).toEqual([next]);
    } finally {
      poller.stop();
    }
  });

  it('a remote that does not answer is a failed poll, not a crash', async () => {
    const source = new GitSource({ url: '/nonexistent/repo.git', branch: 'main', stateDirectory: os.tmpdir(), log: silentLogger() });
    const poller = startPoller({
      intervalMs: 3_600_000,
      remoteHead: () => source.remoteHead(),
      lastSeen: () => undefined,
      onChange: () => undefined,
      log: silentLogger(),
    });
    expect(await poller.poll()).toBe(false);
    expect(await source.reachable()).toBe(false);
    poller.stop();
  });

  it('polls wait the interval plus up to 10% jitter', () => {
    expect(nextDelay(60_000, 0.1, () => 0)).toBe(60_000);
    expect(nextDelay(60_000, 0.1, () => 0.999)).toBe(65_994);
  });
});
