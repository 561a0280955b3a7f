import { setTimeout as sleep } from 'node:timers/promises';
import { HostKitError } from '../core/errors.js';
import { COLOR, PLAIN, useColor, type Style } from '../diff/render/style.js';
import { healthChecks, runHealthCheck, type HealthCheck } from '../apply/health.js';
import type { Host } from '../hosts/types.js';
import type { Manifest } from '../manifests/types.js';
import { loadDeclared, projectsOn, requireProject, type HostTargetOptions } from './operate.js';
import { hostOf } from './run-input.js';

// `hostkit health [PROJECT]`: the projects' declared health checks, on demand,
// exactly as an apply runs them after its changes (same timeout and retries,
// HTTP through nginx as the site's domain, the service unit's state).

export interface HealthOptions extends HostTargetOptions {
  watch?: string;
}

export interface HealthOutcome {
  project: string;
  ok: boolean;
  /** What was checked: `unit hk-api.service active, GET https://api.example.com/healthz (via 127.0.0.1:443)`. */
  checked: string;
  /** Why it failed. */
  detail?: string;
  ms: number;
}

/** The checks of the projects placed on the host (or of `only`), by project name, sorted. */
export function declaredChecks(manifests: readonly Manifest[], projects: readonly string[], only?: string): HealthCheck[] {
  const wanted = new Set(only === undefined ? projects : [only]);
  // nginx has a driver, so a site's HTTP check goes through nginx as an apply's does.
  const checks = healthChecks(manifests, { throughNginx: true, projects: wanted });
  return [...checks.values()].sort((a, b) => a.project.localeCompare(b.project));
}

export function describeCheck(check: HealthCheck): string {
  const parts: string[] = [];
  if (check.unit) parts.push(`unit ${check.unit} active`);
  if (check.http) parts.push(`GET ${check.http.url}`);
  if (check.tcp) parts.push(`TCP port ${check.tcp.port}`);
  if (check.command) parts.push(`command ${check.command.argv.join(' ')}`);
  return parts.join(', ');
}

/** Run each check (concurrently), with its declared retries unless `retries` overrides them. */
export async function checkAll(host: Host, checks: readonly HealthCheck[], options: { retries?: number; intervalMs?: number } = {}): Promise<HealthOutcome[]> {
  return Promise.all(
    checks.map(async (check) => {
      const started = performance.now();
      const problems = await runHealthCheck(host, options.retries === undefined ? check : { ...check, retries: options.retries }, options.intervalMs);
      const detail = problems.map((d) => d.detail.replace(`${check.project}: `, '')).join('; ');
      return {
        project: check.project,
        ok: problems.length === 0,
        checked: describeCheck(check),
        ...(detail ? { detail } : {}),
        ms: Math.round(performance.now() - started),
      };
    }),
  );
}

export function renderOutcome(o: HealthOutcome, width: number, style: Style): string {
  const name = o.project.padEnd(width);
  return o.ok ? `${style.green('ok  ')}  ${name}  ${o.checked} (${o.ms} ms)` : `${style.red('FAIL')}  ${name}  ${o.detail ?? o.checked}`;
}

/** Seconds between rounds for --watch: a positive whole number, or BAD_OPTION. */
export function parseWatch(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1)
    throw new HostKitError('BAD_OPTION', `--watch expects a whole number of seconds, at least 1, got ${JSON.stringify(text)}`);
  return Number(text);
}

export async function health(project: string | undefined, opts: HealthOptions): Promise<number> {
  const watchSeconds = parseWatch(opts.watch);
  const declared = await loadDeclared(opts);
  if (typeof declared === 'number') return declared;
  const projects = projectsOn(declared.resources);
  if (project !== undefined) requireProject(project, projects, declared.hostName);
  const checks = declaredChecks(declared.manifests, projects, project);
  if (checks.length === 0) {
    process.stdout.write(project ? `Project ${project} declares no health check.\n` : `No project on ${declared.hostName} declares a health check.\n`);
    return 0;
  }
  const host = hostOf(opts);
  const style = useColor(process.stdout) ? COLOR : PLAIN;
  const width = Math.max(...checks.map((c) => c.project.length));
  const round = async (): Promise<number> => {
    const outcomes = await checkAll(host, checks);
    for (const o of outcomes) process.stdout.write(renderOutcome(o, width, style) + '\n');
    return outcomes.every((o) => o.ok) ? 0 : 1;
  };
  if (watchSeconds === undefined) return round();

  // --watch: a round every N seconds until SIGINT or SIGTERM; the exit code is the last finished round's.
  const stopped = new AbortController();
  const onSignal = () => stopped.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interrupted = new Promise<undefined>((resolve) => stopped.signal.addEventListener('abort', () => resolve(undefined)));
  let code = 0;
  try {
    while (!stopped.signal.aborted) {
      process.stdout.write(style.dim(`${new Date().toISOString()}`) + '\n');
      const result = await Promise.race([round(), interrupted]);
      if (result === undefined) break;
      code = result;
      await sleep(watchSeconds * 1000, undefined, { signal: stopped.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return code;
}
