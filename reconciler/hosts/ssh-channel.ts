// This side of the remote helper's protocol (ssh-helper.py): JSON lines over
// the standard input and output of one process (an SSH session, or python3 on
// this machine in unit tests: the same code path after the transport). Many
// requests may be in flight; those issued in one turn of the event loop go out
// in one write, so a batch of stats or reads costs one round trip.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostKitError } from '../core/errors.js';
import { symlinkRefused } from './local.js';

const HELPER_FILE = fileURLToPath(new URL('./ssh-helper.py', import.meta.url));
let helperSource: Buffer | undefined;

/** The helper's source, sent as the first bytes of the session's input. */
export function helperScript(): Buffer {
  return (helperSource ??= readFileSync(HELPER_FILE));
}

/**
 * The python3 command line that runs the helper: it reads exactly the
 * script's bytes from its standard input, then serves requests on the rest
 * (or, given `mode`, relays a socket or receives a file: ssh-helper.py).
 * -I: no PYTHON* variables, no user site directory.
 */
export function helperArgv(mode: readonly string[] = []): string[] {
  return ['python3', '-I', '-c', `import sys;exec(compile(sys.stdin.buffer.read(${helperScript().length}),"hostkit-ssh-helper","exec"))`, ...mode];
}

export interface HelperHello {
  /** The helper's PID on the host. */
  pid: number;
  /** The user it runs as there (0 under sudo). */
  uid: number;
}

/** How the helper process ended: its exit, what it printed last, and whether it had said hello. */
export interface HelperEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  started: boolean;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  op: string;
  path: string | undefined;
}

interface HelperError {
  symlink?: string;
  errno?: string;
  message?: string;
  path?: string;
}

const STDERR_KEPT = 4096;

export class HelperChannel {
  readonly hello: HelperHello;
  /** Requests sent, and round trips: sends made while nothing was in flight. */
  readonly counts = { requests: 0, roundTrips: 0 };
  private readonly child: ChildProcess;
  private readonly hostName: string;
  private readonly pending = new Map<number, Pending>();
  private queue: string[] = [];
  private scheduled = false;
  private inFlight = 0;
  private nextId = 1;
  private ended: Error | undefined;
  private readonly closed: Promise<void>;

  private constructor(child: ChildProcess, hostName: string, hello: HelperHello, closed: Promise<void>) {
    this.child = child;
    this.hostName = hostName;
    this.hello = hello;
    this.closed = closed;
  }

  /**
   * Sends the script to a process started with helperArgv() (stdio all pipes)
   * and resolves once the helper says hello. `endError` turns the process's
   * end into the error that pending and later requests reject with (and
   * start, when it ends before the hello).
   */
  static start(child: ChildProcess, hostName: string, endError: (end: HelperEnd) => Error): Promise<HelperChannel> {
    return new Promise((resolve, reject) => {
      let channel: HelperChannel | undefined;
      let stderr = '';
      let partial: Buffer[] = [];
      let exit: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: null };
      let markClosed: () => void = () => undefined;
      const closed = new Promise<void>((done) => (markClosed = done));
      const onLine = (line: string) => {
        let message: { hello?: string; pid?: number; uid?: number; id?: number; ok?: unknown; err?: HelperError };
        try {
          message = JSON.parse(line) as typeof message;
        } catch {
          stderr = (stderr + line + '\n').slice(-STDERR_KEPT); // not the protocol: a banner or a warning
          return;
        }
        if (!channel) {
          if (message.hello !== 'hostkit-ssh-helper') return;
          channel = new HelperChannel(child, hostName, { pid: message.pid ?? 0, uid: message.uid ?? -1 }, closed);
          resolve(channel);
          return;
        }
        channel.answer(message.id ?? 0, message.ok, message.err);
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        let start = 0;
        let newline: number;
        while ((newline = chunk.indexOf(10, start)) !== -1) {
          partial.push(chunk.subarray(start, newline));
          const line = Buffer.concat(partial).toString('utf8');
          partial = [];
          start = newline + 1;
          onLine(line);
        }
        if (start < chunk.length) partial.push(chunk.subarray(start));
      });
      child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEPT)));
      child.stdin!.on('error', () => undefined); // EPIPE when it is gone: 'close' says why
      child.once('error', (error) => (stderr += `\n${error.message}`));
      child.once('exit', (code, signal) => (exit = { code, signal }));
      child.once('close', () => {
        const error = endError({ ...exit, stderr: stderr.trim(), started: channel !== undefined });
        if (channel) channel.end(error);
        else reject(error);
        markClosed();
      });
      child.stdin!.write(helperScript());
    });
  }

  /** Sends a request (with the others of this turn) and resolves with the helper's answer. */
  request<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    this.counts.requests++;
    this.queue.push(JSON.stringify({ id, op, ...params }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, op, path: typeof params.path === 'string' ? params.path : undefined });
    });
  }

  /** Closes the helper's input (it exits at once) and waits for the process, killing it past `waitMs`. */
  async close(waitMs = 3_000): Promise<void> {
    this.end(new HostKitError('SSH_CONNECT_FAILED', `The SSH connection to ${this.hostName} was closed`, { retryable: false }));
    this.child.stdin!.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise<void>((done) => (timer = setTimeout(done, waitMs)))]);
    clearTimeout(timer);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.closed;
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0 || this.ended) return;
    if (this.inFlight === 0) this.counts.roundTrips++;
    this.inFlight += this.queue.length;
    const lines = this.queue.join('\n') + '\n';
    this.queue = [];
    this.child.stdin!.write(lines);
  }

  private answer(id: number, ok: unknown, err: HelperError | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.inFlight--;
    if (err) pending.reject(this.helperError(pending, err));
    else pending.resolve(ok);
  }

  // What LocalHost would have thrown: HOST_PATH_SYMLINK, or an error carrying the errno as `code` (ENOENT, ELOOP, ...).
  private helperError(pending: Pending, err: HelperError): Error {
    if (err.symlink !== undefined) return symlinkRefused(this.hostName, pending.path ?? err.symlink, err.symlink);
    if (err.errno) {
      const where = err.path ?? pending.path;
      return Object.assign(new Error(`${err.errno}: ${err.message ?? 'failed'}, ${pending.op}${where ? ` '${where}'` : ''} on ${this.hostName}`), {
        code: err.errno,
        syscall: pending.op,
        ...(where ? { path: where } : {}),
      });
    }
    return new HostKitError('SSH_REMOTE_HELPER_FAILED', `HostKit's helper on ${this.hostName} failed at ${pending.op}: ${err.message ?? 'no reason given'}`, {
      data: { host: this.hostName, op: pending.op },
    });
  }

  private end(error: Error): void {
    if (this.ended) return;
    this.ended = error;
    this.queue = [];
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.inFlight = 0;
  }
}
