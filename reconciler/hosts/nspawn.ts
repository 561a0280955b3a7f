// A host booted with systemd-nspawn on this machine (the real-host test suite
// boots one per test file). Commands run inside its namespaces with nsenter, so
// they see its PID 1, its units and its private network; files are read and
// written from this side through /proc/LEADER/root, which is the container's
// own view of its file system (its /run and /tmp mounts included).
//
// Containment of file operations: the container's absolute symlinks point at
// paths of the container, but the kernel would resolve them against this
// machine's "/". Every path is therefore resolved here, one component at a
// time, with symlinks read and re-anchored at the container's root (as
// chroot(2) would) and ".." clamped there; the last component is never
// followed by stat, setOwnership, writeFile (rename replaces a symlink) or
// remove. Remaining limitation: resolution and use are separate system calls,
// so a process *inside* the container that swaps a directory for a symlink
// between the two could redirect an operation outside. Node has no
// openat2(RESOLVE_IN_ROOT); test hosts run only what the tests put there, so
// this is accepted here and must be revisited before managing untrusted
// containers with this class.
import { promises as fs } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { HostKitError } from '../core/errors.js';
import { isMissing, LocalHost, readlinkOrUndefined, readNoFollow, replaceSymlink, setOwnershipNoFollow, symlinkRefused } from './local.js';
import type { Duplex } from 'node:stream';
import { connectInNetworkNamespace } from './connect.js';
import { flockFile } from './flock.js';
import { spawnCollect, timedOutError } from './process.js';
import type { AppendOptions, ConnectOptions, ExecOptions, ExecResult, FileStat, HeldLock, Host, Ownership, PathOptions } from './types.js';

export interface NspawnHostOptions {
  /** PID (on this machine) of the container's init, the target for nsenter. */
  leaderPid: number;
  /** The machine name given to systemd-nspawn (-M); used in `name`. */
  machine: string;
  /**
   * The container's "/" as seen from this machine. Defaults to
   * /proc/LEADER/root, which includes mounts made inside the container.
   */
  root?: string;
  /** nsenter binary on this machine; defaults to "nsenter" on PATH. */
  nsenter?: string;
}

/** The environment commands get inside, before ExecOptions.env is added. */
export const NSPAWN_BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  USER: 'root',
  LOGNAME: 'root',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
};

const MAX_SYMLINK_HOPS = 40;

// nsenter itself failing (as opposed to the command it runs) prints one of these.
const NSENTER_FAILURE =
  /^nsenter: (failed to execute|cannot open|cannot change directory|reassociate to namespace|setns|failed to|neither filename nor target pid)/m;

export class NspawnHost implements Host {
  readonly name: string;
  readonly leaderPid: number;
  /** The container's "/" on this machine (see NspawnHostOptions.root). */
  readonly root: string;
  private readonly nsenter: string;
  // File primitives on paths that resolveIn() already contained.
  private readonly files = new LocalHost();

  constructor(options: NspawnHostOptions) {
    if (!Number.isInteger(options.leaderPid) || options.leaderPid <= 1) {
      throw new HostKitError('HOST_INVALID_OPTIONS', `Expected a leader PID above 1, got ${options.leaderPid}`);
    }
    this.leaderPid = options.leaderPid;
    this.name = `nspawn:${options.machine}`;
    this.root = path.resolve(options.root ?? `/proc/${options.leaderPid}/root`);
    this.nsenter = options.nsenter ?? 'nsenter';
  }

  /** Connects from inside the container's network namespace (its private loopback). */
  async connect(port: number, options?: ConnectOptions): Promise<Duplex> {
    return connectInNetworkNamespace(this.name, this.nsenter, this.leaderPid, port, options);
  }

  async exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const nsenterArgs = ['-t', String(this.leaderPid), '-a'];
    if (options.cwd) nsenterArgs.push(`--wdns=${options.cwd}`);
    nsenterArgs.push('--', file, ...args);

