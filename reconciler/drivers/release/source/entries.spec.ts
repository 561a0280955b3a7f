import { describe, expect, it } from 'vitest';
import { checkEntries, type RawEntry } from './entries.js';

const file = (name: string, mode = 0o644): RawEntry => ({ name, type: 'file', mode, data: Buffer.from(name) });
const dir = (name: string): RawEntry => ({ name, type: 'directory', mode: 0o755, data: Buffer.alloc(0) });
const link = (name: string, linkname: string): RawEntry => ({ name, type: 'symlink', mode: 0o777, linkname, data: Buffer.alloc(0) });

describe('reconciler/drivers/release/source/entries', () => {
  it('keeps files, directories and links inside the release, normalized', () => {
    const checked = checkEntries([
      dir('./'),
      dir('./app/'),
      file('./app/main.py', 0o4755),
      link('app/current.py', 'main.py'),
      link('app/up', '../app/main.py'),
      { name: 'app/hard', type: 'link', mode: 0o644, linkname: './app/main.py', data: Buffer.alloc(0) },
      link('root', '.'),
    ]);
    expect('entries' in checked ? checked.entries.map((e) => [e.path, e.type, e.mode.toString(8), e.linkname ?? '']) : checked).toEqual([
      ['app', 'directory', '755', ''],
      ['app/main.py', 'file', '755', ''],
      ['app/current.py', 'symlink', '777', 'main.py'],
      ['app/up', 'symlink', '777', '../app/main.py'],
      ['app/hard', 'link', '644', 'app/main.py'],
      ['root', 'symlink', '777', '.'],
    ]);
  });

  it.each([
    ['a ".." path', [file('../x')], '../x', '".." segment'],
    ['a ".." inside a path', [file('a/../../x')], 'a/../../x', '".." segment'],
    ['an absolute path', [file('/etc/passwd')], '/etc/passwd', 'absolute'],
    ['a backslash', [file('a\\..\\x')], 'a\\..\\x', 'backslash'],
    ['a symlink to /etc', [link('etc', '/etc')], 'etc', 'absolute path /etc'],
    ['a symlink out by ".."', [dir('a/'), link('a/up', '../..')], 'a/up', 'outside the release'],
    // Each link alone looks inside; followed through the other one it leaves the release.
    ['a symlink out through another symlink', [dir('sub/'), dir('sub/deep/'), link('sub/y', '..'), link('sub/deep/x', '../y/../..')], 'sub/deep/x', 'outside'],
    ['a symlink loop', [link('a', 'b'), link('b', 'a')], 'a', 'outside'],
    ['a file written through a symlink', [link('l', '.'), file('l/x')], 'l/x', 'through the symlink l'],
    ['a character device', [{ name: 'null', type: 'character-device', mode: 0o666, data: Buffer.alloc(0) }], 'null', 'device file or fifo'],
    ['a fifo', [{ name: 'pipe', type: 'fifo', mode: 0o644, data: Buffer.alloc(0) }], 'pipe', 'device file or fifo'],
    ['a hard link to nothing in the archive', [{ name: 'h', type: 'link', mode: 0o644, linkname: '/etc/shadow', data: Buffer.alloc(0) }], 'h', 'hard link'],
    ['a path twice', [file('a'), link('a', 'b')], 'a', 'twice'],
  ])('refuses %s', (_what, entries, entry, why) => {
    const checked = checkEntries(entries);
    expect(checked).toMatchObject({ entry });
    expect('why' in checked && checked.why).toContain(why);
  });
});
