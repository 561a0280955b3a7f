// How a driver reaches a host. Every change to a host goes through this
// interface, so the same drivers run against the local machine, a booted test
// host (nspawn), a remote one (ssh), or a recording fake in unit tests.
//
// Paths are absolute paths *on the managed host*. Commands are a file plus an
// argument array: never a shell string.
import type { Duplex } from 'node:stream';

/** How long a timed-out command has between SIGTERM and SIGKILL, unless ExecOptions.killGraceMs says otherwise. */
export const DEFAULT_KILL_GRACE_MS = 5_000;

/** Output kept per stream (its tail), unless ExecOptions.maxOutputBytes says otherwise. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * For callers that parse a command's whole output (systemctl show, nft -j):
 * far above what any host prints there, while a runaway stream stays bounded.
 */
export const PARSED_OUTPUT_MAX_BYTES = 64 * 1024 * 1024;

export interface ExecOptions {
  /** Written to the command's standard input. */
  input?: string | Buffer;
  /** Extra environment variables for the command. */
  env?: Record<string, string>;
  /**
   * Give the command this many milliseconds. The command runs in its own
   * process group; when the time is up the whole group gets SIGTERM, then
   * SIGKILL after `killGraceMs`, and exec rejects with EXEC_TIMED_OUT naming the
   * command and the time. A process that left the group (setsid, a daemon, a
   * systemd unit it started) is not reached: its owner must stop it. No
   * timeout: the command may run for ever.
   */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL after a timeout; default DEFAULT_KILL_GRACE_MS (5 s). */
  killGraceMs?: number;
  /**
   * Bytes kept of each of stdout and stderr: past this, only the tail is kept,
   * behind a "[... N bytes cut ...]" line, and ExecResult.truncated says how
   * much went. Default DEFAULT_MAX_OUTPUT_BYTES (1 MiB); a caller that parses
   * the whole output raises it (PARSED_OUTPUT_MAX_BYTES).
   */
  maxOutputBytes?: number;
  /** Working directory on the host. */
  cwd?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Bytes cut from the head of stdout and stderr (see ExecOptions.maxOutputBytes); absent when nothing was cut. */
  truncated?: { stdout: number; stderr: number };
}

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileStat {
  type: FileType;
  /** Permission bits only (e.g. 0o640). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

export interface Ownership {
  mode: number;
  uid: number;
  gid: number;
}

export interface Host {
  /** A short name for logs and plans: "local", "nspawn:hk-test-1", "fake". */
  readonly name: string;

  /**
   * Run a command. Resolves with its exit code and the tail of its output,
   * whatever the code. Rejects with EXEC_FAILED when it cannot be started (or,
   * on hosts that do not report it as 128 + N, is killed by a signal), and
   * with EXEC_TIMED_OUT when it runs out of time (ExecOptions.timeoutMs): its
   * process group got SIGTERM and, past the grace, SIGKILL, and when exec
   * rejects no process of that group is left running.
   */
  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;

  /**
   * The file's bytes, or undefined when it does not exist. Symlinks are followed
   * (HostKit's own state, secret files), unless `options.managed`.
   */
  readFile(path: string, options?: PathOptions): Promise<Buffer | undefined>;

  /** lstat: undefined when the path does not exist. */
  stat(path: string): Promise<FileStat | undefined>;

  /**
   * Write a file atomically: a temporary file in the same directory, owner and
   * mode set on it, then rename over the target. If this throws, the target
   * still has its previous bytes (the temporary file is removed).
   */
  writeFile(path: string, data: Buffer | string, ownership: Ownership, options?: PathOptions): Promise<void>;

  /**
   * Append to a file (a journal), creating it with owner and mode when it does
   * not exist; the last component is not followed. Each call is one write, so a
   * process killed between calls never leaves a partial append. Nothing is
   * synced to disk unless `options.sync`: then the file's data, earlier
   * appends included, is on disk (fdatasync) when this resolves, so what it
   * announces survives a power loss.
   */
  appendFile(path: string, data: Buffer | string, ownership: Ownership, options?: AppendOptions): Promise<void>;

  /**
   * Optional, for large files (a package bootstrap copies): write the bytes of
   * the file `localFile` of this machine to `path` as one stream, atomically
   * as writeFile does; resolves with the sha256 of what the host wrote. Hosts
   * without it take writeFile or appendFile in pieces.
   */
  upload?(localFile: string, path: string, ownership: Ownership): Promise<{ sha256: string }>;

  /** Create one directory (parent must exist) with owner and mode; no error if it exists. */
  mkdir(path: string, ownership: Ownership, options?: PathOptions): Promise<void>;

  /** Set owner and mode of an existing path (no symlink following). */
  setOwnership(path: string, ownership: Ownership, options?: PathOptions): Promise<void>;

  /** Remove a file, or an empty directory. No error if it is already gone. */
  remove(path: string, options?: PathOptions): Promise<void>;

  /** Names in a directory, or undefined if it does not exist. */
  readdir(path: string): Promise<string[] | undefined>;

  /** Where a symlink points (as written, not resolved), or undefined when the path is not a symlink. */
  readlink(path: string): Promise<string | undefined>;

  /**
   * Point `path` at `target` atomically: a new link beside it, renamed over it. Readers
   * see the old target or the new one, never neither; a symlink already at `path` is
   * replaced, not followed. If this throws, `path` is as it was.
   */
  symlink(target: string, path: string): Promise<void>;

  /**
   * Where a path of the managed host can be opened from this machine (e.g. a
   * Unix socket a client connects to), or undefined when the host is remote.
   */
  localPath(path: string): Promise<string | undefined>;

  /**
   * A TCP connection to a port on the host's own network stack (its loopback,
   * by default), for probes and health checks that must see what the host
   * sees. Resolves once connected; rejects with HOST_CONNECT_FAILED (refused,
   * unreachable, timed out). Destroying the stream closes the connection.
   */
  connect(port: number, options?: ConnectOptions): Promise<Duplex>;

  /**
   * The host's own name (its kernel's, `uname -n`): what an apply checks
   * against the Host manifest, so a manifest is applied only to its machine.
   */
  hostname(): Promise<string>;

  /**
   * Optional, for hosts that pipeline void operations (writeFile, appendFile,
   * mkdir, setOwnership, remove, symlink resolve once sent: SshHost): resolves
   * once every void op sent so far is done on the host; rejects with the first
   * that failed. Until then, nothing sent after that op runs and every value
   * request rejects with its failure; flush() rejecting acknowledges it (the
   * host runs requests again). Hosts without it finish each op before it
   * resolves. The engine calls it where it reports a step done.
   */
  flush?(): Promise<void>;

  /**
   * An exclusive flock(2) on a file of the host (created, 0600, if missing),
   * waiting up to `waitMs` (0: not at all). Undefined when another process
   * holds it past the wait. A lock whose holder dies is free again at once.
   */
  lock(path: string, options: { waitMs: number }): Promise<HeldLock | undefined>;
}

/** How a file operation treats symlinks. */
export interface PathOptions {
  /**
   * A path a manifest chose (a File, EnvFile or Directory): the operation fails with
   * HOST_PATH_SYMLINK when a directory on the way is a symlink, and the last
   * component is opened with O_NOFOLLOW (a symlink there fails too).
   */
  managed?: boolean;
}

/** A lock taken with Host.lock: held until released or until the process holding it dies. */
export interface HeldLock {
  release(): Promise<void>;
}

export interface AppendOptions {
  /** fdatasync before resolving (see Host.appendFile). */
  sync?: boolean;
}

export interface ConnectOptions {
  /** Address on the host; default 127.0.0.1. */
  address?: string;
  /** Give up connecting after this long; default 5 s. */
  timeoutMs?: number;
}

/** The command failed with a non-zero exit code; carries what it printed. */
export function describeExec(file: string, args: readonly string[], result: ExecResult): string {
  const output = (result.stderr || result.stdout).trim().split('\n').slice(-10).join('\n');
  return `${[file, ...args].join(' ')} exited ${result.exitCode}${output ? `: ${output}` : ''}`;
}
