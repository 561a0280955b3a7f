import { createHash } from 'node:crypto';
import path from 'node:path';
import { buffer as collect } from 'node:stream/consumers';
import zlib from 'node:zlib';
import type { Entry as ZipEntry, ZipFile } from 'yauzl';
import { HostKitError, errorMessage } from '../../../core/errors.js';
import { ensureCache } from './cache.js';
import { checkEntries, type RawEntry, type SafeEntry } from './entries.js';
import { prepareDestination } from './export.js';
import type { ArchiveSourceSpec, SourceAccess } from './types.js';
import { displayUrl, redact, sourceLocation } from './urls.js';
import { execAs, sourceUser, type SourceUser } from './user.js';

// Archive sources (.tar.gz, .tar.zst, .zip; https or file://). The download
// lands in the project's cache as its user, its sha256 is checked here, the
// archive is parsed here (tar-stream, yauzl, node:zlib) and its whole entry
// list judged (entries.ts) before anything is written. What is written is not
// the archive itself but a plain tar made here of the judged entries only,
// unpacked by the host's tar as the project's user: no parser on the host
// can read the archive differently from the check.

/** The largest archive, and the most it may unpack to (both held in memory while unpacking). */
export const ARCHIVE_MAX_BYTES = 1024 * 1024 * 1024;
export const UNPACKED_MAX_BYTES = 2 * 1024 * 1024 * 1024;
// One `tar -x` is given about this much at a time.
const CHUNK_BYTES = 64 * 1024 * 1024;
const DOWNLOAD_TIMEOUT_MS = 15 * 60 * 1000;

export type ArchiveFormat = 'tar.gz' | 'tar.zst' | 'zip';

/** The format from the first bytes (not the URL's name); undefined when it is none HostKit unpacks. */
export function archiveFormat(bytes: Buffer): ArchiveFormat | undefined {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'tar.gz';
  if (bytes.readUInt32LE(0) === 0xfd2fb528) return 'tar.zst';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05)) return 'zip';
  return undefined;
}

function formatError(access: SourceAccess, source: ArchiveSourceSpec, why: string): HostKitError {
  return new HostKitError('ARCHIVE_FORMAT', `project ${access.project}: archive ${displayUrl(source.url)} ${why}`, {
    data: { project: access.project, url: displayUrl(source.url) },
  });
}

/**
 * Download (https, or file:// under allowedRoots) as the project's user,
 * check the sha256 before anything is unpacked, refuse unsafe entries, and
 * unpack into the empty directory `dest` owned by the project's user. On
 * ARCHIVE_DIGEST_MISMATCH, ARCHIVE_UNSAFE and ARCHIVE_FORMAT nothing was
 * written to `dest`; if unpacking itself fails, `dest` may hold part of it and
 * the caller removes it (an unfinished release has no marker).
 */
export async function unpackArchive(access: SourceAccess, source: ArchiveSourceSpec, dest: string): Promise<void> {
  const expected = source.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) throw formatError(access, source, `has sha256 ${JSON.stringify(source.sha256)}, expected 64 hex digits`);
  const location = sourceLocation(access, source.url, ['https']);
  const user = await sourceUser(access);
  const cache = await ensureCache(access, user);
  const download = path.posix.join(cache, 'hostkit-archive.download');
  try {
    await access.host.remove(download, { managed: true });
    const argv =
      location.kind === 'file'
        ? ['cp', '--', location.path, download]
        : [
            'curl',
            '--fail',
            '--silent',
            '--show-error',
            '--location',
            '--proto',
            '=https',
            '--proto-redir',
            '=https',
            '--connect-timeout',
            '30',
            '--max-filesize',
            String(ARCHIVE_MAX_BYTES),
            '--output',
            download,
            source.url,
          ];
    const got = await execAs(access, user, argv, { cwd: cache, timeoutMs: DOWNLOAD_TIMEOUT_MS });
    if (got.exitCode !== 0) {
      const tail = redact((got.stderr || got.stdout).trim().split('\n').slice(-4).join('\n'), access);
      throw new HostKitError('SOURCE_UNREACHABLE', `project ${access.project}: archive ${displayUrl(source.url)} could not be fetched: ${tail}`, {
        data: { project: access.project, url: displayUrl(source.url), output: tail },
      });
    }
    const bytes = await access.host.readFile(download, { managed: true });
    if (!bytes) throw formatError(access, source, 'was fetched but its download is gone');
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expected) {
      throw new HostKitError(
        'ARCHIVE_DIGEST_MISMATCH',
        `project ${access.project}: archive ${displayUrl(source.url)} has sha256 ${actual}, expected ${expected}; nothing was unpacked`,
        { data: { project: access.project, url: displayUrl(source.url), expected, actual } },
      );
    }
    const raw = await readEntries(access, source, bytes);
    const checked = checkEntries(raw);
    if ('why' in checked) {
      throw new HostKitError(
        'ARCHIVE_UNSAFE',
        `project ${access.project}: archive ${displayUrl(source.url)} is refused: entry ${JSON.stringify(checked.entry)}: ${checked.why}; nothing was unpacked`,
        { data: { project: access.project, url: displayUrl(source.url), entry: checked.entry, why: checked.why } },
      );
    }
    await prepareDestination(access, user, dest);
    await writeEntries(access, user, dest, checked.entries);
    access.log.info({ project: access.project, url: displayUrl(source.url), entries: checked.entries.length, dest }, 'archive unpacked');
  } finally {
    await access.host.remove(download, { managed: true });
  }
}

