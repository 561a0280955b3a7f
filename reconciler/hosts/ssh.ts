// A host reached over SSH. One OpenSSH master connection (the system's `ssh`,
// so ssh-agent, ~/.ssh/config and known_hosts work as they do for the
// operator) carries everything: one long-lived helper process on the host
// (ssh-helper.py, run by its python3) serves every command and file operation
// over a single session, many requests in flight; TCP connections for probes
// are direct-tcpip channels of the same master, and a PostgreSQL socket
// directory is forwarded through it into a private directory here.
//
// What the host needs: sshd, python3, and a login that is root (or may run
// `sudo -n`, with `sudo: true`).
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, createReadStream, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { HostKitError } from '../core/errors.js';
import { connectTarget, connectThroughChild } from './connect.js';
import { spawnCollect, tailText, timedOutError } from './process.js';
import { HelperChannel, helperArgv, helperScript, type HelperEnd } from './ssh-channel.js';
import {
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  type AppendOptions,
  type ConnectOptions,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type HeldLock,
  type Host,
  type Ownership,
  type PathOptions,
} from './types.js';

export interface SshTarget {
  user?: string;
  host: string;
  port?: number;
}

export interface SshHostOptions {
  target: SshTarget;
  /** Shown in logs/plans; default `ssh:HOST`. */
  name?: string;
  /** ssh -i */
  identityFile?: string;
  /** UserKnownHostsFile (default: ssh's own, ~/.ssh/known_hosts). */
  knownHostsFile?: string;
  /** StrictHostKeyChecking=accept-new instead of yes: an unknown key is trusted and recorded, a changed one never. */
  acceptNewHostKey?: boolean;
  /** The remote helper runs under `sudo -n`. */
  sudo?: boolean;
  /** ssh -F FILE (tests use it for ProxyCommand; operators: ~/.ssh/config is read by default). */
  configFile?: string;
  /** More `-o K=V`. */
  extraOptions?: readonly string[];
  /** Give up opening the connection (TCP, key exchange, authentication) after this long; default 30 s. */
  connectTimeoutMs?: number;
}

const USER = /^[A-Za-z_][A-Za-z0-9._-]{0,31}$/;
// A host name or ssh_config alias: labels of letters, digits, "_" and "-", never starting with "-".
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;
const DEFAULT_OPEN_TIMEOUT_MS = 30_000;
// How long the master outlives its last session when HostKit dies without closing it.
const CONTROL_PERSIST_S = 30;

function invalidTarget(text: string, why: string): HostKitError {
  return new HostKitError('SSH_INVALID_TARGET', `Expected an SSH target like ssh://user@host:22, got "${text}": ${why}`, { data: { target: text } });
}

/** ssh://[user@]host[:port] (also a bare host name or user@host); throws SSH_INVALID_TARGET naming the string. */
export function parseSshTarget(text: string): SshTarget {
  let rest = text;
  let uri = false;
  if (rest.startsWith('ssh://')) {
    uri = true;
    rest = rest.slice('ssh://'.length).replace(/\/$/, '');
  } else if (rest.includes('://')) {
    throw invalidTarget(text, 'the only scheme is ssh://');
  }
  const at = rest.lastIndexOf('@');
  const user = at === -1 ? undefined : rest.slice(0, at);
  rest = rest.slice(at + 1);
  if (user !== undefined && !USER.test(user)) throw invalidTarget(text, `"${user}" is not a user name`);
  let host = rest;
  let port: number | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) {
    if (!uri) throw invalidTarget(text, 'an IPv6 address in brackets needs the ssh:// form');
    host = bracketed[1]!;
    if (net.isIPv6(host) === false) throw invalidTarget(text, `"${host}" is not an IPv6 address`);
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (uri && rest.includes(':')) {
    const colon = rest.lastIndexOf(':');
    host = rest.slice(0, colon);
    const digits = rest.slice(colon + 1);
    if (!/^\d{1,5}$/.test(digits)) throw invalidTarget(text, `"${digits}" is not a port`);
    port = Number(digits);
  }
  if (port !== undefined && (port < 1 || port > 65535)) throw invalidTarget(text, `port ${port} is outside 1-65535`);
  if (!bracketed && !HOST_NAME.test(host) && net.isIPv4(host) === false) throw invalidTarget(text, `"${host}" is not a host name or address`);
  return { ...(user !== undefined ? { user } : {}), host, ...(port !== undefined ? { port } : {}) };
}

