import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../reconciler/core/log.js';
import { ReportWriter } from '../reconciler/report/writeback.js';
import { gitRemote, type GitRemote } from './support/git-remote.js';

// Two agents (two hosts) pushing their reports to one branch of a real bare
// repository at the same time: every push either lands or is redone on the
// new tip with only that host's files, so no report is lost.
describe('reconciler/report/writeback with real git', () => {
  let remote: GitRemote | undefined;
  let state: string | undefined;
  afterEach(async () => {
    await remote?.cleanup();
    if (state) await rm(state, { recursive: true, force: true });
  });

  it('two hosts pushing to the same branch at the same time both land, round after round', async () => {
    remote = await gitRemote();
    await remote.push({ 'hosts/a.yaml': 'a: 1\n' });
    state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-reports-'));
    const writer = (host: string) =>
      new ReportWriter({
        url: remote!.bare,
        branch: 'hostkit-status',
        dir: path.join(state!, host),
        author: { name: host, email: `${host}@test` },
        log: silentLogger(),
        baseDelayMs: 20,
        maxAttempts: 12,
      });
    const hosts = ['web-1', 'web-2'];
    const writers = hosts.map(writer);
    let retried = 0;
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.all(
        writers.map((w, i) =>
          w.write(
            { [`status/${hosts[i]}.json`]: JSON.stringify({ round }) + '\n', [`drift/${hosts[i]}.md`]: round % 2 ? `drift ${round}\n` : undefined },
            `${hosts[i]}: round ${round}`,
          ),
        ),
      );
      for (const r of results) expect(r.changed).toBe(true);
      retried += results.filter((r) => r.attempts > 1).length;
      for (const h of hosts) {
        expect(JSON.parse((await remote.show('hostkit-status', `status/${h}.json`))!)).toEqual({ round });
        expect(await remote.show('hostkit-status', `drift/${h}.md`)).toBe(round % 2 ? `drift ${round}` : undefined);
      }
    }
    const log = await remote.log('hostkit-status');
    expect(log).toHaveLength(10);
    for (const h of hosts) for (let round = 1; round <= 5; round++) expect(log).toContain(`${h}: round ${round}`);
    expect(retried).toBeGreaterThan(0); // the race really happened
    // main is untouched by reports.
    expect(await remote.log('main')).toEqual(['change manifests']);
  });

  it('writing the same files again commits nothing', async () => {
    remote = await gitRemote();
    await remote.push({ 'hosts/a.yaml': 'a: 1\n' });
    state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-reports-'));
    const w = new ReportWriter({
      url: remote.bare,
      branch: 'hostkit-status',
      dir: path.join(state, 'w'),
      author: { name: 'a', email: 'a@b' },
      log: silentLogger(),
    });
    expect((await w.write({ 'status/a.json': '{}\n' }, 'one')).changed).toBe(true);
    expect((await w.write({ 'status/a.json': '{}\n' }, 'two')).changed).toBe(false);
    expect(await remote.log('hostkit-status')).toEqual(['one']);
  });

  it('a report nobody raced costs one git process (the push); a rejected one a fetch and a push more', async () => {
    remote = await gitRemote();
    await remote.push({ 'hosts/a.yaml': 'a: 1\n' });
    state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-reports-'));
    const make = (host: string) =>
      new ReportWriter({
        url: remote!.bare,
        branch: 'hostkit-status',
        dir: path.join(state!, host),
        author: { name: host, email: 'h@h' },
        log: silentLogger(),
        baseDelayMs: 1,
      });
    const a = make('a');
    const b = make('b');
    await a.write({ 'status/a.json': '1\n' }, 'a 1'); // fetch (no branch yet) + push
    expect(a.processes).toBe(2);
    await a.write({ 'status/a.json': '2\n', 'drift/a.md': 'x\n' }, 'a 2');
    expect(a.processes).toBe(3);
    await b.write({ 'status/b.json': '1\n' }, 'b 1');
    const before = a.processes;
    const result = await a.write({ 'status/a.json': '3\n', 'drift/a.md': undefined }, 'a 3'); // b moved the tip: push, fetch, push
    expect(result.attempts).toBe(2);
    expect(a.processes - before).toBe(3);
    expect(await remote.show('hostkit-status', 'status/b.json')).toBe('1');
    expect(await remote.show('hostkit-status', 'status/a.json')).toBe('3');
    expect(await remote.show('hostkit-status', 'drift/a.md')).toBeUndefined();
    expect(await remote.log('hostkit-status')).toEqual(['a 3', 'b 1', 'a 2', 'a 1']);
  });
});
