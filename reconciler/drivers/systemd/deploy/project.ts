import { error } from '../../../core/diagnostics.js';
import { durationMs } from '../../../core/duration.js';
import type { ProjectExpansion } from '../../manifest-types.js';
import type { UnitSpec } from '../spec.js';
import type { DeploySpec } from './spec.js';

/** How long the old instance keeps serving requests in flight after nginx switched, unless `deploy.drain` says. */
export const DEFAULT_DRAIN_MS = 5_000;
const HEALTH = { timeoutMs: 5_000, retries: 5 };

/** The project asks for blue-green deploys (`spec.deploy.strategy`; the default is `restart`). */
export function blueGreen(x: ProjectExpansion): boolean {
  return x.project.spec.deploy?.strategy === 'blue-green';
}

/**
 * The service of a blue-green project as one `deploy/NAME` resource instead of the unit
 * `hk-NAME.service`: two instances, on the declared port and a second one (`deploy.port`,
 * else the next port), nginx pointing at one. Returns its id, or undefined (and a diagnostic)
 * when the project has no service with a port behind a domain.
 */
export function expandDeploy(x: ProjectExpansion, service: UnitSpec, dependsOn: string[]): string | undefined {
  const spec = x.project.spec;
  const port = spec.service?.port;
  const at = x.at('/spec/deploy/strategy');
  if (port === undefined || !spec.service?.command || (spec.domains ?? []).length === 0) {
    x.report(error('blue-green needs a site', `project ${x.name}: deploy.strategy blue-green needs service.command, service.port and a domain`, at));
    return undefined;
  }
  const second = spec.deploy?.port ?? port + 1;
  if (second === port) {
    x.report(error('blue-green needs two ports', `project ${x.name}: deploy.port ${second} is the service's own port`, x.at('/spec/deploy/port')));
    return undefined;
  }
  const bind = spec.service.bind ?? '127.0.0.1';
  x.claimPort(second, bind, x.at(spec.deploy?.port !== undefined ? '/spec/deploy/port' : '/spec/deploy/strategy'));
  const http = spec.health?.http;
  const deploy: DeploySpec = {
    project: x.name,
    service,
    ports: { blue: port, green: second },
    address: bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind,
    health: {
      ...(http
        ? { http: { path: http.path, expectStatus: http.expectStatus ?? 200, ...(http.bodyContains !== undefined ? { bodyContains: http.bodyContains } : {}) } }
        : {}),
      timeoutMs: spec.health?.timeout ? durationMs(spec.health.timeout) : HEALTH.timeoutMs,
      retries: spec.health?.retries ?? HEALTH.retries,
    },
    drainMs: spec.deploy?.drain ? durationMs(spec.deploy.drain) : DEFAULT_DRAIN_MS,
    releases: spec.source !== undefined && !spec.service.workingDirectory,
  };
  return x.add<DeploySpec>('deploy', x.name, deploy, x.at('/spec/deploy'), { dependsOn });
}
