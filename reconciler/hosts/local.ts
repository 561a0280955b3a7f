import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { HostKitError } from '../core/errors.js';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import { connectLocal } from './connect.js';
import { flockFile } from './flock.js';
import { spawnCollect, timedOutError } from './process.js';
import type { AppendOptions, ConnectOptions, ExecOptions, ExecResult, FileStat, HeldLock, Host, Ownership, PathOptions } from './types.js';

export interface LocalHostOptions {
  /**
   * Treat this directory as the host's "/" for file operations. Used to apply
   * into a scratch directory in tests; commands are refused on such a host,
   * since they would act on this machine rather than on the directory.
   */
  root?: string;
}

// The machine HostKit runs on. File paths may be re-rooted into a directory.
export class LocalHost implements Host {
  readonly name: string;
  private readonly root: string | undefined;

  constructor(options: LocalHostOptions = {}) {
    this.root = options.root ? path.resolve(options.root) : undefined;
    this.name = this.root ? `local:${this.root}` : 'local';
  }

  async localPath(hostPath: string): Promise<string> {
    return this.resolve(hostPath);
  }

  /** The path on this machine that stands for `hostPath` on the managed host. */
  resolve(hostPath: string): string {
    if (!path.isAbsolute(hostPath)) {
      throw new HostKitError('HOST_PATH_NOT_ABSOLUTE', `Expected an absolute host path, got "${hostPath}"`);
    }
    const normalized = path.posix.normalize(hostPath);
    return this.root ? path.join(this.root, normalized) : normalized;
  }

  async connect(port: number, options?: ConnectOptions): Promise<Duplex> {
    if (this.root) {
      // This machine's ports say nothing about the directory standing for the host.
      throw new HostKitError('CONNECT_ON_REROOTED_HOST', `Cannot connect to port ${port} of a host re-rooted at ${this.root}`, { data: { port } });
    }
    return connectLocal(this.name, port, options);
  }