/** ssh://user@host:port, omitting what is absent. */
export function formatSshTarget(t: SshTarget): string {
  const host = net.isIPv6(t.host) ? `[${t.host}]` : t.host;
  return `ssh://${t.user !== undefined ? `${t.user}@` : ''}${host}${t.port !== undefined ? `:${t.port}` : ''}`;
}

/** The options every ssh process of one connection gets: who and how to authenticate, and which master. */
export function sshBaseArgs(options: SshHostOptions, controlPath: string): string[] {
  const { target } = options;
  const args: string[] = [];
  if (options.configFile) args.push('-F', options.configFile);
  args.push('-o', 'BatchMode=yes', '-o', `ControlPath=${controlPath}`);
  args.push('-o', `StrictHostKeyChecking=${options.acceptNewHostKey ? 'accept-new' : 'yes'}`);
  if (options.knownHostsFile) args.push('-o', `UserKnownHostsFile=${options.knownHostsFile}`);
  if (options.identityFile) args.push('-i', options.identityFile, '-o', 'IdentitiesOnly=yes');
  for (const option of options.extraOptions ?? []) args.push('-o', option);
  if (target.user !== undefined) args.push('-l', target.user);
  if (target.port !== undefined) args.push('-p', String(target.port));
  return args;
}

/**
 * The master: authenticates, then forks into the background (ControlPersist),
 * so its exit status says whether the connection is up. LogLevel DEBUG1
 * without -v: the key exchange prints the server's host key fingerprint (for
 * a refusal's message), and the background master's output goes to /dev/null.
 * No forwarding from the operator's config rides on it.
 */
