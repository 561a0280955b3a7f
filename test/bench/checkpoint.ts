// npm run bench:checkpoint -- [--megabytes 100] [--json FILE]   (root: boots a test host)
//
// Checkpoints at size, on a booted test host: a project with a PostgreSQL database of about
// --megabytes MB (rows of random hex text, so neither pg_dump's compression nor restic's
// deduplication makes it small), a service and a before-start lifecycle command, on a Host
// with spec.backup (a local restic repository). Each step is one whole `hostkit` process
// inside the host (wall time includes nsenter):
// - checkpoint: a new lifecycle command (a migration) makes the run dump the database into
//   restic first; the checkpoint step's own time, and the whole reconcile's;
// - restore: `hostkit rollback --last --with-data` puts the database back from it (the data
//   it replaces is checkpointed first, then the dump restored into a new database and swapped);
// - noop: the same manifests again: no checkpoint, no restic or pg_dump process.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { checkoutMounts } from '../host/harness.js';
import { bootHost, type TestHost } from '../host/machine.js';
import { HOST_NAME } from '../host/reconcile.js';
import { gitCommitAll, writeRepo } from '../support/fixtures.js';

const { values } = parseArgs({ options: { megabytes: { type: 'string', default: '100' }, json: { type: 'string' } } });
const MB = Number(values.megabytes);
if (!Number.isInteger(MB) || MB < 1) throw new Error(`Expected --megabytes N with N >= 1, got ${values.megabytes}`);

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const PASSWORD = 'bench-checkpoint-password';

const HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: ${HOST_NAME} }
spec:
  stateDirectory: /var/lib/hostkit
  backup:
    password: { file: /etc/hostkit/secrets/restic }
`;

function project(migrations: number): string {
  const lifecycle = Array.from(
    { length: migrations },
    (_, i) => `    - name: migrate-${i + 1}\n      phase: before-start\n      command: [/bin/true, "${i + 1}"]`,
  ).join('\n');
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9501", --bind, 127.0.0.1]
    port: 9501
  database:
    password: { file: /etc/hostkit/secrets/shop-db }
${migrations > 0 ? `  lifecycle:\n${lifecycle}\n` : ''}`;
}

async function hostkit(m: TestHost, args: string[]): Promise<{ wallS: number; stdout: string }> {
  const started = performance.now();
  const r = await m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1' }, timeoutMs: 1_800_000 });
  const wallS = (performance.now() - started) / 1000;
  if (r.exitCode !== 0) throw new Error(`hostkit ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`);
  return { wallS, stdout: r.stdout };
}

async function reconcile(m: TestHost, repo: string): Promise<{ wallS: number; steps: { id: string; ms: number }[] }> {
  const r = await hostkit(m, ['reconcile', '--repo', repo, '--host', HOST_NAME, '-o', 'json']);
  return { wallS: r.wallS, steps: (JSON.parse(r.stdout) as { applied?: { id: string; ms: number }[] }).applied ?? [] };
}

