import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { manifestYaml, type ManifestInput } from '../support/manifests.js';

// A config repository of `projects` projects spread over `hosts` hosts, with
// the variety real ones have: services with env and secrets, workers, timers,
// config files, domains with TLS, databases and firewall openings.
export async function generateRepository(dir: string, projects: number, hosts: number): Promise<void> {
  await mkdir(path.join(dir, 'hosts'), { recursive: true });
  await mkdir(path.join(dir, 'projects'), { recursive: true });
  for (let h = 0; h < hosts; h++) {
    const host: ManifestInput = {
      kind: 'Host',
      name: `host-${h}`,
      labels: { zone: `z${h % 3}` },
      spec: { firewall: { input: 'drop' }, acme: { email: 'ops@example.com' }, secrets: { env: ['BENCH_API_KEY'] } },
    };
    await writeFile(path.join(dir, 'hosts', `host-${h}.yaml`), manifestYaml(host));
  }
  const writes: Promise<void>[] = [];
  for (let i = 0; i < projects; i++) {
    const port = 10000 + i;
    const kind = i % 4;
    const extra =
      kind === 0
        ? { database: { password: { file: `/etc/hostkit/secrets/app-${i}-db` }, extensions: ['pg_trgm'] } }
        : kind === 1
          ? { timers: [{ name: 'nightly', schedule: `${i % 60} 3 * * *`, command: ['/usr/bin/python3', '-m', 'jobs.nightly'] }] }
          : kind === 2
            ? { workers: [{ name: 'queue', command: ['/usr/bin/node', 'worker.js'] }] }
            : { files: [{ name: 'settings.json', content: `{"id": ${i}, "features": ["a", "b"]}\n` }] };
    const project: ManifestInput = {
      kind: 'Project',
      name: `app-${i}`,
      on: [`host-${i % hosts}`],
      spec: {
        runtime: 'node',
        service: {
          command: ['/usr/bin/node', 'server.js'],
          port,
          environment: { NODE_ENV: 'production', APP_NAME: `app-${i}` },
          secrets: { API_KEY: { env: 'BENCH_API_KEY' } },
          limits: { memoryMax: '256M' },
        },
        domains: [{ name: `app-${i}.example.test`, tls: 'acme' }],
        firewall: [{ port, from: ['10.0.0.0/8'] }],
        ...extra,
      },
    };
    writes.push(writeFile(path.join(dir, 'projects', `app-${i}.yaml`), manifestYaml(project)));
  }
  await Promise.all(writes);
}
