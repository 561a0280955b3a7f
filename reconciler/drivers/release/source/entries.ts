import path from 'node:path';

// The entry list of an archive, judged as a whole before anything is written:
// only files, directories and links; no absolute path, no `..`; no entry
// written through a symlink of the same archive; and every symlink, followed
// through the archive's other symlinks, ends inside the release.

export interface RawEntry {
  /** As the archive names it. */
  name: string;
  /** tar-stream's names: file, directory, symlink, link (a hard link), character-device, fifo... */
  type: string;
  mode: number;
  linkname?: string;
  data: Buffer;
  mtime?: Date;
}

export interface SafeEntry {
  /** Relative, normalized: no `.`, `..` or empty segments. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  /** Permission bits only; setuid, setgid and sticky dropped; the owner can always read and write. */
  mode: number;
  linkname?: string;
  data: Buffer;
  mtime?: Date;
}

export type EntryCheck = { entries: SafeEntry[] } | { entry: string; why: string };

const MAX_LINK_DEPTH = 40;

/** The archive's entries made safe to write, or the first entry that is not, and why. */
export function checkEntries(raw: readonly RawEntry[]): EntryCheck {
  const entries: SafeEntry[] = [];
  const types = new Map<string, SafeEntry['type']>();
  for (const e of raw) {
    const name = normalizeName(e.name);
    if (typeof name !== 'string') return { entry: e.name, why: name.why };
    if (name === '') {
      if (e.type === 'directory') continue; // the archive's own "./"
      return { entry: e.name, why: 'it has no name' };
    }
    const type = e.type === 'contiguous-file' ? 'file' : e.type;
    if (type !== 'file' && type !== 'directory' && type !== 'symlink' && type !== 'link') {
      const what = /device|fifo/.test(type) ? 'a device file or fifo' : `an entry of type ${type}`;
      return { entry: e.name, why: `it is ${what}` };
    }
    const before = types.get(name);
    if (before !== undefined && !(before === 'directory' && type === 'directory')) return { entry: e.name, why: 'it appears twice' };
    types.set(name, type);
    const mode = type === 'directory' ? (e.mode & 0o777) | 0o700 : (e.mode & 0o777) | 0o600;
    let linkname: string | undefined;
    if (type === 'symlink') {
      linkname = e.linkname ?? '';
      if (linkname === '' || linkname.includes('\0')) return { entry: e.name, why: 'its link target is empty' };
      if (linkname.startsWith('/')) return { entry: e.name, why: `it links to the absolute path ${linkname}` };
    }
    if (type === 'link') {
      const target = normalizeName(e.linkname ?? '');
      if (typeof target !== 'string' || types.get(target) !== 'file') {
        return { entry: e.name, why: `it is a hard link to ${e.linkname ?? ''}, not to a file earlier in the archive` };
      }
      linkname = target;
    }
    entries.push({ path: name, type, mode, ...(linkname !== undefined ? { linkname } : {}), data: e.data, ...(e.mtime ? { mtime: e.mtime } : {}) });
  }
  const symlinks = new Map(entries.filter((e) => e.type === 'symlink').map((e) => [e.path, e.linkname!]));
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const t = types.get(parent);
      if (t === 'symlink') return { entry: e.path, why: `it would be written through the symlink ${parent}` };
      if (t !== undefined && t !== 'directory') return { entry: e.path, why: `its parent ${parent} is not a directory` };
    }
    if (e.type === 'symlink' && resolveInside(e.path, e.linkname!, symlinks, 0) === undefined) {
      return { entry: e.path, why: `it links to ${e.linkname}, outside the release` };
    }
  }
  return { entries };
}

// The name as it will be written, or why it cannot be: absolute, `..`, a backslash or NUL.
function normalizeName(name: string): string | { why: string } {
  if (name.includes('\0')) return { why: 'its name has a NUL byte' };
  if (name.startsWith('/')) return { why: 'its path is absolute' };
  if (name.includes('\\')) return { why: 'its name has a backslash' };
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { why: 'its path has a ".." segment' };
  return segments.join('/');
}

// Where `target`, read from the link at `at`, ends (segments below the
// release root), following the archive's symlinks; undefined if it leaves
// the release or loops.
function resolveInside(at: string, target: string, symlinks: ReadonlyMap<string, string>, depth: number): string[] | undefined {
  if (depth > MAX_LINK_DEPTH) return undefined;
  let stack = path.posix.dirname(at) === '.' ? [] : path.posix.dirname(at).split('/');
  for (const segment of target.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (stack.length === 0) return undefined;
      stack.pop();
      continue;
    }
    stack.push(segment);
    const link = symlinks.get(stack.join('/'));
    if (link !== undefined) {
      if (link.startsWith('/')) return undefined;
      const resolved = resolveInside(stack.join('/'), link, symlinks, depth + 1);
      if (resolved === undefined) return undefined;
      stack = resolved;
    }
  }
  return stack;
}
