// The HostKit package bootstrap installs: a .deb read here (its control fields
// and sha256, so a host of the wrong architecture is refused before anything
// is copied, and an unchanged host is known without copying), or built from
// this checkout as `npm run package` builds it; and copied to the host as one
// stream (SshHost.upload), never as one message of the helper.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { buffer as collect } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { HostKitError, errorMessage } from '../core/errors.js';
import type { Host, Ownership } from '../hosts/types.js';
// Types only: the module itself is loaded when a build is asked for, and only a checkout has it.
import type * as PackageBuild from '../../scripts/package/build.js';

/** A .deb on this machine. */
export interface DebInfo {
  file: string;
  bytes: number;
  sha256: string;
  /** The control file's Package, Version and Architecture. */
  name: string;
  version: string;
  architecture: string;
}

/** Debian's architecture names for the ones HostKit ships (scripts/package/layout.ts DEBIAN_ARCH). */
export const PACKAGE_ARCHES: Readonly<Record<string, 'x64' | 'arm64'>> = { amd64: 'x64', arm64: 'arm64' };

/** What a copy sends per request: the helper gets it as one base64 JSON line. */
export const COPY_CHUNK_BYTES = 1024 * 1024;

function invalid(file: string, why: string, cause?: unknown): HostKitError {
  return new HostKitError('BOOTSTRAP_PACKAGE_INVALID', `${file} is not a HostKit package: ${why}`, {
    data: { file },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** The .deb's control fields and sha256; throws BOOTSTRAP_PACKAGE_INVALID naming the file when it is not HostKit's. */
export async function inspectDeb(file: string): Promise<DebInfo> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (cause) {
    throw invalid(file, `it cannot be read (${errorMessage(cause)})`, cause);
  }
  let control: string;
  let bytes: number;
  try {
    bytes = (await handle.stat()).size;
    control = await readControl(handle, file);
  } finally {
    await handle.close();
  }
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(\\S+)[ \\t]*$`, 'm').exec(control)?.[1];
  const name = field('Package');
  const version = field('Version');
  const architecture = field('Architecture');
  if (name !== 'hostkit') throw invalid(file, `its Package is ${JSON.stringify(name ?? '')}, not hostkit`);
  if (!version || !architecture) throw invalid(file, 'its control file has no Version or Architecture');
  return { file, bytes, sha256: await sha256File(file), name, version, architecture };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// A .deb is an ar archive: debian-binary, control.tar[.gz|.xz|.zst], data.tar.*.
async function readControl(handle: fs.FileHandle, file: string): Promise<string> {
  const read = async (offset: number, length: number) => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  };
  if ((await read(0, 8)).toString('latin1') !== '!<arch>\n') throw invalid(file, 'it is not a Debian package (no ar header)');
  let offset = 8;
  for (let member = 0; member < 3; member++) {
    const header = await read(offset, 60);
    if (header.length < 60) break;
    const name = header.toString('latin1', 0, 16).trim().replace(/\/$/, '');
    const size = Number(header.toString('latin1', 48, 58).trim());
    if (name.startsWith('control.tar')) return controlFromTar(await decompress(await read(offset + 60, size), name, file), file);
    offset += 60 + size + (size % 2);
  }
  throw invalid(file, 'it has no control.tar member');
}

async function decompress(data: Buffer, member: string, file: string): Promise<Buffer> {
  try {
    if (member === 'control.tar') return data;
    if (member === 'control.tar.gz') return zlib.gunzipSync(data);
    if (member === 'control.tar.zst') return zlib.zstdDecompressSync(data);
  } catch (cause) {
    throw invalid(file, `${member} cannot be read (${errorMessage(cause)})`, cause);
  }
  throw invalid(file, `its ${member} is compressed in a way this reader does not know (npm run package writes control.tar.gz)`);
}

async function controlFromTar(tar: Buffer, file: string): Promise<string> {
  const { extract } = await import('tar-stream');
  const parser = extract();
  parser.end(tar);
  let control: string | undefined;
  for await (const entry of parser) {
    const data = await collect(entry);
    if (entry.header.name.replace(/^\.\//, '') === 'control') control = data.toString('utf8');
  }
  if (control === undefined) throw invalid(file, 'its control.tar has no control file');
  return control;
}

/**
 * This checkout's package for `arch`, built as `npm run package` builds it
 * (scripts/package/) into dist-package/. A HostKit installed from its package
 * has no build scripts: then the caller must pass --package.
 */
export async function buildPackage(arch: 'x64' | 'arm64', progress: (line: string) => void): Promise<DebInfo> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  let build: typeof PackageBuild;
  try {
    build = await import('../../scripts/package/build.js');
  } catch (cause) {
    throw new HostKitError(
      'BOOTSTRAP_PACKAGE_INVALID',
      `No --package given, and this HostKit (${root}) cannot build one: only a checkout has the build scripts (npm run package). Pass --package FILE.deb`,
      { cause },
    );
  }
  progress(`building the package for ${arch} from ${root} (npm run package)`);
  const result = await build.buildRelease({ root, out: path.join(root, 'dist-package'), arch });
  return inspectDeb(result.deb.file);
}

/**
 * Copies a local file to `remote` on the host and checks its sha256 there:
 * as one stream where the host can take one (SshHost.upload), else
 * COPY_CHUNK_BYTES per append. If this throws, `remote` may hold part of the
 * file; the caller removes it.
 */
export async function copyToHost(host: Host, local: DebInfo, remote: string, ownership: Ownership): Promise<void> {
  if (host.upload) {
    const { sha256 } = await host.upload(local.file, remote, ownership);
    if (sha256 !== local.sha256) throw copyMismatch(host, local, remote, sha256);
    return;
  }
  await host.remove(remote);
  const handle = await fs.open(local.file, 'r');
  try {
    const chunk = Buffer.alloc(COPY_CHUNK_BYTES);
    for (let offset = 0; ;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
      if (bytesRead === 0) break;
      await host.appendFile(remote, chunk.subarray(0, bytesRead), ownership);
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const sum = await host.exec('sha256sum', [remote]);
  const got = sum.stdout.split(/\s/)[0];
  if (sum.exitCode !== 0 || got !== local.sha256) throw copyMismatch(host, local, remote, got || sum.stderr.trim());
}

function copyMismatch(host: Host, local: DebInfo, remote: string, there: string): HostKitError {
  return new HostKitError(
    'BOOTSTRAP_INSTALL_FAILED',
    `The package copied to ${host.name}:${remote} does not match ${local.file}: sha256 ${there} there, ${local.sha256} here`,
    { data: { host: host.name, file: remote }, retryable: true },
  );
}