export function sshMasterArgs(options: SshHostOptions, controlPath: string): string[] {
  const seconds = Math.max(1, Math.ceil((options.connectTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS) / 1000));
  return [
    ...sshBaseArgs(options, controlPath),
    '-o',
    'ControlMaster=yes',
    '-o',
    `ControlPersist=${CONTROL_PERSIST_S}`,
    '-o',
    'LogLevel=DEBUG1',
    '-o',
    `ConnectTimeout=${seconds}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
    '-o',
    'ClearAllForwardings=yes',
    '-N',
    '--',
    options.target.host,
  ];
}

/**
 * A session through the master, never a connection of its own: were the
 * master gone, ssh would log in again by itself; ProxyCommand=false makes that
 * fallback fail at once instead.
 */
export function sshClientArgs(options: SshHostOptions, controlPath: string, extra: readonly string[], command?: string): string[] {
  return [
    ...sshBaseArgs(options, controlPath),
    '-o',
    'ControlMaster=no',
    '-o',
    'ProxyCommand=false',
    ...extra,
    '--',
    options.target.host,
    ...(command !== undefined ? [command] : []),
  ];
}

/** The remote command that starts the helper (a string: sshd hands it to the login's shell); `mode`: ssh-helper.py's relay or receive. */
export function helperCommand(sudo: boolean, mode: readonly string[] = []): string {
  return ['exec', ...(sudo ? ['sudo', '-n'] : []), ...helperArgv(mode)].map(shellWord).join(' ');
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_./=-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** What ssh printed, without its debug lines. */
function sshMessage(log: string): string {
  return log
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('debug1:') && !/^Warning: Permanently added/.test(line))
    .slice(-6)
    .join('\n')
    .trim();
}

/**
 * The known_hosts file ssh checks and records keys in for this target: the
 * option's, else the first UserKnownHostsFile ssh_config chose (`ssh -G`, which
 * reads the configuration only), else ssh's default.
 */
export async function knownHostsFileOf(options: SshHostOptions): Promise<string> {
  if (options.knownHostsFile) return options.knownHostsFile;
  const printed = await spawnCollect('ssh', [...sshBaseArgs(options, 'none'), '-G', '--', options.target.host], { timeoutMs: 10_000 });
  return (printed.exitCode === 0 && /^userknownhostsfile (\S+)/m.exec(printed.stdout)?.[1]) || '~/.ssh/known_hosts';
}

/** Why the master could not start: a refused host key (with the key ssh saw, and the known_hosts file it checked) or anything else ssh said. */
export function masterFailure(options: SshHostOptions, log: string, status: string, knownHosts = options.knownHostsFile ?? '~/.ssh/known_hosts'): HostKitError {
  const where = formatSshTarget(options.target);
  const key = /^debug1: Server host key: (\S+) (SHA256:\S+)/m.exec(log);
  const presented = key ? `${key[1]} ${key[2]}` : 'a key ssh did not print';
  const data = { target: where, host: options.target.host, knownHosts, ...(key ? { keyType: key[1], fingerprint: key[2] } : {}) };
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed/.test(log)) {
    return new HostKitError(
      'SSH_HOST_KEY_CHANGED',
      `The host key of ${where} changed: it presented ${presented}, which does not match ${knownHosts}. ` +
        'Refused: either the host was reinstalled or someone is in the middle. If you know it was reinstalled, ' +
        `verify that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then remove the old key (ssh-keygen -R ${options.target.host})`,
      { data },
    );
  }
  if (/No \S+ host key is known for|Host key verification failed/.test(log)) {
    return new HostKitError(
      'SSH_HOST_KEY_UNKNOWN',
      `The host key of ${where} (${presented}) is not in ${knownHosts}. Refused: verify that fingerprint on the host ` +
        '(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it to known_hosts, or trust it on first use (accept-new-host-key)',
      { data },
    );
  }
  const said = sshMessage(log);
  return new HostKitError('SSH_CONNECT_FAILED', `Could not open an SSH connection to ${where}: ${said || status}`, {
    data: { target: where },
    // A refused login or key will be refused again; a network that did not answer may answer next time.
    retryable: !/Permission denied|Too many authentication failures|Could not resolve hostname/.test(said),
  });
}

// Unix socket paths are short (108 bytes); the ControlPath gets a suffix while it is bound.
function privateParent(): string {
  const tmp = os.tmpdir();
  return tmp.length <= 40 ? tmp : '/tmp';
}

// What mkdtemp makes of PRIVATE_PREFIX (six random characters), and the file in it naming the process it belongs to.
const PRIVATE_PREFIX = 'hostkit-ssh-';
const PRIVATE_DIR = /^hostkit-ssh-[A-Za-z0-9]{6}$/;
const OWNER_FILE = 'owner';

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the private directories of HostKit processes that died without
 * closing their connection (killed, crashed): each names its process in
 * `owner`; one whose process is gone has its master told to exit (it would
 * by itself CONTROL_PERSIST_S after its last session) and is removed. Only
 * this user's directories, never a symlink; a directory without an owner
 * file (being made) is left alone.
 */
export async function sweepAbandoned(parent = privateParent()): Promise<string[]> {
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of (await fs.readdir(parent).catch(() => [] as string[])).filter((n) => PRIVATE_DIR.test(n))) {
    const dir = path.join(parent, name);
    const info = await fs.lstat(dir).catch(() => undefined);
    if (!info?.isDirectory() || (uid !== undefined && info.uid !== uid)) continue;
    const owner = Number((await fs.readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(owner) || owner <= 0 || !processGone(owner)) continue;
    const control = path.join(dir, 'control');
    if (
      await fs.lstat(control).then(
        (st) => st.isSocket(),
        () => false,
      )
    )
      await spawnCollect('ssh', ['-F', 'none', '-o', `ControlPath=${control}`, '-O', 'exit', 'hostkit-abandoned'], { timeoutMs: 10_000 });
    await fs.rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** The ssh processes of one connection: the master (through its control socket) and the sessions it carries. */
class SshConnection {
  readonly options: SshHostOptions;
  /** 0700 on this machine: the control socket, the master's log, forwarded sockets. */
  readonly dir: string;
  readonly controlPath: string;
  /** Local listeners of relayed sockets (SshHost.localPath under sudo), closed with the connection. */
  readonly servers: net.Server[] = [];
  processes = 0;

  constructor(options: SshHostOptions, dir: string) {
    this.options = options;
    this.dir = dir;
    this.controlPath = path.join(dir, 'control');
  }

  spawn(args: readonly string[], stdio: 'pipe' | 'ignore' = 'pipe', stderr?: number): ChildProcess {
    this.processes++;
    return spawn('ssh', args, { stdio: [stdio, stdio, stderr ?? stdio] });
  }

  /** Starts the master; resolves once it is authenticated and in the background. */
  async startMaster(): Promise<void> {
    const logFile = path.join(this.dir, 'master.log');
    // A file, not a pipe: a ProxyCommand inherits ssh's stderr and would hold a pipe open for the connection's life.
    const log = await fs.open(logFile, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    let status: string;
    try {
      const child = this.spawn(sshMasterArgs(this.options, this.controlPath), 'ignore', log.fd);
      status = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(`no connection after ${timeoutMs} ms`);
        }, timeoutMs);
        child.once('error', (error) => {
          clearTimeout(timer);
          resolve(`could not run ssh: ${error.message}`);
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve(code === 0 ? '' : `ssh exited ${signal ?? code}`);
        });
      });
    } finally {
      await log.close();
    }
    if (status) throw masterFailure(this.options, await fs.readFile(logFile, 'utf8'), status, await knownHostsFileOf(this.options));
  }

  /** Ends the master (and every session and forwarding it carries), then removes the private directory. */
  async stop(): Promise<void> {
    for (const server of this.servers) server.close();
    const child = this.spawn(sshClientArgs(this.options, this.controlPath, ['-O', 'exit']), 'ignore');
    await new Promise<void>((resolve) => {
      child.once('error', () => resolve());
      child.once('exit', () => resolve());
    });
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  /** `ssh -O forward -L local:remote`: the master listens on a Unix socket here and opens a channel to the remote socket per connection. */
  async forwardSocket(local: string, remote: string): Promise<void> {
    const child = this.spawn(sshClientArgs(this.options, this.controlPath, ['-O', 'forward', '-L', `${local}:${remote}`]));
    child.stdin!.end();
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout!.resume();
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('close', (c) => resolve(c));
    });
    if (code !== 0) {
      throw new HostKitError('SSH_CONNECT_FAILED', `Could not forward ${remote} of ${formatSshTarget(this.options.target)} over SSH: ${stderr.trim()}`, {
        data: { target: formatSshTarget(this.options.target), socket: remote },
      });
    }
  }
}

interface ExecReply {
  failed?: string;
  exitCode?: number;
  timedOut?: 'SIGTERM' | 'SIGKILL';
  stdout: string;
  stdoutCut: number;
  stderr: string;
  stderrCut: number;
}

export interface SshHostParts {
  name: string;
  target: SshTarget;
  channel: HelperChannel;
  /** The ssh processes; absent for a helper run on this machine (unit tests): no connect, no localPath. */
  connection?: SshConnection;
}

/**
 * The Host over SSH: every file operation does on the host what LocalHost does
 * here (ssh-helper.py). If the connection dies with a request in flight, that
 * request and every later one reject with SSH_CONNECT_FAILED, and the helper
 * exits as soon as its input closes: a write it was doing is then either not
 * done or done entirely (the temporary file is renamed over the target, or at
 * worst left beside it), a command it started runs on (as one a local HostKit
 * killed mid-run started would), and its locks are free.
 *
 * Void operations (writeFile, appendFile, mkdir, setOwnership, remove,
 * symlink) are pipelined: they resolve once sent, without waiting for the
 * host (a change of many files costs one round trip, not one per file). The
 * host runs every later request after them, and none at all after one that
 * failed: every value request (a read, a stat, a command, a lock...) rejects
 * with its failure, naming the op and its path, until flush() (or close())
 * rejects with it too and so acknowledges it. So nothing happens on the host
 * after a failed write that would not have happened locally, where the write
 * itself throws; the engine calls flush() where it reports a step done
 * (apply/executor.ts).
 */
export class SshHost implements Host {
  readonly name: string;
  readonly target: SshTarget;
  /** The helper's PID on the host (for diagnostics and tests). */
  readonly helperPid: number;
  private readonly channel: HelperChannel;
  private readonly connection: SshConnection | undefined;
  private readonly channels = { requests: 0, roundTrips: 0 };
  private readonly forwards = new Map<string, { local: string; names: Set<string> }>();
  private forwarding: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  /** openSshHost() builds one; unit tests give it a channel to a helper run on this machine. */
  constructor(parts: SshHostParts) {
    this.name = parts.name;
    this.target = parts.target;
    this.channel = parts.channel;
    this.connection = parts.connection;
    this.helperPid = parts.channel.hello.pid;
  }

  /**
   * Requests sent and round trips waited for since open (a round trip: a send
   * while nothing was in flight; a channel opened for connect() or a socket
   * forwarding is one of each), and ssh processes spawned (the master and the
   * helper's session included).
   */
  stats(): { requests: number; roundTrips: number; processes: number } {
    return {
      requests: this.channel.counts.requests + this.channels.requests,
      roundTrips: this.channel.counts.roundTrips + this.channels.roundTrips,
      processes: this.connection?.processes ?? 0,
    };
  }

  /**
   * Resolves once every void op sent so far was done on the host (one round
   * trip when any is unanswered, none otherwise); rejects with the first that
   * failed (its errno-style error or HostKitError, naming the op and path),
   * or with SSH_CONNECT_FAILED when the connection ended before they were answered.
   */
  flush(): Promise<void> {
    return this.channel.flush();
  }

  /**
   * Waits for the void ops sent so far, then ends the helper and the master
   * connection (ssh -O exit); idempotent. Locks still held are released on the
   * host. Rejects, once closed, when a void op failed and was not told yet, or
   * the connection ended before they were answered: the command must not end
   * as a success.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      let failed: { error: unknown } | undefined;
      try {
        await this.channel.flush();
      } catch (error) {
        failed = { error };
      }
      await this.channel.close();
      await this.connection?.stop();
      if (failed) throw failed.error;
    })());
  }

  async exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const reply = await this.channel.request<ExecReply>('exec', {
      file,
      args: [...args],
      ...(options.input !== undefined ? { input: Buffer.from(options.input).toString('base64') } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    });
    if (reply.failed !== undefined) {
      throw new HostKitError('EXEC_FAILED', `Could not run ${file} on ${this.name}: ${reply.failed}`, { data: { host: this.name, file, args: [...args] } });
    }
    const stdout = tailText(Buffer.from(reply.stdout, 'base64'), reply.stdoutCut);
    const stderr = tailText(Buffer.from(reply.stderr, 'base64'), reply.stderrCut);
    if (reply.timedOut) throw timedOutError(this.name, file, args, options, { timedOut: reply.timedOut, stdout: stdout.text, stderr: stderr.text });
    return {
      exitCode: reply.exitCode!,
      stdout: stdout.text,
      stderr: stderr.text,
      ...(stdout.cut || stderr.cut ? { truncated: { stdout: stdout.cut, stderr: stderr.cut } } : {}),
    };
  }

  async readFile(hostPath: string, options: PathOptions = {}): Promise<Buffer | undefined> {
    const data = await this.channel.request<string | null>('read', { path: absolute(hostPath), managed: options.managed === true });
    return data === null ? undefined : Buffer.from(data, 'base64');
  }

  async stat(hostPath: string): Promise<FileStat | undefined> {
    return (await this.channel.request<FileStat | null>('stat', { path: absolute(hostPath) })) ?? undefined;
  }

  async writeFile(hostPath: string, data: Buffer | string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    this.channel.send('write', {
      path: absolute(hostPath),
      data: Buffer.from(data).toString('base64'),
      ...ownership,
      managed: options.managed === true,
    });
  }

  async appendFile(hostPath: string, data: Buffer | string, ownership: Ownership, options: AppendOptions = {}): Promise<void> {
    this.channel.send('append', { path: absolute(hostPath), data: Buffer.from(data).toString('base64'), ...ownership, sync: options.sync === true });
  }

  async mkdir(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    this.channel.send('mkdir', { path: absolute(hostPath), ...ownership, managed: options.managed === true });
  }

  async setOwnership(hostPath: string, ownership: Ownership, options: PathOptions = {}): Promise<void> {
    this.channel.send('chown', { path: absolute(hostPath), ...ownership, managed: options.managed === true });
  }

  async remove(hostPath: string, options: PathOptions = {}): Promise<void> {
    this.channel.send('remove', { path: absolute(hostPath), managed: options.managed === true });
  }

  async readdir(hostPath: string): Promise<string[] | undefined> {
    return (await this.channel.request<string[] | null>('readdir', { path: absolute(hostPath) })) ?? undefined;
  }

  async readlink(hostPath: string): Promise<string | undefined> {
    return (await this.channel.request<string | null>('readlink', { path: absolute(hostPath) })) ?? undefined;
  }

  async symlink(target: string, hostPath: string): Promise<void> {
    this.channel.send('symlink', { target, path: absolute(hostPath) });
  }

  /**
   * Writes the local file `localFile` to `hostPath` as one stream through a
   * session of its own (ssh-helper.py receive: a temporary file beside the
   * target, given owner and mode, synced, renamed over it), not as requests
   * of the helper: a package of 50 MB goes at the connection's speed. Resolves
   * with the sha256 the host computed of what it wrote. If it throws, the
   * target is as it was.
   */
  async upload(localFile: string, hostPath: string, ownership: Ownership): Promise<{ sha256: string }> {
    const target = absolute(hostPath);
    const connection = this.requireConnection('upload');
    const { size } = await fs.stat(localFile);
    // Another session than the helper's: what was sent to the helper before (its directory) must be done first.
    await this.channel.flush();
    const mode = ['receive', target, String(ownership.uid), String(ownership.gid), ownership.mode.toString(8), String(size)];
    this.channels.requests++;
    this.channels.roundTrips++;
    const child = connection.spawn(sshClientArgs(connection.options, connection.controlPath, ['-T'], helperCommand(connection.options.sudo === true, mode)));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4096)));
    child.stdin!.on('error', () => undefined); // it ended early: its status says why
    child.stdin!.write(helperScript());
    createReadStream(localFile).pipe(child.stdin!);
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', (error) => {
        stderr += error.message;
        resolve(null);
      });
      child.once('close', (c) => resolve(c));
    });
    const sha256 = /^([0-9a-f]{64})$/m.exec(stdout)?.[1];
    if (code === 0 && sha256) return { sha256 };
    const said = stderr.trim().split('\n').slice(-4).join('\n');
    throw new HostKitError(
      code === 255 ? 'SSH_CONNECT_FAILED' : 'SSH_REMOTE_HELPER_FAILED',
      `Could not copy ${localFile} to ${this.name}:${target}: ${said || `exit ${code}`}`,
      {
        data: { host: this.name, file: target },
        retryable: code === 255,
      },
    );
  }

  /** The host's kernel name (uname -n), as the helper's hello said it (older helpers: asked). */
  async hostname(): Promise<string> {
    // Said in the helper's hello (no round trip): the name the host had when the connection opened.
    return this.channel.hello.hostname ?? this.channel.request<string>('hostname');
  }

  /** flock(2) held by the helper: released with release(), or when the connection (and so the helper) ends. */
  async lock(hostPath: string, options: { waitMs: number }): Promise<HeldLock | undefined> {
    const file = absolute(hostPath);
    let id: number | null;
    try {
      id = await this.channel.request<number | null>('lock', { path: file, waitMs: Math.max(0, options.waitMs) });
    } catch (error) {
      if (error instanceof HostKitError || this.channel.isDeferred(error)) throw error;
      throw new HostKitError('LOCK_FAILED', `Could not take the lock ${file} on ${this.name}: ${(error as Error).message}`, { data: { file }, cause: error });
    }
    if (id === null) return undefined;
    return {
      release: async () => {
        try {
          await this.channel.request('unlock', { lock: id });
        } catch (error) {
          // A connection that ended took the lock with it.
          if (!this.channel.isDeferred(error)) return;
          // A write sent before failed, so the unlock was not run: acknowledge the failure (the helper
          // runs requests again), unlock, and let the caller know; it must not be swallowed here.
          await this.channel.flush().catch(() => undefined);
          await this.channel.request('unlock', { lock: id }).catch(() => undefined);
          throw error;
        }
      },
    };
  }

  /**
   * A direct-tcpip channel of the master (`ssh -W ADDRESS:PORT` as a client
   * of the control socket), so the connection is made by the host's sshd from
   * the host's own network stack. When it is up: the multiplexing client asks
   * the master for the channel and hears back only once the server confirmed
   * it, which sshd does only once its connect() succeeded; at LogLevel DEBUG1
   * it then prints "master session id: N" (OpenSSH's mux.c, since 6.7). A
   * refused or unreachable port makes the server fail the channel open: the
   * client says "Stdio forwarding request failed" and exits 255. Either comes
   * before any byte of the stream, so connect resolves exactly when connected.
   */
  async connect(port: number, options: ConnectOptions = {}): Promise<Duplex> {
    // A name is resolved by the host (the ACME directory's, as the host's own resolver sees it).
    const { address, timeoutMs } = connectTarget(port, options, true);
    const connection = this.requireConnection('connect');
    // A channel of its own, so the helper's order does not reach it: a probe sees the writes sent before it.
    await this.channel.flush();
    this.channels.requests++;
    this.channels.roundTrips++;
    const forward = `${net.isIPv6(address) ? `[${address}]` : address}:${port}`;
    const child = connection.spawn(sshClientArgs(connection.options, connection.controlPath, ['-o', 'LogLevel=DEBUG1', '-W', forward]));
    return connectThroughChild(this.name, port, address, child, {
      connected: /master session id: \d+/,
      reason: (stderr, code) => {
        const refused = /Stdio forwarding request failed: (.+)/.exec(stderr);
        if (refused) return `the host refused the channel (${refused[1]!.trim()}: nothing listening there, or sshd forbids TCP forwarding)`;
        return `ssh exited ${code}: ${sshMessage(stderr)}`;
      },
      timeoutMs,
    });
  }

  /**
   * A private directory on this machine where each Unix socket now in the host's
   * directory `hostPath` (PostgreSQL's .s.PGSQL.PORT) is forwarded, so a client
   * here connects as if on the host, and as the user the helper runs as (whom
   * PostgreSQL's peer authentication then sees): a login that is the helper's
   * user has the master forward it (ssh -O forward -L: sshd opens the remote
   * socket as the login user); under `sudo`, every connection is relayed by a
   * helper of its own run under sudo (ssh-helper.py relay), so it is root that
   * opens the socket, as for a local HostKit. Sockets that appear later are
   * forwarded on the next call. Undefined where ssh's -L syntax cannot name the
   * path (a ":" or a blank in it).
   */
  async localPath(hostPath: string): Promise<string | undefined> {
    const dir = absolute(hostPath);
    if (/[:\s]/.test(dir)) return undefined;
    const connection = this.requireConnection('localPath');
    const forwarded = this.forwarding.then(async () => {
      const names = (await this.channel.request<string[] | null>('sockets', { path: dir })) ?? [];
      let forward = this.forwards.get(dir);
      if (!forward) {
        const local = path.join(connection.dir, `sockets-${this.forwards.size + 1}`);
        await fs.mkdir(local, { mode: 0o700 });
        forward = { local, names: new Set() };
        this.forwards.set(dir, forward);
      }
      for (const name of names.filter((n) => !forward.names.has(n))) {
        const local = path.join(forward.local, name);
        const remote = path.posix.join(dir, name);
        if (connection.options.sudo) {
          await this.relaySocket(connection, local, remote);
        } else {
          this.channels.requests++;
          this.channels.roundTrips++;
          await connection.forwardSocket(local, remote);
        }
        forward.names.add(name);
      }
      return forward.local;
    });
    this.forwarding = forwarded.catch(() => undefined);
    return forwarded;
  }

  /** Listens on `local`; each connection there is carried by a session of its own running the helper's relay to `remote` under sudo. */
  private async relaySocket(connection: SshConnection, local: string, remote: string): Promise<void> {
    const command = helperCommand(true, ['relay', remote]);
    const server = net.createServer((client) => {
      this.channels.requests++;
      this.channels.roundTrips++;
      const child = connection.spawn(sshClientArgs(connection.options, connection.controlPath, ['-T'], command));
      child.stderr!.resume();
      child.stdin!.on('error', () => undefined);
      child.stdin!.write(helperScript());
      client.pipe(child.stdin!);
      child.stdout!.pipe(client);
      client.on('error', () => child.kill());
      client.on('close', () => child.kill());
      child.once('error', () => client.destroy());
      child.once('close', () => client.destroy());
    });
    server.unref();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(local, () => resolve());
    });
    await fs.chmod(local, 0o600);
    connection.servers.push(server);
  }

  private requireConnection(what: string): SshConnection {
    if (!this.connection) throw new HostKitError('HOST_INVALID_OPTIONS', `${what} needs an SSH connection; ${this.name} is a helper run on this machine`);
    return this.connection;
  }
}

function absolute(hostPath: string): string {
  if (!path.posix.isAbsolute(hostPath)) throw new HostKitError('HOST_PATH_NOT_ABSOLUTE', `Expected an absolute host path, got "${hostPath}"`);
  return path.posix.normalize(hostPath);
}

/** Why the helper's session ended: python3 or sudo missing or refused, or the connection gone. */
export function helperEndError(name: string, end: HelperEnd): HostKitError {
  const said = end.stderr.split('\n').slice(-6).join('\n');
  if (!end.started) {
    const python = /python3.*(not found|No such file)|(not found|No such file).*python3/.test(said);
    const sudo = /^sudo: /m.test(said);
    const why = python
      ? `python3 is not installed there (or not on the login's PATH). HostKit runs a small python3 helper on hosts it reaches over SSH, as Ansible does: install python3`
      : sudo
        ? `sudo -n refused: ${said}`
        : `it ended (${end.signal ?? `exit ${end.code}`})${said ? `: ${said}` : ''}`;
    return new HostKitError('SSH_REMOTE_HELPER_FAILED', `HostKit's helper could not start on ${name}: ${why}`, {
      data: { host: name, exitCode: end.code, ...(python ? { missing: 'python3' } : {}) },
    });
  }
  return new HostKitError('SSH_CONNECT_FAILED', `The SSH connection to ${name} ended (${end.signal ?? `exit ${end.code}`})${said ? `: ${said}` : ''}`, {
    data: { host: name, exitCode: end.code },
  });
}

/** Starts the master (ControlMaster, private ControlPath in a 0700 temp dir), verifies the host key, starts the remote helper. */
export async function openSshHost(options: SshHostOptions): Promise<SshHost> {
  const name = options.name ?? `ssh:${options.target.host}`;
  // Checked again: a target that did not come from parseSshTarget must not smuggle an option in.
  parseSshTarget(formatSshTarget(options.target));
  await sweepAbandoned();
  const dir = await fs.mkdtemp(path.join(privateParent(), PRIVATE_PREFIX));
  const connection = new SshConnection(options, dir);
  try {
    await fs.writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`, { mode: 0o600 });
    await connection.startMaster();
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
  try {
    const child = connection.spawn(sshClientArgs(options, connection.controlPath, ['-T'], helperCommand(options.sudo === true)));
    const channel = await HelperChannel.start(child, name, (end) => helperEndError(name, end));
    return new SshHost({ name, target: options.target, channel, connection });
  } catch (error) {
    await connection.stop();
    throw error;
  }
}