async function sql(m: TestHost, statement: string, database = 'shop'): Promise<string> {
  return (await m.exec('runuser', ['-u', 'postgres', '--', 'psql', '-XtAq', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', statement])).stdout.trim();
}

const load = () => os.loadavg().map((l) => l.toFixed(2));
const work = await mkdtemp(path.join('/var/tmp', 'hostkit-bench-checkpoint-'));
const repo = path.join(work, 'config');
await mkdir(repo);
const loadBefore = load();
process.stderr.write(`hostkit bench:checkpoint  ${MB} MB; load ${loadBefore.join(' ')}\n`);
const m = await bootHost({ bootTimeoutMs: 180_000, bindReadOnly: checkoutMounts(WORKTREE), bind: [{ hostPath: work }] });
try {
  await m.exec('mkdir', ['-p', '/etc/hostkit/secrets']);
  await m.host.writeFile('/etc/hostkit/secrets/restic', PASSWORD, { uid: 0, gid: 0, mode: 0o600 });
  await m.host.writeFile('/etc/hostkit/secrets/shop-db', 'bench-db-password', { uid: 0, gid: 0, mode: 0o600 });
  const configure = async (migrations: number) => {
    await writeRepo({ 'hosts/test-host.yaml': HOST, 'projects/shop.yaml': project(migrations) }, repo);
    await gitCommitAll(repo, `bench: ${migrations} migrations`);
  };
  await configure(0);
  await reconcile(m, repo);
  // About MB megabytes: rows of 1 KiB of random hex (32 md5s each).
  const rows = MB * 1024;
  await sql(
    m,
    `CREATE TABLE blobs (id int primary key, body text); INSERT INTO blobs SELECT g, (SELECT string_agg(md5(random()::text || s.i), '') FROM generate_series(1, 32) AS s(i) WHERE g > 0) FROM generate_series(1, ${rows}) g; ALTER TABLE blobs OWNER TO shop`,
  );
  const sizeBytes = Number(await sql(m, "SELECT pg_database_size('shop')"));
  process.stderr.write(`  database ${(sizeBytes / 1e6).toFixed(1)} MB, ${rows} rows\n`);

  await configure(1);
  const first = await reconcile(m, repo);
  const firstMs = first.steps.find((s) => s.id === 'checkpoint/shop')?.ms;
  if (firstMs === undefined) throw new Error(`no checkpoint in the run: ${first.steps.map((s) => s.id).join(', ')}`);
  process.stderr.write(`  checkpoint (first, empty repository) ${(firstMs / 1000).toFixed(2)} s; reconcile ${first.wallS.toFixed(2)} s\n`);
  // A second migration after the table grew by 1 %: restic stores only what the dump adds (the rest is deduplicated).
  await sql(
    m,
    `INSERT INTO blobs SELECT g, (SELECT string_agg(md5(random()::text || s.i), '') FROM generate_series(1, 32) AS s(i) WHERE g > 0) FROM generate_series(${rows + 1}, ${rows + rows / 100}) g`,
  );
  await configure(2);
  const second = await reconcile(m, repo);
  const secondMs = second.steps.find((s) => s.id === 'checkpoint/shop')!.ms;
  process.stderr.write(`  checkpoint (second, 1 % more rows) ${(secondMs / 1000).toFixed(2)} s; reconcile ${second.wallS.toFixed(2)} s\n`);

  const total = rows + rows / 100;
  await sql(m, 'DELETE FROM blobs WHERE id > 10');
  const restore = await hostkit(m, ['rollback', '--last', '--with-data']);
  const back = Number(await sql(m, 'SELECT count(*) FROM blobs'));
  if (back !== total) throw new Error(`the restore brought back ${back} rows of ${total}`);
  process.stderr.write(`  rollback --last --with-data ${restore.wallS.toFixed(2)} s (checkpoint of the data it replaces, restore, swap), ${back} rows back\n`);

  // The same manifests again (the rollback undid migrate-2: apply it, then a noop).
  await reconcile(m, repo);
  const noop = await reconcile(m, repo);
  if (noop.steps.length > 0) throw new Error(`the noop applied ${noop.steps.map((s) => s.id).join(', ')}`);

  const loadAfter = load();
  const date = new Date().toISOString();
  const result = {
    benchmark: 'checkpoint',
    date,
    databaseBytes: sizeBytes,
    rows: total,
    cores: os.availableParallelism(),
    load: { before: loadBefore, after: loadAfter },
    checkpointFirstS: firstMs / 1000,
    checkpointSecondS: secondMs / 1000,
    reconcileWithCheckpointS: first.wallS,
    rollbackWithDataS: restore.wallS,
    noopS: noop.wallS,
  };
  process.stdout.write(
    [
      `hostkit bench:checkpoint  ${date}, database ${(sizeBytes / 1e6).toFixed(1)} MB (${rows} rows of random text), local restic repository, ${result.cores} cores, node ${process.version}, load ${loadBefore.join(' ')} -> ${loadAfter.join(' ')}`,
      `  checkpoint before a migration (pg_dump -Fc | restic backup), empty repository   ${result.checkpointFirstS.toFixed(2)} s (whole reconcile ${first.wallS.toFixed(2)} s)`,
      `  checkpoint before the next migration, 1 % more rows (deduplicated)              ${result.checkpointSecondS.toFixed(2)} s (whole reconcile ${second.wallS.toFixed(2)} s)`,
      `  rollback --last --with-data (checkpoint of what it replaces, restore, swap)      ${result.rollbackWithDataS.toFixed(2)} s`,
      `  noop reconcile (no checkpoint, no restic process)                                ${result.noopS.toFixed(2)} s`,
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
  if (values.json) {
    await mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await writeFile(values.json, JSON.stringify(result, null, 1) + '\n');
  }
} finally {
  await m.stop();
  await rm(work, { recursive: true, force: true });
}
