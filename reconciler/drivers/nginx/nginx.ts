// nginx itself: the whole-config test, the reload, and the probe that tells
// whether the reload took (`nginx -s reload` exits 0 even when the master
// rejects the new configuration: certbot/certbot#7555).
import { errorMessage, HostKitError } from '../../core/errors.js';
import { hostHttpRequest } from '../../hosts/http.js';
import type { Host } from '../../hosts/types.js';
import { GENERATION_HEADER, NGINX_ERROR_LOG } from './paths.js';

export interface NginxTest {
  ok: boolean;
  /** nginx's own words (stderr of `nginx -t`), minus the "syntax is ok" noise. */
  message: string;
}

export async function testConfig(host: Host): Promise<NginxTest> {
  const result = await host.exec('nginx', ['-t', '-q']);
  const message = result.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/syntax is ok|test is successful/.test(l))
    .join('\n');
  return { ok: result.exitCode === 0, message };
}

/** The file nginx names in its complaint ("... in /etc/nginx/conf.d/x.conf:12"), if any. */
export function blamedFile(message: string): string | undefined {
  return / in (\/[^\s:]+):\d+/.exec(message)?.[1];
}

export async function nginxActive(host: Host): Promise<boolean> {
  const result = await host.exec('systemctl', ['is-active', '--quiet', 'nginx.service']);
  return result.exitCode === 0;
}

/** Size of the error log now: what a failed reload wrote is what comes after it. */
export async function errorLogSize(host: Host): Promise<number> {
  return (await host.stat(NGINX_ERROR_LOG))?.size ?? 0;
}

export async function errorLogSince(host: Host, offset: number): Promise<string> {
  const bytes = await host.readFile(NGINX_ERROR_LOG);
  if (!bytes) return '';
  return bytes
    .subarray(Math.min(offset, bytes.length))
    .toString('utf8')
    .split('\n')
    .filter((l) => /\[(emerg|alert|crit|error)\]/.test(l))
    .slice(-10)
    .join('\n');
}

const PROBE_CONCURRENCY = 32;

/** Reload a running nginx, or start a stopped one (the unit's own ExecStartPre tests the config again). */
export async function reload(host: Host): Promise<void> {
  const result = await host.exec('systemctl', ['reload-or-restart', 'nginx.service'], { timeoutMs: 60_000 });
  if (result.exitCode !== 0) {
    throw new HostKitError('NGINX_RELOAD_FAILED', `systemctl reload-or-restart nginx failed: ${(result.stderr || result.stdout).trim()}`, {
      retryable: true,
    });
  }
}

/**
 * The generation nginx answers with for a domain on port 80, or why there is
 * none. The path is in the challenge location, which nginx answers itself
 * (a 404 from the webroot): no upstream is asked, no gate is in the way.
 */
export async function servedGeneration(host: Host, domain: string): Promise<{ generation?: string; problem?: string }> {
  try {
    const response = await hostHttpRequest(host, {
      port: 80,
      path: '/.well-known/acme-challenge/hostkit-generation-probe',
      hostHeader: domain,
      method: 'HEAD',
      timeoutMs: 3_000,
    });
    const value = response.headers[GENERATION_HEADER.toLowerCase()];
    return typeof value === 'string' ? { generation: value } : { problem: `HTTP ${response.status} without ${GENERATION_HEADER}` };
  } catch (cause) {
    return { problem: errorMessage(cause) };
  }
}

/**
 * Wait until every site answers with its new generation. Old workers keep
 * serving for a moment after a reload, so this polls; it gives up after
 * timeoutMs and returns the sites that never did.
 */
export async function awaitGenerations(
  host: Host,
  sites: readonly { domain: string; generation: string }[],
  timeoutMs = 10_000,
): Promise<{ domain: string; seen: string }[]> {
  const deadline = Date.now() + timeoutMs;
  let waiting = [...sites];
  let last = new Map<string, string>();
  // New workers usually answer within a few dozen milliseconds of the reload: ask soon, then less often.
  let pause = 25;
  while (waiting.length > 0) {
    // A few dozen at a time: hundreds of simultaneous probes on a busy host time out.
    const seen: { generation?: string; problem?: string }[] = [];
    for (let i = 0; i < waiting.length; i += PROBE_CONCURRENCY) {
      seen.push(...(await Promise.all(waiting.slice(i, i + PROBE_CONCURRENCY).map((s) => servedGeneration(host, s.domain)))));
    }
    last = new Map(waiting.map((s, i) => [s.domain, seen[i]!.generation ?? seen[i]!.problem ?? '']));
    waiting = waiting.filter((s, i) => seen[i]!.generation !== s.generation);
    if (waiting.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 200);
  }
  return waiting.map((s) => ({ domain: s.domain, seen: last.get(s.domain) ?? '' }));
}
