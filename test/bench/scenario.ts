// The convergence benchmark scenario (test/bench/SCENARIO.md) as
// HostKit manifests: one Host with a firewall, N projects (service, env file,
// user, state directory, PostgreSQL role and database, firewall opening, and
// an nginx site when the nginx driver is there).
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { manifestYaml, type ManifestInput } from '../support/manifests.js';

export const BENCH_HOST = 'bench';
export const BASE_PORT = 9000;

export interface ScenarioOptions {
  apps: number;
  /** The "changed" variant: vhost_rev 2 on app-1, a new environment value on app-2. */
  changed: boolean;
  /** Declare the nginx sites (needs the nginx driver). */
  sites: boolean;
}

export const appName = (i: number) => `app-${i}`;
export const appPort = (i: number) => BASE_PORT + i;
export const appDomain = (i: number) => `app-${i}.example.test`;
/** The value app-2's environment carries in each variant. */
export const app2Name = (changed: boolean) => (changed ? 'app-2-rev2' : 'app-2');
export const vhostRev = (i: number, changed: boolean) => (changed && i === 1 ? 2 : 1);

const HOST: ManifestInput = { kind: 'Host', name: BENCH_HOST, spec: { stateDirectory: '/var/lib/hostkit', firewall: { input: 'drop', ssh: false } } };

// Loopback TCP 80 and 443 for nginx; the apps' ports are opened by each project.
const WEB_OPENINGS: ManifestInput = {
  kind: 'FirewallRules',
  name: 'web',
  on: [BENCH_HOST],
  spec: {
    openings: [
      { port: 80, from: ['127.0.0.0/8'] },
      { port: 443, from: ['127.0.0.0/8'] },
    ],
  },
};

function project(i: number, o: ScenarioOptions): string {
  const name = appName(i);
  const port = appPort(i);
  const site = { domains: [{ name: appDomain(i), tls: 'none', responseHeaders: { 'X-Bench-Rev': String(vhostRev(i, o.changed)) } }] };
  return manifestYaml(
    {
      kind: 'Project',
      name,
      on: [BENCH_HOST],
      spec: {
        runtime: 'python',
        service: {
          command: ['/usr/bin/python3', '-m', 'http.server', String(port), '--bind', '127.0.0.1'],
          port,
          bind: '127.0.0.1',
          restart: 'on-failure',
          environment: { APP_NAME: i === 2 ? app2Name(o.changed) : name },
        },
        firewall: [{ port, from: ['127.0.0.0/8'] }],
        ...(o.sites ? site : {}),
      },
    },
    { kind: 'PostgresRole', name, project: name, on: [BENCH_HOST] },
    { kind: 'PostgresDatabase', name, project: name, on: [BENCH_HOST], spec: { owner: name.replace(/-/g, '_') } },
  );
}

/** Write the scenario's manifests into `dir` (replacing what a previous variant wrote). */
export async function writeScenario(dir: string, o: ScenarioOptions): Promise<void> {
  for (const sub of ['hosts', 'projects']) {
    await mkdir(path.join(dir, sub), { recursive: true });
    for (const f of await readdir(path.join(dir, sub))) await rm(path.join(dir, sub, f));
  }
  await writeFile(path.join(dir, 'hosts', `${BENCH_HOST}.yaml`), manifestYaml(HOST));
  await writeFile(path.join(dir, 'hosts', 'web-firewall.yaml'), manifestYaml(WEB_OPENINGS));
  await Promise.all(Array.from({ length: o.apps }, (_, k) => writeFile(path.join(dir, 'projects', `${appName(k + 1)}.yaml`), project(k + 1, o))));
}
