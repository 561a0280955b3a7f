import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer as collect } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { LocalHost } from '../../../hosts/local.js';
import { archiveFormat } from './archive.js';
import { unpackArchive, type SourceAccess } from './index.js';

interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'character-device';
  linkname?: string;
  body?: string;
  mode?: number;
}

/** A tar made in memory (tar-stream), entries exactly as given. */
async function makeTar(items: readonly TarItem[]): Promise<Buffer> {
  const { pack } = await import('tar-stream');
  const p = pack();
  for (const item of items) {
    const body = item.body ?? '';
    await new Promise<void>((resolve, reject) =>
      p.entry(
        {
          name: item.name,
          type: item.type ?? 'file',
          mode: item.mode ?? (item.type === 'directory' ? 0o755 : 0o644),
          ...(item.linkname ? { linkname: item.linkname } : {}),
          ...(item.type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}),
          size: item.type && item.type !== 'file' ? 0 : body.length,
        },
        item.type && item.type !== 'file' ? undefined : body,
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  }
  p.finalize();
  return collect(p);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const asRoot = process.getuid?.() === 0;

describe('reconciler/drivers/release/source/archive', () => {
  it('tells the format from the first bytes', async () => {
    const tar = await makeTar([{ name: 'a', body: 'x' }]);
    expect(archiveFormat(zlib.gzipSync(tar))).toBe('tar.gz');
    expect(archiveFormat(zlib.zstdCompressSync(tar))).toBe('tar.zst');
    expect(archiveFormat(Buffer.from('PK\x03\x04rest'))).toBe('zip');
    expect(archiveFormat(tar)).toBeUndefined();
  });
});

describe.runIf(asRoot)('reconciler/drivers/release/source/archive (unpacked as nobody)', () => {
  let tmp: string;
  const host = new LocalHost();
  const access = (): SourceAccess => ({
    host,
    project: 'site',
    user: 'nobody',
    stateDirectory: path.join(tmp, 'state'),
    allowedRoots: [path.join(tmp, 'srv')],
    log: silentLogger(),
  });
  let n = 0;
  const put = (name: string, bytes: Buffer) => {
    const file = path.join(tmp, 'srv', name);
    writeFileSync(file, bytes);
    chmodSync(file, 0o644);
    return { url: `file://${file}`, sha256: sha(bytes) };
  };
  const dest = () => path.join(tmp, 'srv', `release-${++n}`);

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'hk-archive-'));
    chmodSync(tmp, 0o755);
    mkdirSync(path.join(tmp, 'srv'), { mode: 0o755 });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const good: TarItem[] = [
    { name: 'site/', type: 'directory' },
    { name: 'site/index.html', body: '<h1>v1</h1>\n' },
    { name: 'site/run.sh', body: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'site/home.html', type: 'symlink', linkname: 'index.html' },
  ];

  it.each([
    ['.tar.gz', (t: Buffer) => zlib.gzipSync(t)],
    ['.tar.zst', (t: Buffer) => zlib.zstdCompressSync(t)],
  ])('unpacks a good %s as the project user, set-uid bits dropped', async (ext, compress) => {
    const source = put(`good${ext}`, compress(await makeTar(good)));
    const d = dest();
    await unpackArchive(access(), source, d);
    expect(readFileSync(path.join(d, 'site/index.html'), 'utf8')).toBe('<h1>v1</h1>\n');
    expect(readlinkSync(path.join(d, 'site/home.html'))).toBe('index.html');
    expect(statSync(path.join(d, 'site/index.html')).uid).toBe(65534);
    expect(lstatSync(path.join(d, 'site/home.html')).uid).toBe(65534);
    expect(statSync(path.join(d, 'site/run.sh')).mode & 0o7777).toBe(0o755);
    expect(existsSync(path.join(tmp, 'state/sources/site/hostkit-archive.download'))).toBe(false);
  });

  it.runIf(existsSync('/usr/bin/python3'))('unpacks a good .zip, and refuses one holding ../', async () => {
    const zip = (file: string, names: string[]) =>
      execFileSync('/usr/bin/python3', [
        '-c',
        'import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1],"w")\nfor n in sys.argv[2:]: z.writestr(n, "body of "+n)\nz.close()',
        file,
        ...names,
      ]);
    const goodZip = path.join(tmp, 'good.zip');
    zip(goodZip, ['app/main.py', 'app/README']);
    const d = dest();
    await unpackArchive(access(), put('good.zip', readFileSync(goodZip)), d);
    expect(readFileSync(path.join(d, 'app/main.py'), 'utf8')).toBe('body of app/main.py');
    expect(statSync(path.join(d, 'app/main.py')).uid).toBe(65534);
    const badZip = path.join(tmp, 'bad.zip');
    zip(badZip, ['ok.txt', '../evil.txt']);
    const bad = dest();
    await expect(unpackArchive(access(), put('bad.zip', readFileSync(badZip)), bad)).rejects.toMatchObject({
      code: 'ARCHIVE_UNSAFE',
      data: { entry: '../evil.txt' },
    });
    expect(existsSync(bad)).toBe(false);
  });

  it('checks the sha256 before anything is unpacked, naming both digests', async () => {
    const bytes = zlib.gzipSync(await makeTar(good));
    const source = { ...put('digest.tar.gz', bytes), sha256: 'f'.repeat(64) };
    const d = dest();
    const error = await unpackArchive(access(), source, d).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ARCHIVE_DIGEST_MISMATCH', data: { expected: 'f'.repeat(64), actual: sha(bytes) } });
    expect((error as Error).message).toContain(sha(bytes));
    expect(existsSync(d)).toBe(false);
  });

  it.each([
    ['../x', [{ name: 'ok' }, { name: '../x', body: 'escape' }], '../x'],
    ['a symlink to /etc', [{ name: 'etc', type: 'symlink', linkname: '/etc' }], 'etc'],
    ['a symlink out of the release', [{ name: 'up', type: 'symlink', linkname: '../../..' }], 'up'],
    ['an absolute path', [{ name: 'ok' }, { name: `/tmp/hk-archive-absolute-${process.pid}`, body: 'escape' }], `/tmp/hk-archive-absolute-${process.pid}`],
    ['a device file', [{ name: 'ok' }, { name: 'null', type: 'character-device', mode: 0o666 }], 'null'],
  ] as [string, TarItem[], string][])('refuses a tarball holding %s, writing nothing', async (_what, items, entry) => {
    const d = dest();
    await expect(unpackArchive(access(), put(`bad-${n}.tar.gz`, zlib.gzipSync(await makeTar(items))), d)).rejects.toMatchObject({
      code: 'ARCHIVE_UNSAFE',
      data: { entry },
    });
    expect(existsSync(d)).toBe(false);
    expect(existsSync(path.join(tmp, 'x'))).toBe(false);
    expect(existsSync(`/tmp/hk-archive-absolute-${process.pid}`)).toBe(false);
  });

  it('names what it cannot read or reach', async () => {
    await expect(unpackArchive(access(), put('junk.tar.gz', Buffer.from('not an archive at all')), dest())).rejects.toMatchObject({ code: 'ARCHIVE_FORMAT' });
    await expect(unpackArchive(access(), put('trunc.tar.gz', zlib.gzipSync(await makeTar(good)).subarray(0, 40)), dest())).rejects.toMatchObject({
      code: 'ARCHIVE_FORMAT',
    });
    await expect(unpackArchive(access(), { url: 'file:///etc/passwd', sha256: 'a'.repeat(64) }, dest())).rejects.toMatchObject({
      code: 'SOURCE_PATH_NOT_ALLOWED',
    });
    await expect(unpackArchive(access(), { url: 'http://example.invalid/a.tar.gz', sha256: 'a'.repeat(64) }, dest())).rejects.toMatchObject({
      code: 'SOURCE_PATH_NOT_ALLOWED',
    });
    await expect(unpackArchive(access(), { url: `file://${tmp}/srv/missing.tar.gz`, sha256: 'a'.repeat(64) }, dest())).rejects.toMatchObject({
      code: 'SOURCE_UNREACHABLE',
    });
  });
});
