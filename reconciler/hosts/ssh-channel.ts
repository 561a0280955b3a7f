// This side of the remote helper's protocol (ssh-helper.py): JSON lines over
// the standard input and output of one process (an SSH session, or python3 on
// this machine in unit tests: the same code path after the transport). Many
// requests may be in flight; those issued in one turn of the event loop go out
// in one write, so a batch of stats or reads costs one round trip.
//
// Void operations (writes, appends, mkdir, chown, remove, symlink: send())
// are pipelined: their callers go on at once, without waiting for the answer.
// What keeps that as safe as a local HostKit is the helper's order and the
// epoch every request carries: on the host, each request runs after every
// void op sent before it; when a void op fails, the helper skips every later
// request of the same epoch (nothing after a failed write runs). This side
// keeps the failure ("deferred"): every value request rejects with it, unsent,
// until flush() rejects with it too, which acknowledges it: only then does the
// next epoch begin and the helper run requests again. A value request alone
// does not acknowledge it, since its caller may swallow the error (a
// best-effort read, `.catch(() => undefined)`), and the failure must not get
// lost: the engine's barriers (flush at each step's end) are what take it.
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
  /** The host's kernel name (uname -n) when the helper started. */
  hostname?: string;
}

/** How the helper process ended: its exit, what it printed last, and whether it had said hello. */
export interface HelperEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  started: boolean;
}

interface Pending {
  /** Absent for a void op: nobody waits for its answer. */
  resolve?: (value: unknown) => void;
  reject?: (error: Error) => void;
  op: string;
  path: string | undefined;
  epoch: number;
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
  /**
   * Requests sent, and round trips: waits for an answer begun while nothing
   * else was waited for (a pipelined void op nobody waits for is a request,
   * not a round trip).
   */
  readonly counts = { requests: 0, roundTrips: 0 };
  private readonly child: ChildProcess;
  private readonly hostName: string;
  private readonly pending = new Map<number, Pending>();
  private queue: string[] = [];
  /** Requests in the queue that someone waits for. */
  private queueAwaited = 0;
  private scheduled = false;
  /** Value requests in flight and flush() calls waiting: what a round trip is counted against. */
  private awaited = 0;
  private nextId = 1;
  private ended: Error | undefined;
  private readonly closed: Promise<void>;
  /** The helper runs requests of this epoch; it moves on once a void op's failure was told. */
  private epoch = 0;
  /** The first void op that failed and that no caller was told of yet. */
  private deferred: { epoch: number; error: Error } | undefined;
  /** Each epoch's failure, for the answers of requests the helper skipped after it. */
  private readonly failures = new Map<number, Error>();
  /** Errors that are a void op's failure told late (lock release tells them apart from a lost connection). */
  private readonly deferredErrors = new WeakSet<Error>();
  private voidsSent = 0;
  private voidsAnswered = 0;
  /** Void ops unanswered when the connection ended: whether they happened is unknown. */
  private lost: Error | undefined;
  private readonly flushes: { upTo: number; done: () => void }[] = [];

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
        let message: { hello?: string; pid?: number; uid?: number; hostname?: string; id?: number; ok?: unknown; err?: HelperError; skipped?: number };
        try {
          message = JSON.parse(line) as typeof message;
        } catch {
          stderr = (stderr + line + '\n').slice(-STDERR_KEPT); // not the protocol: a banner or a warning
          return;
        }
        if (!channel) {
          if (message.hello !== 'hostkit-ssh-helper') return;
          channel = new HelperChannel(
            child,
            hostName,
            { pid: message.pid ?? 0, uid: message.uid ?? -1, ...(message.hostname ? { hostname: message.hostname } : {}) },
            closed,
          );
          resolve(channel);
          return;
        }
        channel.answer(message.id ?? 0, message.ok, message.err, message.skipped);
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

