// Helpers for real-host tests: a config repository for the booted host, a
// reconcile against it through the nspawn host, and unit facts read inside.
import path from 'node:path';
import { execa } from 'execa';
import { collectStatus, type StatusDocument } from '../../reconciler/commands/status.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost, type ReconcileInput, type ReconcileOutcome } from '../../reconciler/engine.js';
import { writeRepo } from '../support/fixtures.js';
import { DEFAULT_HOSTNAME, type TestHost } from './machine.js';

// Test hosts are booted with this hostname (machine.ts DEFAULT_HOSTNAME): an apply checks it.
export const HOST_NAME = DEFAULT_HOSTNAME;

export const HOST_MANIFEST = `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: /var/lib/hostkit
  secrets:
    env: [HK_TOKEN, HK_HTPASSWD, SHOP_DB_PASSWORD, CART_DB_PASSWORD]
`;

/** A fresh config repository: the Host manifest plus the given files. */
export function repo(files: Record<string, string>): Promise<string> {
  return writeRepo({ 'hosts/test-host.yaml': HOST_MANIFEST, ...files });
}

export function reconcile(
  machine: TestHost,
  repoDir: string,
  options: { dryRun?: boolean; env?: NodeJS.ProcessEnv; drivers?: ReconcileInput['drivers'] } = {},
): Promise<ReconcileOutcome> {
  return reconcileHost({
    repoDir,
    hostName: HOST_NAME,
    host: machine.host,
    dryRun: options.dryRun ?? false,
    log: silentLogger(),
    env: options.env ?? {},
    ...(options.drivers ? { drivers: options.drivers } : {}),
  });
}

/** The apply result, failing the test with the plan's problems if it did not get that far. */
export function applied(outcome: ReconcileOutcome) {
  if (outcome.stage !== 'applied') {
    const problems = outcome.stage === 'invalid' ? outcome.repo.diagnostics : outcome.planned.plan.diagnostics;
    throw new Error(`expected an apply, got stage ${outcome.stage}: ${JSON.stringify(problems, null, 1)}`);
  }
  return outcome.result;
}

/** Like applied(), but the test fails with the failure itself when the run rolled back. */
export function appliedOk(outcome: ReconcileOutcome) {
  const result = applied(outcome);
  if (result.status === 'rolled-back') throw new Error(`the run rolled back at ${result.failed.id}: ${result.failed.error}`);
  return result;
}

export async function unitProperty(machine: TestHost, unit: string, property: string): Promise<string> {
  return (await machine.host.exec('systemctl', ['show', '--value', `--property=${property}`, unit])).stdout.trim();
}

export async function invocationIds(machine: TestHost, units: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const u of units) out[u] = await unitProperty(machine, u, 'InvocationID');
  return out;
}

/** HTTP status of a GET on the host's loopback, from inside the host. */
export async function httpStatus(machine: TestHost, url: string): Promise<string> {
  return (await machine.host.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', url])).stdout.trim();
}

/** Poll until `check` returns true or the time is up. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

export function service(name: string, port: number, extra = ''): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: ${name}
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "${port}", --bind, 127.0.0.1]
    port: ${port}
${extra}`;
}

/** What `hostkit status` collects on the booted host, from a dry run of the manifests. */
export async function hostStatus(machine: TestHost, dry: ReconcileOutcome, stateDirectory: string): Promise<StatusDocument> {
  if (dry.stage !== 'planned') throw new Error(`expected a dry run's plan, got stage ${dry.stage}`);
  return collectStatus({
    host: machine.host,
    hostName: HOST_NAME,
    repository: 'test',
    stateDirectory,
    manifests: dry.repo.manifests,
    planned: dry.planned,
  });
}

/** A reconcile of `repoDir` in its own process (test/support/reconcile-child.ts, built), for crash tests. */
export function reconcileChild(machine: TestHost, repoDir: string) {
  return execa('node', [path.resolve('dist/test/support/reconcile-child.js'), repoDir, HOST_NAME, String(machine.leaderPid), machine.machine], {
    env: {},
    reject: false,
  });
}

/** SIGKILLs a reconcile child `delayMs` after its apply started (at once if it ended first), and waits for it to die. */
export async function killAfterStart(child: ReturnType<typeof reconcileChild>, delayMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('apply started')) setTimeout(resolve, delayMs);
    });
    void child.then(() => resolve());
  });
  child.kill('SIGKILL');
  await child;
}
