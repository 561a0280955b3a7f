import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

// A config repository of `projects` projects spread over `hosts` hosts, with
// the variety real ones have: services with env and secrets, workers, timers,
// config files, domains with TLS, databases and firewall openings.
export async function generateRepository(dir: string, projects: number, hosts: number): Promise<void> {
  await mkdir(path.join(dir, 'hosts'), { recursive: true });
  await mkdir(path.join(dir, 'projects'), { recursive: true });
  for (let h = 0; h < hosts; h++) {
    await writeFile(
      path.join(dir, 'hosts', `host-${h}.yaml`),
      `apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: host-${h}\n  labels: { zone: z${h % 3} }\nspec:\n  firewall: { input: drop }\n  acme: { email: ops@example.com }\n  secrets: { env: [BENCH_API_KEY] }\n`,
    );
  }
  const writes: Promise<void>[] = [];
  for (let i = 0; i < projects; i++) {
    const host = `host-${i % hosts}`;
    const port = 10000 + i;
    const kind = i % 4;
    const extra =
      kind === 0
        ? `  database:\n    password: { file: /etc/hostkit/secrets/app-${i}-db }\n    extensions: [pg_trgm]\n`
        : kind === 1
          ? `  timers:\n    - name: nightly\n      schedule: "${i % 60} 3 * * *"\n      command: [/usr/bin/python3, -m, jobs.nightly]\n`
          : kind === 2
            ? `  workers:\n    - name: queue\n      command: [/usr/bin/node, worker.js]\n`
            : `  files:\n    - name: settings.json\n      content: |\n        {"id": ${i}, "features": ["a", "b"]}\n`;
    writes.push(
      writeFile(
        path.join(dir, 'projects', `app-${i}.yaml`),
        `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: app-${i}
spec:
  placement:
    hosts: [${host}]
  runtime: node
  service:
    command: [/usr/bin/node, server.js]
    port: ${port}
    environment:
      NODE_ENV: production
      APP_NAME: app-${i}
    secrets:
      API_KEY: { env: BENCH_API_KEY }
    limits: { memoryMax: 256M }
  domains:
    - name: app-${i}.example.test
      tls: acme
  firewall:
    - port: ${port}
      from: [10.0.0.0/8]
${extra}`,
      ),
    );
  }
  await Promise.all(writes);
}
