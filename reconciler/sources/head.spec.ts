import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { headCommit } from './git.js';

const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test' };
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-git-'));
  dirs.push(dir);
  return dir;
}
const git = (cwd: string, ...args: string[]) => execa('git', args, { cwd, env });
const rev = async (cwd: string) => (await git(cwd, 'rev-parse', 'HEAD')).stdout.trim();

afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('reconciler/sources/git headCommit', () => {
  it('is undefined outside a repository and in one without commits', async () => {
    const dir = await tempDir();
    expect(await headCommit(dir)).toBeUndefined();
    await git(dir, 'init', '-q', '-b', 'main');
    expect(await headCommit(dir)).toBeUndefined();
  });

  it('reads loose and packed refs, from a subdirectory, and in a linked worktree', async () => {
    const dir = await tempDir();
    await git(dir, 'init', '-q', '-b', 'main');
    await writeFile(path.join(dir, 'a.yaml'), 'a: 1\n');
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '-q', '-m', 'one');
    expect(await headCommit(dir)).toBe(await rev(dir));
    await execa('mkdir', [path.join(dir, 'hosts')]);
    expect(await headCommit(path.join(dir, 'hosts'))).toBe(await rev(dir));
    await git(dir, 'pack-refs', '--all');
    expect(await headCommit(dir)).toBe(await rev(dir));
    const linked = path.join(await tempDir(), 'wt');
    await git(dir, 'worktree', 'add', '-q', '-b', 'other', linked);
    await writeFile(path.join(linked, 'b.yaml'), 'b: 1\n');
    await git(linked, 'add', '-A');
    await git(linked, 'commit', '-q', '-m', 'two');
    expect(await headCommit(linked)).toBe(await rev(linked));
    expect(await headCommit(linked)).not.toBe(await rev(dir));
    await git(dir, 'checkout', '-q', '--detach');
    expect(await headCommit(dir)).toBe(await rev(dir));
  });
});
