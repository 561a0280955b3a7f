// One process run to completion for a Host's exec: its own process group, a
// timeout that ends the whole group (SIGTERM, then SIGKILL after a grace), and
// only the tail of its output kept. node:child_process directly: a run spawns
// few processes, and execa's ~100 modules cost more start-up than they save.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { HostKitError } from '../core/errors.js';
import { DEFAULT_KILL_GRACE_MS, DEFAULT_MAX_OUTPUT_BYTES, type ExecOptions } from './types.js';

export interface SpawnOptions extends Omit<ExecOptions, 'env'> {
  /** The whole environment of the process (not added to this one's). */
  env?: NodeJS.ProcessEnv;
  /**
   * Signal every member of the group but its leader (nsenter). The leader is
   * the parent of what runs inside the container; left alive, it reaps its
   * child and exits, where killing it would leave the child a zombie of this
   * machine's init, keeping the container's PID namespace busy until reaped.
   */
  spareLeader?: boolean;
}

export interface Spawned {
  exitCode?: number;
  signal?: NodeJS.Signals;
  /** Could not start (e.g. ENOENT). */
  error?: Error;
  /** Set when the timeout fired: the last signal its process group got. */
  timedOut?: 'SIGTERM' | 'SIGKILL';
  stdout: string;
  stderr: string;
  /** Bytes cut from the head of each stream; only when something was cut. */
  truncated?: { stdout: number; stderr: number };
}

// After the final SIGKILL: how long the group has to be gone (the spared leader
// to exit) and the pipes to close, before they are let go. A process that left
// the group (setsid) may hold them open for ever.
const SETTLE_MS = 2_000;

export function spawnCollect(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<Spawned> {
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const limit = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      // setsid: the child leads a new process group, which the timeout signals.
      detached: true,
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const out = new Tail(limit);
    const err = new Tail(limit);
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    let error: Error | undefined;
    child.on('error', (e) => {
      error = e; // e.g. ENOENT; 'close' follows
    });
    if (options.input !== undefined) {
      child.stdin!.on('error', () => undefined); // the command may exit without reading it
      child.stdin!.end(options.input);
    }

    let timedOut: Spawned['timedOut'];
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms));
    const pgid = child.pid;

    const finish = () => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      const stdout = out.finish();
      const stderr = err.finish();
      const code = exited?.code ?? null;
      const signal = exited?.signal ?? null;
      resolve({
        ...(code !== null && !error ? { exitCode: code } : {}),
        ...(signal ? { signal } : {}),
        ...(error ? { error } : {}),
        ...(timedOut ? { timedOut } : {}),
        stdout: stdout.text,
        stderr: stderr.text,
        ...(stdout.cut || stderr.cut ? { truncated: { stdout: stdout.cut, stderr: stderr.cut } } : {}),
      });
    };
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    child.on('close', finish);

    if (options.timeoutMs !== undefined && pgid !== undefined) {
      later(options.timeoutMs, () => {
        timedOut = 'SIGTERM';
        void signalGroup(pgid, 'SIGTERM', options.spareLeader ?? false);
        later(graceMs, () => {
          timedOut = 'SIGKILL';
          void killGroup(pgid, options.spareLeader ?? false).then(() => {
            if (done) return;
            later(SETTLE_MS, () => {
              // Still not closed: the leader or a pipe outlived its group.
              signalPid(-pgid, 'SIGKILL');
              child.stdout!.destroy();
              child.stderr!.destroy();
              later(100, finish);
            });
          });
        });
      });
    }
  });
}

/** The error a timed-out command rejects with: names it, its host, the time and what was sent. */
export function timedOutError(host: string, file: string, args: readonly string[], options: ExecOptions, spawned: Spawned): HostKitError {
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const sent = spawned.timedOut === 'SIGKILL' ? `SIGTERM, then SIGKILL after ${graceMs} ms` : 'SIGTERM';
  return new HostKitError('EXEC_TIMED_OUT', `${commandLine(file, args)} on ${host} timed out after ${options.timeoutMs} ms; its process group got ${sent}`, {
    data: {
      host,
      file,
      args: [...args],
      timeoutMs: options.timeoutMs,
      killGraceMs: graceMs,
      signal: spawned.timedOut,
      stderr: spawned.stderr.slice(-2000),
    },
    retryable: true,
  });
}

/** A command line for messages, shortened when long. */
export function commandLine(file: string, args: readonly string[]): string {
  const line = [file, ...args].join(' ');
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

// The head of a stream is dropped once more than `limit` bytes arrived.
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.limit) {
      const first = this.chunks.shift()!;
      this.bytes -= first.length;
      this.dropped += first.length;
    }
  }

  finish(): { text: string; cut: number } {
    let buffer = Buffer.concat(this.chunks);
    let cut = this.dropped;
    if (buffer.length > this.limit) {
      cut += buffer.length - this.limit;
      buffer = buffer.subarray(buffer.length - this.limit);
    }
    return tailText(buffer, cut);
  }
}

/**
 * The text of a stream's kept tail, `cut` bytes having gone before it: behind a
 * "[... N bytes cut ...]" line when any did, starting at a character. Also
 * for tails kept elsewhere (the SSH helper keeps them on the remote host).
 */
export function tailText(kept: Buffer, cut: number): { text: string; cut: number } {
  if (cut === 0) return { text: kept.toString('utf8'), cut };
  // Start at a character, not in the middle of one (UTF-8 continuation bytes).
  let skip = 0;
  while (skip < 3 && skip < kept.length && (kept[skip]! & 0xc0) === 0x80) skip++;
  cut += skip;
  return { text: `[... ${cut} bytes cut ...]\n${kept.subarray(skip).toString('utf8')}`, cut };
}

async function signalGroup(pgid: number, signal: NodeJS.Signals, spareLeader: boolean): Promise<void> {
  if (!spareLeader) {
    signalPid(-pgid, signal);
    return;
  }
  for (const pid of await liveGroupMembers(pgid)) if (pid !== pgid) signalPid(pid, signal);
}

// SIGKILL until the group is gone (or only the spared leader is left): a
// member may fork between reading /proc and the signal.
async function killGroup(pgid: number, spareLeader: boolean): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  do {
    await signalGroup(pgid, 'SIGKILL', spareLeader);
    const left = (await liveGroupMembers(pgid)).filter((pid) => !spareLeader || pid !== pgid);
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  } while (Date.now() < deadline);
}

// PIDs of the group's processes that are not zombies.
async function liveGroupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') members.push(Number(entry));
  }
  return members;
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