async function readEntries(access: SourceAccess, source: ArchiveSourceSpec, bytes: Buffer): Promise<RawEntry[]> {
  const format = bytes.length >= 4 ? archiveFormat(bytes) : undefined;
  if (!format) throw formatError(access, source, 'is not a .tar.gz, .tar.zst or .zip archive');
  try {
    if (format === 'zip') return await readZip(bytes);
    if (format === 'tar.zst' && typeof zlib.zstdDecompressSync !== 'function') {
      throw new Error('zstd needs Node 22.15 or later (node:zlib zstdDecompress)');
    }
    const tar =
      format === 'tar.gz'
        ? zlib.gunzipSync(bytes, { maxOutputLength: UNPACKED_MAX_BYTES })
        : zlib.zstdDecompressSync(bytes, { maxOutputLength: UNPACKED_MAX_BYTES });
    return await readTar(tar);
  } catch (error) {
    if (error instanceof HostKitError) throw error;
    throw formatError(access, source, `cannot be read as ${format}: ${errorMessage(error)}`);
  }
}

async function readTar(tar: Buffer): Promise<RawEntry[]> {
  const { extract } = await import('tar-stream');
  const parser = extract();
  parser.end(tar);
  const out: RawEntry[] = [];
  for await (const entry of parser) {
    const h = entry.header;
    const data = await collect(entry);
    out.push({
      name: h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0o644,
      ...(h.linkname ? { linkname: h.linkname } : {}),
      data,
      ...(h.mtime ? { mtime: h.mtime } : {}),
    });
  }
  return out;
}

const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, string> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'character-device',
  0o060000: 'block-device',
  0o010000: 'fifo',
  0o140000: 'socket',
};

// yauzl checks names itself (absolute, `..`, backslashes) when decoding them:
// its names are decoded here instead, so entries.ts judges every archive alike.
async function readZip(bytes: Buffer): Promise<RawEntry[]> {
  const yauzl = await import('yauzl');
  const zip = await new Promise<ZipFile>((resolve, reject) =>
    yauzl.fromBuffer(bytes, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (e, z) => (e ? reject(e) : resolve(z))),
  );
  const out: RawEntry[] = [];
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: ZipEntry) => {
      const name = (entry.fileName as unknown as Buffer).toString(entry.generalPurposeBitFlag & 0x800 ? 'utf8' : 'latin1');
      const unix = entry.externalFileAttributes >>> 16;
      const type = unix & S_IFMT ? (UNIX_TYPES[unix & S_IFMT] ?? `mode ${(unix & S_IFMT).toString(8)}`) : name.endsWith('/') ? 'directory' : 'file';
      const mode = unix & 0o777 || (type === 'directory' ? 0o755 : 0o644);
      total += entry.uncompressedSize;
      if (total > UNPACKED_MAX_BYTES) return reject(new Error(`it unpacks to more than ${UNPACKED_MAX_BYTES} bytes`));
      if (type === 'directory') {
        out.push({ name, type, mode, data: Buffer.alloc(0), mtime: entry.getLastModDate() });
        return zip.readEntry();
      }
      zip.openReadStream(entry, (e, stream) => {
        if (e) return reject(e);
        collect(stream).then((data) => {
          out.push({
            name,
            type,
            mode,
            data: type === 'symlink' ? Buffer.alloc(0) : data,
            ...(type === 'symlink' ? { linkname: data.toString('utf8') } : {}),
            mtime: entry.getLastModDate(),
          });
          zip.readEntry();
        }, reject);
      });
    });
    zip.readEntry();
  });
  return out;
}

// The judged entries as plain tars of about CHUNK_BYTES each, unpacked by the host's tar as the user.
async function writeEntries(access: SourceAccess, user: SourceUser, dest: string, entries: readonly SafeEntry[]): Promise<void> {
  const { pack } = await import('tar-stream');
  let chunk: SafeEntry[] = [];
  let size = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    const p = pack();
    for (const e of chunk) {
      const header = {
        name: e.path,
        type: e.type,
        mode: e.mode,
        ...(e.mtime ? { mtime: e.mtime } : {}),
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      };
      await new Promise<void>((resolve, reject) =>
        p.entry({ ...header, size: e.type === 'file' ? e.data.length : 0 }, e.type === 'file' ? e.data : undefined, (err) => (err ? reject(err) : resolve())),
      );
    }
    p.finalize();
    const tar = await collect(p);
    const args = [
      'tar',
      '--extract',
      '--file=-',
      `--directory=${dest}`,
      '--no-same-owner',
      '--no-same-permissions',
      '--delay-directory-restore',
      '--warning=no-timestamp',
    ];
    const result = await execAs(access, user, args, { input: tar, timeoutMs: 10 * 60 * 1000 });
    if (result.exitCode !== 0) {
      throw new HostKitError(
        'COMMAND_FAILED',
        `project ${access.project}: unpacking into ${dest} failed: ${result.stderr.trim().split('\n').slice(-4).join('\n')}`,
        {
          data: { project: access.project, dest },
        },
      );
    }
    chunk = [];
    size = 0;
  };
  for (const e of entries) {
    chunk.push(e);
    size += e.data.length + 512;
    if (size >= CHUNK_BYTES) await flush();
  }
  await flush();
}
