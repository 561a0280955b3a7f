import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The commit HEAD points at in the git repository containing `dir`, if any. */
export async function headCommit(dir: string): Promise<string | undefined> {
  // The common layouts are read directly (a few small files): loading isomorphic-git
  // costs ~100 ms of start-up, more than the rest of a no-op run on a small host.
  const direct = await readHead(path.resolve(dir)).catch(() => undefined);
  if (direct !== undefined) return direct === null ? undefined : direct;
  const git = await import('isomorphic-git');
  try {
    const root = await git.findRoot({ fs, filepath: dir });
    return await git.resolveRef({ fs, dir: root, ref: 'HEAD' });
  } catch {
    return undefined; // not a git repository, or no commit yet
  }
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

// The commit id; null when there is no repository or no commit yet; undefined when the
// layout is one this does not read (the caller then asks isomorphic-git).
async function readHead(start: string): Promise<string | null | undefined> {
  const gitDir = await findGitDir(start);
  if (!gitDir) return null;
  const head = (await readFile(path.join(gitDir, 'HEAD'), 'utf8')).trim();
  if (SHA.test(head)) return head;
  const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
  if (!ref || ref.split('/').includes('..')) return undefined;
  const common = await readFile(path.join(gitDir, 'commondir'), 'utf8').then(
    (c) => path.resolve(gitDir, c.trim()),
    () => gitDir,
  );
  for (const base of [gitDir, common]) {
    const loose = await readFile(path.join(base, ref), 'utf8').catch(() => undefined);
    if (loose !== undefined) return SHA.test(loose.trim()) ? loose.trim() : undefined;
  }
  const packed = await readFile(path.join(common, 'packed-refs'), 'utf8').catch(() => '');
  for (const line of packed.split('\n')) {
    const [sha, name] = line.split(' ');
    if (name === ref && sha && SHA.test(sha)) return sha;
  }
  return null; // a branch without commits
}

async function findGitDir(start: string): Promise<string | undefined> {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, '.git');
    const st = await fs.promises.stat(candidate).catch(() => undefined);
    if (st?.isDirectory()) return candidate;
    if (st?.isFile()) {
      const target = /^gitdir: (.+)$/m.exec(await readFile(candidate, 'utf8'))?.[1];
      return target ? path.resolve(dir, target.trim()) : undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}