  async exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (this.root) {
      // Commands would act on this machine, not on the directory standing for the host.
      throw new HostKitError(
        'EXEC_ON_REROOTED_HOST',
        `Cannot run ${file} for a host re-rooted at ${this.root}: only file changes can be applied into a directory`,
        {
          data: { file, args },
        },
      );
    }
    const result = await spawnCollect(file, args, {
      ...options,
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    if (result.timedOut) throw timedOutError(this.name, file, args, options, result);
    if (result.exitCode === undefined) {
      const why = result.error ? result.error.message : `killed by ${result.signal ?? 'a signal'}`;
      throw new HostKitError('EXEC_FAILED', `Could not run ${file}: ${why}`, {
        data: { file, args },
        cause: result.error,
      });
    }
    return {
      exitCode: result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr,
      ...(result.truncated ? { truncated: result.truncated } : {}),
    };
  }

  async readFile(hostPath: string, options: PathOptions = {}): Promise<Buffer | undefined> {
    try {
      if (options.managed) return await readNoFollow(await this.managedTarget(hostPath), this.name, hostPath);
      return await fs.readFile(this.resolve(hostPath));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async stat(hostPath: string): Promise<FileStat | undefined> {
    try {
      const st = await fs.lstat(this.resolve(hostPath));
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
      return { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async writeFile(hostPath: string, data: Buffer | string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    const target = options.managed ? await this.managedTarget(hostPath) : this.resolve(hostPath);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.hostkit-${randomBytes(6).toString('hex')}`);
    const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(data);
      await handle.chown(ownership.uid, ownership.gid);
      await handle.chmod(ownership.mode);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await fs.rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      await fs.rename(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  async appendFile(hostPath: string, data: Buffer | string, ownership: Ownership, options: AppendOptions = {}): Promise<void> {
    const handle = await fs.open(this.resolve(hostPath), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      const st = await handle.stat();
      if (st.size === 0 && (st.uid !== ownership.uid || st.gid !== ownership.gid || (st.mode & 0o7777) !== ownership.mode)) {
        await handle.chown(ownership.uid, ownership.gid);
        await handle.chmod(ownership.mode);
      }
      await handle.write(typeof data === 'string' ? Buffer.from(data) : data);
      if (options.sync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async mkdir(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    const target = options.managed ? await this.managedTarget(hostPath) : this.resolve(hostPath);
    try {
      await fs.mkdir(target, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await setOwnershipNoFollow(target, ownership);
  }

  async setOwnership(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    await setOwnershipNoFollow(options.managed ? await this.managedTarget(hostPath) : this.resolve(hostPath), ownership);
  }

  async remove(hostPath: string, options: PathOptions = {}): Promise<void> {
    const target = options.managed ? await this.managedTarget(hostPath) : this.resolve(hostPath);
    const st = await this.stat(hostPath);
    if (!st) return;
    if (st.type === 'directory') await fs.rmdir(target);
    else await fs.rm(target, { force: true });
  }

  async readdir(hostPath: string): Promise<string[] | undefined> {
    try {
      return await fs.readdir(this.resolve(hostPath));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async readlink(hostPath: string): Promise<string | undefined> {
    return readlinkOrUndefined(this.resolve(hostPath));
  }

  async symlink(target: string, hostPath: string): Promise<void> {
    await replaceSymlink(target, this.resolve(hostPath));
  }

  /** This machine's name; a re-rooted host is the machine its directory stands for, named by its etc/hostname. */
  async hostname(): Promise<string> {
    if (!this.root) return os.hostname();
    const named = (await this.readFile('/etc/hostname'))?.toString('utf8').trim();
    if (!named) throw new HostKitError('HOSTNAME_UNKNOWN', `The host re-rooted at ${this.root} has no etc/hostname to say which machine it stands for`);
    return named;
  }

  async lock(hostPath: string, options: { waitMs: number }): Promise<HeldLock | undefined> {
    return flockFile(this.resolve(hostPath), options.waitMs);
  }

  // The local path of a managed host path, refused when a directory on its way
  // (below the root) is a symlink; a missing directory ends the walk (nothing below exists).
  private async managedTarget(hostPath: string): Promise<string> {
    const target = this.resolve(hostPath);
    const parts = path.posix.normalize(hostPath).split('/').filter(Boolean).slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      const st = await fs.lstat(this.resolve(dir)).catch((error: unknown) => {
        if (isMissing(error)) return undefined;
        throw error;
      });
      if (!st) break;
      if (st.isSymbolicLink()) throw symlinkRefused(this.name, hostPath, dir);
    }
    return target;
  }
}

/** A managed path met a symlink: among its directories (`at`), or as itself. */
export function symlinkRefused(hostName: string, hostPath: string, at: string): HostKitError {
  return new HostKitError(
    'HOST_PATH_SYMLINK',
    `${at === hostPath ? hostPath : `${hostPath}: ${at}`} is a symlink on ${hostName}; HostKit does not read or write a managed path through a symlink`,
    { data: { path: hostPath, symlink: at } },
  );
}

// O_NOFOLLOW: a symlink swapped in at the last component fails (ELOOP) instead of
// being read; O_NONBLOCK: a FIFO there cannot hang the run.
export async function readNoFollow(target: string, hostName: string, hostPath: string): Promise<Buffer> {
  let handle;
  try {
    handle = await fs.open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(hostName, hostPath, hostPath);
    throw error;
  }
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

// lchown, then chmod through a descriptor opened with O_NOFOLLOW, so a symlink
// swapped in at the last component is never followed. Symlinks keep their
// (meaningless on Linux) mode; other special files fall back to path calls.
export async function setOwnershipNoFollow(target: string, ownership: Ownership): Promise<void> {
  const st = await fs.lstat(target);
  if (st.isSymbolicLink()) {
    await fs.lchown(target, ownership.uid, ownership.gid);
    return;
  }
  if (!st.isFile() && !st.isDirectory()) {
    await fs.lchown(target, ownership.uid, ownership.gid);
    await fs.chmod(target, ownership.mode);
    return;
  }
  const handle = await fs.open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    await handle.chown(ownership.uid, ownership.gid);
    await handle.chmod(ownership.mode);
  } finally {
    await handle.close();
  }
}

/** ENOENT or ENOTDIR: the path does not exist. */
export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** readlink(2), undefined when the path is missing or not a symlink. */
export async function readlinkOrUndefined(localPath: string): Promise<string | undefined> {
  try {
    return await fs.readlink(localPath);
  } catch (error) {
    if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw error;
  }
}

/** A new link beside `localPath`, renamed over it: rename(2) replaces atomically and never follows the old link. */
export async function replaceSymlink(target: string, localPath: string): Promise<void> {
  const temp = path.join(path.dirname(localPath), `.${path.basename(localPath)}.hostkit-${randomBytes(6).toString('hex')}`);
  await fs.symlink(target, temp);
  try {
    await fs.rename(temp, localPath);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