    // nsenter forks the command into the container's PID namespace and does not
    // forward signals, so a timeout signals its process group, sparing nsenter
    // itself: it reaps the command and exits (see SpawnOptions.spareLeader).
    // The working directory is inside (--wdns), not a directory of this machine.
    const { cwd: _inside, ...rest } = options;
    const result = await spawnCollect(this.nsenter, nsenterArgs, {
      ...rest,
      env: { ...NSPAWN_BASE_ENV, ...options.env },
      spareLeader: true,
    });
    const { stdout, stderr } = result;
    const data = { host: this.name, file, args: [...args] };
    if (result.timedOut) throw timedOutError(this.name, file, args, options, result);
    if (result.exitCode === undefined && !result.signal) {
      throw new HostKitError('EXEC_FAILED', `Could not run nsenter for ${file} on ${this.name}: ${result.error?.message ?? 'no exit status'}`, {
        data,
        cause: result.error,
      });
    }
    if (result.exitCode !== undefined && result.exitCode !== 0 && NSENTER_FAILURE.test(stderr)) {
      throw new HostKitError('EXEC_FAILED', `Could not run ${file} on ${this.name}: ${stderr.trim()}`, {
        data: { ...data, exitCode: result.exitCode },
      });
    }
    // Killed by a signal: report it as a shell would (128 + signal number).
    const exitCode = result.exitCode ?? 128 + (osConstants.signals[result.signal as NodeJS.Signals] ?? 0);
    return { exitCode, stdout, stderr, ...(result.truncated ? { truncated: result.truncated } : {}) };
  }

  async readFile(hostPath: string, options: PathOptions = {}): Promise<Buffer | undefined> {
    if (!options.managed) return this.files.readFile(await this.resolveIn(hostPath, true));
    try {
      return await readNoFollow(await this.resolveIn(hostPath, false, true), this.name, hostPath);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async stat(hostPath: string): Promise<FileStat | undefined> {
    return this.files.stat(await this.resolveIn(hostPath, false));
  }

  async writeFile(hostPath: string, data: Buffer | string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    // Temporary file (O_EXCL) in the resolved directory, renamed over the last
    // component: a symlink there is replaced, not followed.
    await this.files.writeFile(await this.resolveIn(hostPath, false, options.managed), data, ownership);
  }

  async appendFile(hostPath: string, data: Buffer | string, ownership: Ownership, options?: AppendOptions): Promise<void> {
    await this.files.appendFile(await this.resolveIn(hostPath, false), data, ownership, options);
  }

  async mkdir(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    const target = await this.resolveIn(hostPath, false, options.managed);
    try {
      await fs.mkdir(target, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await setOwnershipNoFollow(target, ownership);
  }

  async setOwnership(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    await setOwnershipNoFollow(await this.resolveIn(hostPath, false, options.managed), ownership);
  }

  async remove(hostPath: string, options: PathOptions = {}): Promise<void> {
    // LocalHost.remove lstat()s and unlinks or rmdirs: no following.
    await this.files.remove(await this.resolveIn(hostPath, false, options.managed));
  }

  async readlink(hostPath: string): Promise<string | undefined> {
    return readlinkOrUndefined(await this.resolveIn(hostPath, false));
  }

  async symlink(target: string, hostPath: string): Promise<void> {
    // The target is stored as written: it is resolved inside the container when followed there.
    await replaceSymlink(target, await this.resolveIn(hostPath, false));
  }

  // Through the container's root, with every symlink resolved inside it (as
  // for file operations): /var/run -> /run must not lead to this machine's /run.
  localPath(hostPath: string): Promise<string> {
    return this.resolveIn(hostPath, true);
  }

  async readdir(hostPath: string): Promise<string[] | undefined> {
    return this.files.readdir(await this.resolveIn(hostPath, true));
  }

  /**
   * The path on this machine for `hostPath` inside the container, with every
   * symlink resolved inside the container's root (the last component only when
   * `followLast`). ".." is applied to the resolved path, so it never climbs
   * above the root (and "/missing/../x" is "/x", where the kernel would say
   * ENOENT). Components that do not exist are kept as they are.
   */
  /** The container's own name: its UTS namespace, asked inside (this side's /proc would answer for this machine). */
  async hostname(): Promise<string> {
    const result = await this.exec('uname', ['-n']);
    const name = result.stdout.trim();
    if (result.exitCode !== 0 || !name) throw new HostKitError('HOSTNAME_UNKNOWN', `Could not read the hostname of ${this.name}: ${result.stderr.trim()}`);
    return name;
  }

  // flock(2) locks the file itself, so taking it from this side through the container's root
  // excludes a process inside that locks the same path.
  async lock(hostPath: string, options: { waitMs: number }): Promise<HeldLock | undefined> {
    return flockFile(await this.resolveIn(hostPath, false), options.waitMs);
  }

  async resolveIn(hostPath: string, followLast: boolean, managed = false): Promise<string> {
    if (!path.posix.isAbsolute(hostPath)) {
      throw new HostKitError('HOST_PATH_NOT_ABSOLUTE', `Expected an absolute host path, got "${hostPath}"`);
    }
    const resolved: string[] = [];
    const todo = hostPath.split('/');
    let hops = 0;
    while (todo.length > 0) {
      const part = todo.shift() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      const candidate = path.join(this.root, ...resolved, part);
      if (!followLast && !todo.some((rest) => rest !== '' && rest !== '.')) {
        resolved.push(part);
        // A trailing ".." or "." was already consumed; nothing left to follow.
        break;
      }
      let st;
      try {
        st = await fs.lstat(candidate);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
        // Missing: keep it, the operation will see ENOENT. Later components
        // are still checked one by one, since a ".." may climb back out.
        resolved.push(part);
        continue;
      }
      if (!st.isSymbolicLink()) {
        resolved.push(part);
        continue;
      }
      // A managed path goes through no symlink at all (PathOptions.managed).
      if (managed) throw symlinkRefused(this.name, hostPath, '/' + [...resolved, part].join('/'));
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new HostKitError('HOST_PATH_LOOP', `Too many symlinks resolving "${hostPath}" on ${this.name}`, {
          data: { path: hostPath },
        });
      }
      const target = await fs.readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      todo.unshift(...target.split('/'));
    }
    return path.join(this.root, ...resolved);
  }
}
