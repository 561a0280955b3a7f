import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { error, type Diagnostic, type Location } from '../core/diagnostics.js';
import { errorMessage } from '../core/errors.js';
import { firstPem } from '../drivers/certificate/x509.js';
import { runCommand } from '../drivers/command/index.js';
import { siteTlsFiles } from '../drivers/nginx/render.js';
import { hostHttpRequest } from '../hosts/http.js';
import type { Host } from '../hosts/types.js';
import { projectUser, workingDirectory, UNIT_PREFIX, ENV_DIRECTORY } from '../manifests/expand.js';
import type { DomainSpec, Manifest, ProjectManifest } from '../manifests/types.js';
import { durationMs } from '../core/duration.js';

// Health checks from a project's `health:`, run after a run's changes verified.
// Every check given must pass (HTTP, TCP, command), and the project's service
// unit must be active, within `retries` further attempts one second apart,
// each attempt bounded by `timeout`. HTTP goes the way users come: through
// nginx as the site's domain, over HTTPS when the site serves TLS, trusting
// only the certificate HostKit placed for it, and never following a redirect.

export interface HealthCheck {
  project: string;
  origin?: Location;
  /** Through nginx when the project has a site (HTTPS on 443 when the site serves TLS, else port 80); else the service's own port. */
  http?: HttpCheck;
  tcp?: { port: number };
  command?: { argv: string[]; user: string; workingDirectory: string; environmentFile?: string };
  unit?: string;
  timeoutMs: number;
  retries: number;
}

export const DEFAULT_HEALTH = { timeoutMs: 5_000, retries: 5, intervalMs: 1_000 };

export interface HttpCheck {
  port: number;
  path: string;
  hostHeader?: string;
  /** Over TLS: the server name sent (SNI), and the certificate file HostKit placed for the site, the only one trusted. */
  tls?: { serverName: string; certificateFile: string };
  expectStatus: number;
  bodyContains?: string;
  /** What is checked, for results and messages: `https://api.example.test/healthz (via 127.0.0.1:443)`. */
  url: string;
}

// The users' way in: the site's first domain through nginx, over HTTPS when
// the site serves TLS (nginx listens on 443 for it whatever redirectHttp says).
function httpCheck(
  http: NonNullable<NonNullable<ProjectManifest['spec']['health']>['http']>,
  domain: DomainSpec | undefined,
  servicePort: number | undefined,
): HttpCheck | undefined {
  const expect = { path: http.path, expectStatus: http.expectStatus ?? 200, ...(http.bodyContains !== undefined ? { bodyContains: http.bodyContains } : {}) };
  if (!domain) return servicePort === undefined ? undefined : { port: servicePort, ...expect, url: `http://127.0.0.1:${servicePort}${http.path}` };
  const files = siteTlsFiles({ site: domain.name, tls: domain.tls ?? 'acme' });
  const port = files ? 443 : 80;
  return {
    port,
    ...expect,
    hostHeader: domain.name,
    ...(files ? { tls: { serverName: domain.name, certificateFile: files.certificate } } : {}),
    url: `${files ? 'https' : 'http'}://${domain.name}${http.path} (via 127.0.0.1:${port})`,
  };
}

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
    const check: HealthCheck = {
      project: name,
      origin: m.source.locate('/spec/health'),
      timeoutMs: health.timeout ? durationMs(health.timeout) : DEFAULT_HEALTH.timeoutMs,
      retries: health.retries ?? DEFAULT_HEALTH.retries,
      // blue-green runs the service as two instances (drivers/systemd/deploy): its own verify checks the one serving.
      ...(service?.command && p.spec.deploy?.strategy !== 'blue-green' ? { unit: `${UNIT_PREFIX}${name}.service` } : {}),
    };
    if (health.http) {
      const http = httpCheck(health.http, options.throughNginx ? p.spec.domains?.[0] : undefined, service?.port);
      if (http) check.http = http;
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

/** One GET, never following a redirect; over TLS the server must present the certificate HostKit placed. */
async function httpProblem(host: Host, h: HttpCheck, timeoutMs: number): Promise<string | undefined> {
  const placed = h.tls ? await placedCertificate(host, h.tls.certificateFile) : undefined;
  if (typeof placed === 'string') return `GET ${h.url}: ${placed}`;
  const res = await hostHttpRequest(host, {
    port: h.port,
    path: h.path,
    timeoutMs,
    ...(h.hostHeader ? { hostHeader: h.hostHeader } : {}),
    ...(h.tls ? { tlsServerName: h.tls.serverName } : {}),
  }).catch((cause: unknown) => errorMessage(cause));
  if (typeof res === 'string') return `GET ${h.url}: ${res}`;
  if (h.tls && placed) {
    const problem = await certificateProblem(res.certificate, placed, h.tls);
    if (problem) return `GET ${h.url}: ${problem}`;
  }
  if (res.status !== h.expectStatus) {
    const location = res.headers.location;
    const target = location ? `a redirect to ${location}` : 'a redirect with no Location';
    const redirect = res.status >= 300 && res.status < 400 ? ` (${target}; health checks do not follow redirects)` : '';
    return `GET ${h.url} answered ${res.status}${redirect}, expected ${h.expectStatus}`;
  }
  if (h.bodyContains !== undefined && !res.body.includes(h.bodyContains)) return `GET ${h.url} answered ${res.status} without "${h.bodyContains}" in its body`;
  return undefined;
}

// The leaf of the certificate file on the host, or why there is none to trust.
async function placedCertificate(host: Host, file: string): Promise<X509Certificate | string> {
  let bytes: Buffer | undefined;
  try {
    bytes = await host.readFile(file);
  } catch (cause) {
    return `cannot read the site's certificate ${file}: ${errorMessage(cause)}`;
  }
  if (!bytes) return `the site's certificate ${file} does not exist, so no served certificate can be trusted`;
  const pem = firstPem(bytes.toString('utf8'));
  try {
    if (pem) return new X509Certificate(pem);
  } catch {
    // reported below
  }
  return `the site's certificate ${file} holds no readable PEM certificate`;
}

const short = (fingerprint: string) => `${fingerprint.slice(0, 23)}…`;

async function certificateProblem(
  served: PeerCertificate | undefined,
  placed: X509Certificate,
  tls: NonNullable<HttpCheck['tls']>,
): Promise<string | undefined> {
  if (!served?.fingerprint256) return 'the server presented no certificate';
  if (served.fingerprint256 !== placed.fingerprint256) {
    return (
      `the server presented a certificate for ${served.subject?.CN ?? '(no CN)'} (SHA-256 ${short(served.fingerprint256)}) that is not ` +
      `the one HostKit placed in ${tls.certificateFile} (SHA-256 ${short(placed.fingerprint256)})`
    );
  }
  const { checkServerIdentity } = await import('node:tls');
  const mismatch = checkServerIdentity(tls.serverName, served);
  return mismatch ? `the certificate in ${tls.certificateFile} does not cover ${tls.serverName}: ${mismatch.message}` : undefined;
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
    const problem = await httpProblem(host, check.http, check.timeoutMs);
    if (problem) problems.push(problem);
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
      const tail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ');
      if (r.exitCode !== 0) problems.push(`health command ${c.argv.join(' ')} exited ${r.exitCode}${tail ? `: ${tail}` : ''}`);
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
