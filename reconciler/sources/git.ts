import fs from 'node:fs';

/** The commit HEAD points at in the git repository containing `dir`, if any. */
export async function headCommit(dir: string): Promise<string | undefined> {
  const git = await import('isomorphic-git');
  try {
    const root = await git.findRoot({ fs, filepath: dir });
    return await git.resolveRef({ fs, dir: root, ref: 'HEAD' });
  } catch {
    return undefined; // not a git repository, or no commit yet
  }
}
