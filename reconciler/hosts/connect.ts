// TCP connections into a host's network stack, shared by the Host
// implementations: a direct socket for the machine HostKit runs on, and a
// bridge process for a host whose network is a namespace of this machine.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { HostKitError } from '../core/errors.js';
import type { ConnectOptions } from './types.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

function connectFailed(hostName: string, port: number, address: string, reason: string): HostKitError {
  return new HostKitError('HOST_CONNECT_FAILED', `Could not connect to ${address}:${port} on ${hostName}: ${reason}`, {
    data: { host: hostName, port, address },
    retryable: true,
  });
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HostKitError('HOST_INVALID_PORT', `Expected a TCP port between 1 and 65535, got ${port}`);
  }
}

/** A socket on this machine's own network. */
export function connectLocal(hostName: string, port: number, options: ConnectOptions = {}): Promise<Duplex> {
  checkPort(port);
  const address = options.address ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: address });
    socket.setTimeout(options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, () => {
      socket.destroy();
      reject(connectFailed(hostName, port, address, 'timed out'));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => reject(connectFailed(hostName, port, address, error.code ?? error.message)));
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

// Runs with this machine's node inside the host's network namespace only (its
// file system stays ours): connects, says so on stderr, then copies bytes both
// ways until either side closes.
const BRIDGE = `
const net = require('node:net');
const socket = net.connect({ port: Number(process.argv[1]), host: process.argv[2] });
socket.setTimeout(Number(process.argv[3]), () => { process.stderr.write('ERR ETIMEDOUT\\n'); process.exit(3); });
socket.on('error', (e) => { process.stderr.write('ERR ' + (e.code || e.message) + '\\n'); process.exit(3); });
socket.on('connect', () => {
  socket.setTimeout(0);
  process.stderr.write('CONNECTED\\n');
  process.stdin.pipe(socket);
  socket.pipe(process.stdout);
});
socket.on('close', () => process.exit(0));
`;

// A DNS name (the ACME directory's): letters, digits and "-" in dot-separated labels, none starting with "-".
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Where a connection goes, checked: a port in 1-65535 and an IP address
 * (default 127.0.0.1), or a DNS name where `names` (the host resolves it).
 */
export function connectTarget(port: number, options: ConnectOptions = {}, names = false): { address: string; timeoutMs: number } {
  checkPort(port);
  const address = options.address ?? '127.0.0.1';
  if (net.isIP(address) === 0 && !(names && DNS_NAME.test(address))) {
    throw new HostKitError('HOST_INVALID_ADDRESS', `Expected an IP address${names ? ' or a host name' : ''}, got "${address}"`);
  }
  return { address, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
}

export interface ChildStream {
  /** Its stderr so far says the connection is up (nothing of the stream came yet). */
  connected: RegExp;
  /** Why it failed, when it exited before that. */
  reason: (stderr: string, code: number | null) => string;
  /** Give up (killing it) past this; absent when the child keeps its own time. */
  timeoutMs?: number;
}

/**
 * A connection carried over a child process's stdin and stdout (a bridge into
 * a namespace, an ssh channel): resolved once its stderr says it is connected,
 * rejected with HOST_CONNECT_FAILED when it exits first. Destroying the stream
 * kills the child.
 */
export function connectThroughChild(hostName: string, port: number, address: string, child: ChildProcess, how: ChildStream): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(connectFailed(hostName, port, address, reason));
    };
    if (how.timeoutMs !== undefined) timer = setTimeout(() => fail(`timed out after ${how.timeoutMs} ms`), how.timeoutMs);
    child.once('error', (error) => fail(error.message));
    // 'close', not 'exit': its last words on stderr are read by then.
    child.once('close', (code) => fail(how.reason(stderr, code)));
    child.stderr!.on('data', (chunk: Buffer) => {
      if (settled) return; // later lines are drained, not kept
      stderr += chunk.toString();
      if (!how.connected.test(stderr)) return;
      settled = true;
      clearTimeout(timer);
      const stream = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
      stream.once('close', () => child.kill('SIGKILL'));
      resolve(stream);
    });
  });
}

/**
 * A connection made from inside the network namespace of the process `pid`
 * (nsenter -n), carried over a bridge process's stdin and stdout.
 */
export function connectInNetworkNamespace(hostName: string, nsenter: string, pid: number, port: number, options: ConnectOptions = {}): Promise<Duplex> {
  const { address, timeoutMs } = connectTarget(port, options);
  const child = spawn(nsenter, ['-t', String(pid), '-n', '--', process.execPath, '-e', BRIDGE, String(port), address, String(timeoutMs)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return connectThroughChild(hostName, port, address, child, {
    connected: /CONNECTED\n/,
    reason: (stderr, code) => stderr.match(/^ERR (.+)$/m)?.[1] ?? `bridge exited ${code}: ${stderr.trim()}`,
  });
}
