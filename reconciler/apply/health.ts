import { error, type Diagnostic, type Location } from '../core/diagnostics.js';
import { errorMessage } from '../core/errors.js';
import { runCommand } from '../drivers/command/index.js';
import { hostHttpRequest } from '../hosts/http.js';
import type { Host } from '../hosts/types.js';
import { projectUser, workingDirectory, UNIT_PREFIX, ENV_DIRECTORY } from '../manifests/expand.js';
import type { Manifest, ProjectManifest } from '../manifests/types.js';
import { parseDuration } from './quarantine.js';

// Health checks from a project's `health:`, run after a run's changes verified.
// Every check given must pass (HTTP, TCP, command), and the project's service
// unit must be active, within `retries` further attempts one second apart,
// each attempt bounded by `timeout`.

export interface HealthCheck {
  project: string;
  origin?: Location;
  /** Through nginx (port 80 with the site's Host header) when the project has a site; else the service's own port. */
  http?: { port: number; path: string; hostHeader?: string; expectStatus: number; bodyContains?: string };
  tcp?: { port: number };
  command?: { argv: string[]; user: string; workingDirectory: string; environmentFile?: string };
  unit?: string;
  timeoutMs: number;
  retries: number;
}

export const DEFAULT_HEALTH = { timeoutMs: 5_000, retries: 5, intervalMs: 1_000 };

/** The health checks of the projects placed on the host, by project name. */
export function healthChecks(manifests: readonly Manifest[], options: { throughNginx: boolean; projects?: ReadonlySet<string> }): Map<string, HealthCheck> {
  const out = new Map<string, HealthCheck>();
  for (const m of manifests) {
    if (m.kind !== 'Project') continue;
    const p = (m as Manifest<ProjectManifest>).value;
    const health = p.spec.health;
    const name = p.metadata.name;
    if (!health || (options.projects && !options.projects.has(name))) continue;
    const service = p.spec.service;
    const domain = p.spec.domains?.[0]?.name;
    const check: HealthCheck = {
      project: name,
      origin: m.source.locate('/spec/health'),
      timeoutMs: health.timeout ? parseDuration(health.timeout) : DEFAULT_HEALTH.timeoutMs,
      retries: health.retries ?? DEFAULT_HEALTH.retries,
      ...(service?.command ? { unit: `${UNIT_PREFIX}${name}.service` } : {}),
    };
    if (health.http) {
      const viaNginx = options.throughNginx && domain !== undefined;
      const port = viaNginx ? 80 : service?.port;
      if (port !== undefined) {
        check.http = {
          port,
          path: health.http.path,
          expectStatus: health.http.expectStatus ?? 200,
          ...(viaNginx ? { hostHeader: domain } : {}),
          ...(health.http.bodyContains !== undefined ? { bodyContains: health.http.bodyContains } : {}),
        };
      }
    }
    if (health.tcp) check.tcp = { port: health.tcp.port };
    if (health.command) {
      check.command = {
        argv: health.command,
        user: projectUser(p),
        workingDirectory: workingDirectory(p),
        ...(service ? { environmentFile: `${ENV_DIRECTORY}/${name}.env` } : {}),
      };
    }
    out.set(name, check);
  }
  return out;
}

/** One attempt: the problems found (empty when healthy). */
async function attempt(host: Host, check: HealthCheck): Promise<string[]> {
  const problems: string[] = [];
  if (check.unit) {
    const r = await host.exec('systemctl', ['show', '--value', '--property=ActiveState', check.unit]);
    const state = r.stdout.trim();
    if (state !== 'active') problems.push(`${check.unit} is ${state || 'unknown'}, not active`);
  }
  if (check.http) {
    const h = check.http;
    try {
      const res = await hostHttpRequest(host, {
        port: h.port,
        path: h.path,
        timeoutMs: check.timeoutMs,
        ...(h.hostHeader ? { hostHeader: h.hostHeader } : {}),
      });
      const via = h.hostHeader ? `http://${h.hostHeader}${h.path} (port ${h.port})` : `http://127.0.0.1:${h.port}${h.path}`;
      if (res.status !== h.expectStatus) problems.push(`GET ${via} answered ${res.status}, expected ${h.expectStatus}`);
      else if (h.bodyContains !== undefined && !res.body.includes(h.bodyContains))
        problems.push(`GET ${via} answered ${res.status} without "${h.bodyContains}" in its body`);
    } catch (cause) {
      problems.push(errorMessage(cause));
    }
  }
  if (check.tcp) {
    try {
      const socket = await host.connect(check.tcp.port, { timeoutMs: check.timeoutMs });
      socket.destroy();
    } catch (cause) {
      problems.push(`TCP port ${check.tcp.port}: ${errorMessage(cause)}`);
    }
  }
  if (check.command) {
    const c = check.command;
    try {
      const r = await runCommand(host, { ...c, timeoutMs: check.timeoutMs });
      if (r.exitCode !== 0)
        problems.push(`health command ${c.argv.join(' ')} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
    } catch (cause) {
      problems.push(`health command ${c.argv.join(' ')}: ${errorMessage(cause)}`);
    }
  }
  return problems;
}

/** Run a check with its retries; returns an error diagnostic naming the last problems, or none. */
export async function runHealthCheck(host: Host, check: HealthCheck, intervalMs = DEFAULT_HEALTH.intervalMs): Promise<Diagnostic[]> {
  let problems: string[] = [];
  for (let i = 0; i <= check.retries; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, intervalMs));
    problems = await attempt(host, check);
    if (problems.length === 0) return [];
  }
  return [error('health check failed', `${check.project}: ${problems.join('; ')} (after ${check.retries + 1} attempt(s))`, check.origin)];
}
