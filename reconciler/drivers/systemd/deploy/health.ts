import { errorMessage } from '../../../core/errors.js';
import { hostHttpRequest } from '../../../hosts/http.js';
import type { Host } from '../../../hosts/types.js';
import type { DeploySpec } from './spec.js';

/** How often an instance that is not healthy yet is asked again. */
const INTERVAL_MS = 200;

// One look at an instance on its own port: the project's HTTP check (path, status, body) when it has
// one, else a TCP connection. Undefined when healthy, else what was wrong.
async function problem(host: Host, spec: Pick<DeploySpec, 'health' | 'address'>, port: number): Promise<string | undefined> {
  const http = spec.health.http;
  const where = `${spec.address}:${port}`;
  try {
    if (!http) {
      const socket = await host.connect(port, { address: spec.address });
      socket.destroy();
      return undefined;
    }
    const res = await hostHttpRequest(host, { port, address: spec.address, path: http.path, timeoutMs: spec.health.timeoutMs });
    if (res.status !== http.expectStatus) return `GET http://${where}${http.path} answered ${res.status}, expected ${http.expectStatus}`;
    if (http.bodyContains !== undefined && !res.body.includes(http.bodyContains))
      return `GET http://${where}${http.path} answered ${res.status} without "${http.bodyContains}" in its body`;
    return undefined;
  } catch (cause) {
    return `${http ? `GET http://${where}${http.path}` : `connect ${where}`}: ${errorMessage(cause)}`;
  }
}

/**
 * Waits until the instance on `port` passes the project's health check, for as long as the
 * project's check would (its retries, a second apart, plus one timeout). Undefined once
 * healthy; else the last problem seen. Changes nothing.
 */
export async function awaitHealthy(host: Host, spec: Pick<DeploySpec, 'health' | 'address'>, port: number): Promise<string | undefined> {
  const deadline = Date.now() + (spec.health.retries + 1) * 1_000 + spec.health.timeoutMs;
  for (;;) {
    const seen = await problem(host, spec, port);
    if (seen === undefined || Date.now() >= deadline) return seen;
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }
}