  /**
   * Sends a request (with the others of this turn) and resolves with the
   * helper's answer. Rejects at once, unsent, with a void op's failure until
   * flush() acknowledged it (see send()).
   */
  request<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.deferred) return Promise.reject(this.deferred.error);
    const id = this.enqueue(op, params, true);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, op, path: pathOf(params), epoch: this.epoch });
    });
  }

  /**
   * Sends a void op (with the others of this turn) without waiting for its
   * answer. The helper runs it after every void op sent before it, and every
   * later request after it. If it fails there, nothing sent after it runs:
   * every request() rejects with its error until flush() rejects with it and
   * so acknowledges it; until then further void ops are not sent (the helper
   * would skip them). After the connection ended they are dropped: the next
   * request says so.
   */
  send(op: string, params: Record<string, unknown>): void {
    if (this.ended || this.deferred) return;
    const id = this.enqueue(op, params, false);
    this.voidsSent++;
    this.pending.set(id, { op, path: pathOf(params), epoch: this.epoch });
  }

  /**
   * Resolves once every void op sent so far was done on the host (one round
   * trip when any is unanswered, none otherwise); rejects with the first that
   * failed and was not acknowledged yet (and acknowledges it: requests run
   * again), or, when the connection ended before they were answered, with
   * why it ended.
   */
  async flush(): Promise<void> {
    const upTo = this.voidsSent;
    if (this.voidsAnswered < upTo && !this.ended) {
      if (this.awaited === 0 && this.queueAwaited === 0) this.counts.roundTrips++;
      this.awaited++;
      try {
        await new Promise<void>((done) => this.flushes.push({ upTo, done }));
      } finally {
        this.awaited--;
      }
    }
    if (this.deferred) throw this.acknowledge();
    if (this.lost) throw this.lost;
  }

  /** Whether `error` is a void op's failure told late (by request() or flush()), not a failure of the request itself. */
  isDeferred(error: unknown): boolean {
    return error instanceof Error && this.deferredErrors.has(error);
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

  private enqueue(op: string, params: Record<string, unknown>, awaited: boolean): number {
    const id = this.nextId++;
    this.counts.requests++;
    this.queue.push(JSON.stringify({ id, op, epoch: this.epoch, ...params }));
    if (awaited) this.queueAwaited++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.write());
    }
    return id;
  }

  private write(): void {
    this.scheduled = false;
    if (this.queue.length === 0 || this.ended) return;
    if (this.queueAwaited > 0) {
      if (this.awaited === 0) this.counts.roundTrips++;
      this.awaited += this.queueAwaited;
    }
    const lines = this.queue.join('\n') + '\n';
    this.queue = [];
    this.queueAwaited = 0;
    this.child.stdin!.write(lines);
  }

  private answer(id: number, ok: unknown, err: HelperError | undefined, skipped: number | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (!pending.resolve) {
      this.voidsAnswered++;
      if (err && skipped === undefined) {
        const error = this.helperError(pending, err, true);
        this.deferredErrors.add(error);
        this.failures.set(pending.epoch, error);
        this.deferred ??= { epoch: pending.epoch, error };
      }
      this.flushed();
      return;
    }
    this.awaited--;
    if (skipped !== undefined) {
      // Sent after a void op that failed: not run.
      pending.reject!(this.failures.get(skipped) ?? this.skippedUnexplained(pending));
    } else if (err) pending.reject!(this.helperError(pending, err, false));
    else pending.resolve(ok);
  }

  /** The failure, now acknowledged: the helper runs the next epoch's requests again. */
  private acknowledge(): Error {
    const { error } = this.deferred!;
    this.deferred = undefined;
    this.epoch++;
    return error;
  }

  private flushed(): void {
    for (let i = this.flushes.length - 1; i >= 0; i--) {
      const waiting = this.flushes[i]!;
      if (this.voidsAnswered >= waiting.upTo || this.ended) {
        this.flushes.splice(i, 1);
        waiting.done();
      }
    }
  }

  private skippedUnexplained(pending: Pending): Error {
    return new HostKitError('SSH_REMOTE_HELPER_FAILED', `HostKit's helper on ${this.hostName} did not run ${pending.op}: a write sent before it failed`, {
      data: { host: this.hostName, op: pending.op },
    });
  }

  // What LocalHost would have thrown: HOST_PATH_SYMLINK, or an error carrying the errno as `code` (ENOENT, ELOOP, ...).
  // `late`: a void op's failure, told to whichever request comes next, so its message says which write it was.
  private helperError(pending: Pending, err: HelperError, late: boolean): Error {
    const after = late ? ` (${pending.op} sent earlier without waiting for its answer; nothing sent after it was run)` : '';
    if (err.symlink !== undefined) {
      const refused = symlinkRefused(this.hostName, pending.path ?? err.symlink, err.symlink);
      return late ? new HostKitError(refused.code, refused.message + after, { data: { ...refused.data, op: pending.op } }) : refused;
    }
    if (err.errno) {
      // Told late, it names the op's own path (not a temporary file beside it): the caller never saw the op fail.
      const where = late ? (pending.path ?? err.path) : (err.path ?? pending.path);
      return Object.assign(new Error(`${err.errno}: ${err.message ?? 'failed'}, ${pending.op}${where ? ` '${where}'` : ''} on ${this.hostName}${after}`), {
        code: err.errno,
        syscall: pending.op,
        ...(where ? { path: where } : {}),
      });
    }
    return new HostKitError(
      'SSH_REMOTE_HELPER_FAILED',
      `HostKit's helper on ${this.hostName} failed at ${pending.op}${pending.path ? ` '${pending.path}'` : ''}: ${err.message ?? 'no reason given'}${after}`,
      { data: { host: this.hostName, op: pending.op } },
    );
  }

  private end(error: Error): void {
    if (this.ended) return;
    this.ended = error;
    this.queue = [];
    this.queueAwaited = 0;
    if (this.voidsAnswered < this.voidsSent) this.lost = error;
    for (const pending of this.pending.values()) pending.reject?.(error);
    this.pending.clear();
    this.awaited = this.flushes.length; // each flush() still counts itself out
    this.flushed();
  }
}

function pathOf(params: Record<string, unknown>): string | undefined {
  return typeof params.path === 'string' ? params.path : undefined;
}
