// How a driver reaches a host. Every change to a host goes through this
// interface, so the same drivers run against the local machine, a booted test
// host (nspawn), a remote one (ssh), or a recording fake in unit tests.
//
// Paths are absolute paths *on the managed host*. Commands are a file plus an
// argument array: never a shell string.
import type { Duplex } from 'node:stream';

export interface ExecOptions {
  /** Written to the command's standard input. */
  input?: string | Buffer;
  /** Extra environment variables for the command. */
  env?: Record<string, string>;
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
  /** Working directory on the host. */
  cwd?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
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

  /** Run a command. Resolves with its exit code; rejects only if it cannot be started or times out. */
  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;

  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;

  /** lstat: undefined when the path does not exist. */
  stat(path: string): Promise<FileStat | undefined>;

  /**
   * Write a file atomically: a temporary file in the same directory, owner and
   * mode set on it, then rename over the target. If this throws, the target
   * still has its previous bytes (the temporary file is removed).
   */
  writeFile(path: string, data: Buffer | string, ownership: Ownership): Promise<void>;

  /**
   * Append to a file (a journal), creating it with owner and mode when it does
   * not exist; the last component is not followed. Each call is one write, so a
   * process killed between calls never leaves a partial append; unlike
   * writeFile, nothing is synced to disk.
   */
  appendFile(path: string, data: Buffer | string, ownership: Ownership): Promise<void>;

  /** Create one directory (parent must exist) with owner and mode; no error if it exists. */
  mkdir(path: string, ownership: Ownership): Promise<void>;

  /** Set owner and mode of an existing path (no symlink following). */
  setOwnership(path: string, ownership: Ownership): Promise<void>;

  /** Remove a file, or an empty directory. No error if it is already gone. */
  remove(path: string): Promise<void>;

  /** Names in a directory, or undefined if it does not exist. */
  readdir(path: string): Promise<string[] | undefined>;

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
   * An exclusive flock(2) on a file of the host (created, 0600, if missing),
   * waiting up to `waitMs` (0: not at all). Undefined when another process
   * holds it past the wait. A lock whose holder dies is free again at once.
   */
  lock(path: string, options: { waitMs: number }): Promise<HeldLock | undefined>;
}

/** A lock taken with Host.lock: held until released or until the process holding it dies. */
export interface HeldLock {
  release(): Promise<void>;
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
