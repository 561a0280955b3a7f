// HTTP(S) requests made from a host's point of view, over Host.connect: how
// probes and health checks reach nginx or a service on the host's loopback,
// whether the host is this machine or a test host in its own namespace.
// node:http and node:tls are imported when a request is made: importing
// node:http from an ES module evaluates its lazy exports (undici's WebSocket and
// fetch), ~30 ms that a plan or dry run never needs.
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { HostKitError } from '../core/errors.js';
import type { Host } from './types.js';

export interface HostHttpRequest {
  port: number;
  /** Address on the host; default 127.0.0.1. */
  address?: string;
  path: string;
  method?: 'GET' | 'HEAD';
  /** The Host header (e.g. the site's domain); default the address. */
  hostHeader?: string;
  headers?: Record<string, string>;
  /** Speak TLS, sending this server name (SNI). The certificate is returned, not verified. */
  tlsServerName?: string;
  /** The whole exchange must finish within this; default 5 s. */
  timeoutMs?: number;
  /** Bodies are cut at this many bytes (enough for a probe); default 64 KiB. */
  maxBodyBytes?: number;
}

export interface HostHttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** With tlsServerName: what the server presented. */
  certificate?: PeerCertificate;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_BODY = 64 * 1024;

async function startTls(socket: Duplex, servername: string, deadline: AbortSignal, timeoutMs: number): Promise<TLSSocket> {
  const tls = await import('node:tls');
  return new Promise((resolve, reject) => {
    // A probe asks what is served, so it accepts any certificate and returns it for the caller to check.
    const secure = tls.connect({ socket, servername, rejectUnauthorized: false });
    // A server that accepts the connection and never answers the handshake must not hang the caller.
    const abort = () => {
      secure.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms in the TLS handshake`));
    };
    if (deadline.aborted) return abort();
    deadline.addEventListener('abort', abort, { once: true });
    secure.once('secureConnect', () => {
      deadline.removeEventListener('abort', abort);
      resolve(secure);
    });
    secure.once('error', (error) => {
      deadline.removeEventListener('abort', abort);
      reject(error);
    });
  });
}

/** One request, one connection. Rejects with HOST_HTTP_FAILED when no HTTP answer arrives in time. */
export async function hostHttpRequest(host: Host, request: HostHttpRequest): Promise<HostHttpResponse> {
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const address = request.address ?? '127.0.0.1';
  const where = `${request.tlsServerName ? 'https' : 'http'}://${address}:${request.port}${request.path} on ${host.name}`;
  const failed = (reason: string) =>
    new HostKitError('HOST_HTTP_FAILED', `No HTTP answer from ${where}: ${reason}`, {
      data: { host: host.name, port: request.port, path: request.path },
      retryable: true,
    });

  const deadline = AbortSignal.timeout(timeoutMs);
  let socket: Duplex | undefined;
  try {
    const raw = await host.connect(request.port, { address, timeoutMs });
    socket = raw;
    const secure = request.tlsServerName ? await startTls(raw, request.tlsServerName, deadline, timeoutMs) : undefined;
    if (secure) socket = secure;
    const stream = socket;
    const http = await import('node:http');
    return await new Promise<HostHttpResponse>((resolve, reject) => {
      const req = http.request({
        method: request.method ?? 'GET',
        path: request.path,
        headers: { host: request.hostHeader ?? address, connection: 'close', ...request.headers },
        createConnection: () => stream as never,
        signal: deadline,
      });
      req.once('error', (error) => reject(failed(deadline.aborted ? `timed out after ${timeoutMs} ms` : error.message)));
      req.once('response', (res) => {
        const limit = request.maxBodyBytes ?? DEFAULT_MAX_BODY;
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(secure ? { certificate: secure.getPeerCertificate() } : {}),
          });
        };
        res.on('data', (chunk: Buffer) => {
          if (size >= limit) return;
          chunks.push(chunk.subarray(0, limit - size));
          size += chunk.length;
          if (size >= limit) {
            finish();
            res.destroy();
          }
        });
        res.once('end', finish);
        res.once('error', (error) => reject(failed(error.message)));
      });
      req.end();
    });
  } catch (error) {
    if (error instanceof HostKitError && error.code === 'HOST_HTTP_FAILED') throw error;
    throw failed(error instanceof HostKitError ? error.message : (error as Error).message);
  } finally {
    socket?.destroy();
  }
}
