import { createHash } from 'node:crypto';
import { parseEnvironment } from '../../reconciler/drivers/backup/job.js';
import { RESTIC_ENV } from '../../reconciler/drivers/backup/project.js';
import { fixtures as commandFixtures } from '../../reconciler/drivers/command/conformance.js';
import { guarded } from '../../reconciler/drivers/postgresql/conformance.js';
import { makePostgresDrivers } from '../../reconciler/drivers/postgresql/index.js';
import { DRIVERS } from '../../reconciler/drivers/registry.js';
import type { AnyDriver } from '../../reconciler/drivers/types.js';
import type { ExecCall, FakeHost } from '../../reconciler/hosts/fake.js';
import type { ExecResult } from '../../reconciler/hosts/types.js';
import type { FakeWorld } from './conformance.js';
import { FakePostgres } from './fake-postgres.js';

// restic 0.14 on a FakeHost, in memory: one repository (created by `init`, opened with the
// password it was created with), its snapshots, and the `bash -c` pipeline that streams a
// pg_dump into `restic backup --stdin`. The fake host's exec records no environment, so
// restic's is read where HostKit's callers read it: /etc/hostkit/backup/restic.env.
// Anything else HostKit might send restic fails loudly, so a test never passes on a guess.

export interface FakeSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  paths: string[];
  tags: string[];
  /** The file a --stdin backup holds. */
  content: string;
}

/** A database's dump as pg_dump would write it, or undefined when there is no such database. */
export type Dumper = (database: string) => string | undefined;
/** pg_restore of a dump into a database: undefined when it went well, else pg_restore's error. */
export type Restorer = (database: string, dump: string) => string | undefined;

const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
const fatal = (stderr: string, exitCode = 1): ExecResult => ({ exitCode, stdout: '', stderr: `${stderr}\n` });

/** The backup pipeline restic.ts backupStream builds around the checkpoint's and the job's producer. */
const DUMP_PIPELINE = /^set -o pipefail; runuser -u postgres -- pg_dump --format=custom --compress=0 --dbname="\$1" \| (restic .*)$/;
/** The restore pipeline restic.ts restoreStream builds around a checkpoint's consumer. */
const RESTORE_PIPELINE =
  /^set -o pipefail; (restic --no-cache dump \S+ \S+) \| runuser -u postgres -- pg_restore --exit-on-error --single-transaction --dbname="\$1"$/;

export class FakeRestic {
  /** The password the repository was created with; undefined until `restic init`. */
  password: string | undefined;
  readonly snapshots: FakeSnapshot[] = [];
  /** Every restic command line, the pipelines' included (what a test asserts on). */
  readonly commands: string[][] = [];
  private made = 0;
  private readonly host: FakeHost;
  private readonly dump: Dumper;
  private readonly restore: Restorer;

  constructor(host: FakeHost, dump: Dumper, restore: Restorer) {
    this.host = host;
    this.dump = dump;
    this.restore = restore;
    host.onExec((call) => {
      if (call.file === 'restic') return this.restic(call.args);
      if (call.file === 'bash' && call.args[0] === '-c' && call.args[2] === 'hostkit-backup') return this.pipeline(call);
      if (call.file === 'bash' && call.args[0] === '-c' && call.args[2] === 'hostkit-restore') return this.restorePipeline(call);
      return undefined;
    });
  }

  get initialized(): boolean {
    return this.password !== undefined;
  }

  /** The snapshots carrying every one of `tags`. */
  tagged(...tags: string[]): FakeSnapshot[] {
    return this.snapshots.filter((s) => tags.every((t) => s.tags.includes(t)));
  }

  // What restic reads of its environment: the repository and its password (restic refuses to guess either).
  private environment(): { repository: string; password: string } | ExecResult {
    const env = parseEnvironment(this.host.text(RESTIC_ENV) ?? '');
    if (!env.RESTIC_REPOSITORY) return fatal('Fatal: Please specify repository location (-r or --repository-file)');
    if (!env.RESTIC_PASSWORD)
      return fatal('Fatal: an empty password is not allowed by default. Pass the flag `--insecure-no-password` to restic to disable this check.');
    return { repository: env.RESTIC_REPOSITORY, password: env.RESTIC_PASSWORD };
  }

  // Opening the repository: it exists, and the password is the one it was created with.
  private open(): ExecResult | undefined {
    const env = this.environment();
    if ('exitCode' in env) return env;
    if (!this.initialized) {
      return fatal(
        `Fatal: unable to open config file: stat ${env.repository}/config: no such file or directory\nIs there a repository at the following location?\n${env.repository}`,
      );
    }
    if (env.password !== this.password) return fatal('Fatal: wrong password or no key found');
    return undefined;
  }

  private restic(argv: string[]): ExecResult {
    this.commands.push(argv);
    if (argv[0] !== '--no-cache') return fatal(`the fake restic expects --no-cache first (HostKit keeps no cache): ${argv.join(' ')}`, 127);
    const [command, ...args] = argv.slice(1);
    if (command === 'init' && args.join(' ') === '--quiet') {
      const env = this.environment();
      if ('exitCode' in env) return env;
      if (this.initialized) return fatal(`Fatal: create repository at ${env.repository} failed: config file already exists`);
      this.password = env.password;
      return ok();
    }
    const refused = this.open();
    if (refused) return refused;
    switch (`${command} ${args[0] ?? ''}`.trim()) {
      case 'cat config':
        return ok(JSON.stringify({ version: 2, id: 'f'.repeat(64), chunker_polynomial: '3dea92648f6e83' }) + '\n');
      case 'unlock --quiet':
        return ok();
      case 'snapshots --json':
        return this.list(args.slice(1));
      case 'forget --quiet':
        return this.forget(args.slice(1));
      case 'backup --json':
        return fatal(`the fake restic backs up only a --stdin stream, in the dump pipeline: ${argv.join(' ')}`, 127);
      default:
        return fatal(`the fake restic does not simulate: restic ${argv.join(' ')}`, 127);
    }
  }

  private list(args: string[]): ExecResult {
    if (args.length !== 0 && (args.length !== 2 || args[0] !== '--tag'))
      return fatal(`the fake restic does not simulate: snapshots --json ${args.join(' ')}`, 127);
    const tags = args[1]?.split(',') ?? [];
    const listed = this.tagged(...tags).map(({ content: _c, ...s }) => s);
    return ok(JSON.stringify(listed) + '\n');
  }

  // forget [--prune] ID...: restic 0.14 warns about an id it cannot find and goes on (exit 0).
  private forget(args: string[]): ExecResult {
    const ids = args.filter((a) => a !== '--prune');
    if (ids.length === 0 || ids.some((a) => a.startsWith('-')))
      return fatal(`the fake restic forgets snapshots by id only: forget --quiet ${args.join(' ')}`, 127);
    const warnings: string[] = [];
    for (const id of ids) {
      const found = this.snapshots.filter((s) => s.id.startsWith(id));
      if (found.length !== 1) {
        warnings.push(`Ignoring "${id}": ${found.length === 0 ? `no matching ID found for prefix "${id}"` : 'multiple IDs with prefix found'}`);
        continue;
      }
      this.snapshots.splice(this.snapshots.indexOf(found[0]!), 1);
    }
    return { exitCode: 0, stdout: '', stderr: warnings.map((w) => `${w}\n`).join('') };
  }

  // `set -o pipefail; pg_dump … | restic backup --stdin …`: restic saves what came through the pipe
  // even when pg_dump failed (an empty stream), and the pipeline exits with pg_dump's status.
  private pipeline(call: ExecCall): ExecResult {
    const [, script, , database] = call.args;
    const m = DUMP_PIPELINE.exec(script ?? '');
    if (!m || database === undefined) return fatal(`the fake bash does not understand: ${script}`, 127);
    const argv = words(m[1]!);
    this.commands.push(argv.slice(1));
    const flags = parseBackup(argv.slice(1));
    if (typeof flags === 'string') return fatal(`the fake restic does not simulate: ${flags}`, 127);
    const refused = this.open();
    if (refused) return refused;
    const content = this.dump(database);
    const snapshot = this.save(flags, content ?? '');
    const summary = {
      message_type: 'summary',
      files_new: 1,
      data_added: snapshot.content.length,
      total_files_processed: 1,
      total_bytes_processed: snapshot.content.length,
      total_duration: 0.1,
      snapshot_id: snapshot.id,
    };
    const stdout = `${JSON.stringify({ message_type: 'status', percent_done: 1 })}\n${JSON.stringify(summary)}\n`;
    if (content === undefined) {
      return {
        exitCode: 1,
        stdout,
        stderr: `pg_dump: error: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: FATAL:  database "${database}" does not exist\n`,
      };
    }
    return { exitCode: 0, stdout, stderr: '' };
  }

  // `set -o pipefail; restic dump SNAPSHOT FILE | pg_restore …`: the file of the snapshot into the database.
  private restorePipeline(call: ExecCall): ExecResult {
    const [, script, , database] = call.args;
    const m = RESTORE_PIPELINE.exec(script ?? '');
    if (!m || database === undefined) return fatal(`the fake bash does not understand: ${script}`, 127);
    const [, , , id, file] = words(m[1]!);
    this.commands.push(words(m[1]!).slice(1));
    const refused = this.open();
    if (refused) return refused;
    const found = this.snapshots.filter((s) => s.id.startsWith(id!));
    if (found.length !== 1) return fatal(`Fatal: failed to find snapshot: ${found.length === 0 ? 'no matching ID found' : 'multiple IDs'} for prefix "${id}"`);
    if (!found[0]!.paths.includes(file!)) return fatal(`Fatal: cannot dump file: path "${file}" not found in snapshot`);
    const error = this.restore(database, found[0]!.content);
    return error === undefined ? ok() : fatal(`pg_restore: error: ${error}`);
  }

  private save(flags: { filename: string; hostname: string; tags: string[] }, content: string): FakeSnapshot {
    const id = createHash('sha256').update(`${++this.made} ${flags.filename}`).digest('hex');
    const snapshot = {
      id,
      short_id: id.slice(0, 8),
      time: new Date().toISOString(),
      hostname: flags.hostname,
      paths: [flags.filename],
      tags: flags.tags,
      content,
    };
    this.snapshots.push(snapshot);
    return snapshot;
  }
}

// backup --json --stdin --stdin-filename F --host H [--tag T]...: the flags HostKit passes, nothing else.
function parseBackup(argv: string[]): { filename: string; hostname: string; tags: string[] } | string {
  const [noCache, command, json, stdin, ...rest] = argv;
  if (noCache !== '--no-cache' || command !== 'backup' || json !== '--json' || stdin !== '--stdin') return argv.join(' ');
  const out = { filename: '', hostname: '', tags: [] as string[] };
  for (let i = 0; i < rest.length; i += 2) {
    const value = rest[i + 1];
    if (value === undefined) return argv.join(' ');
    if (rest[i] === '--stdin-filename') out.filename = value;
    else if (rest[i] === '--host') out.hostname = value;
    else if (rest[i] === '--tag') out.tags.push(value);
    else return argv.join(' ');
  }
  return out.filename && out.hostname ? out : argv.join(' ');
}

// The words of a command line as bash splits it: blanks outside single quotes, '\'' for a quote inside one.
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/(?:[^\s']+|'[^']*')+/g)) out.push(m[0].replace(/'([^']*)'/g, '$1'));
  return out;
}

/**
 * A host whose projects' databases are checkpointed (drivers/backup/conformance.ts): the fake
 * PostgreSQL server (its drivers in place of the registered ones), restic dumping its databases,
 * and the command fixture's systemd-run running the projects' lifecycle commands.
 */
export function checkpointWorld(host: FakeHost): FakeWorld & { restic: FakeRestic; server: FakePostgres } {
  const server = new FakePostgres();
  const restic = new FakeRestic(
    host,
    (name) => {
      const db = server.databases.get(name);
      return db && JSON.stringify({ database: name, extensions: [...db.extensions].sort() });
    },
    (name, dump) => {
      const db = server.databases.get(name);
      if (!db) return `connection to server failed: FATAL:  database "${name}" does not exist`;
      db.extensions = new Set((JSON.parse(dump || '{}') as { extensions?: string[] }).extensions ?? []);
      return undefined;
    },
  );
  fakePsql(host, server);
  commandFixtures.find((f) => f.kind === 'command')!.fake(host);
  return {
    restic,
    server,
    drivers: (guard) => {
      const fakes: AnyDriver[] = Object.values(makePostgresDrivers(guarded(server, guard)));
      return [...DRIVERS.filter((d) => !fakes.some((f) => f.kind === d.kind)), ...fakes];
    },
    costs: () => ({ sessions: server.sessions.length, statements: server.sent.length }),
  };
}

const quoted = `"((?:[^"]|"")+)"`;
const literal = `'((?:[^']|'')*)'`;
const name = (q: string) => q.replace(/""/g, '"');

/**
 * `runuser -u postgres -- psql … -d postgres -c SQL` over the fake server: the statements a
 * checkpoint's restore sends (drivers/backup/checkpoint.ts restoreCheckpoint), nothing else.
 */
function fakePsql(host: FakeHost, server: FakePostgres): void {
  host.onExec((call) => {
    if (call.file !== 'runuser' || !call.args.includes('psql')) return undefined;
    const sql = call.args[call.args.indexOf('-c') + 1] ?? '';
    const error = (message: string) => fatal(`ERROR:  ${message}`, 1);
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^DROP DATABASE IF EXISTS ${quoted} WITH \\(FORCE\\)$`).exec(sql))) {
      server.databases.delete(name(m[1]!));
      return ok();
    }
    if ((m = new RegExp(`^SELECT pg_get_userbyid\\(datdba\\) .* FROM pg_database WHERE datname = ${literal}$`).exec(sql))) {
      const db = server.databases.get(m[1]!.replace(/''/g, "'"));
      return ok(db ? `${db.owner}|${db.encoding}|${db.collate}|${db.ctype}\n` : '');
    }
    if (
      (m = new RegExp(`^CREATE DATABASE ${quoted} OWNER ${quoted} TEMPLATE template0(?: ENCODING ${literal} LC_COLLATE ${literal} LC_CTYPE ${literal})?$`).exec(
        sql,
      ))
    ) {
      const [database, owner] = [name(m[1]!), name(m[2]!)];
      if (server.databases.has(database)) return error(`database "${database}" already exists`);
      if (!server.roles.has(owner)) return error(`role "${owner}" does not exist`);
      server.databases.set(database, {
        owner,
        encoding: m[3] ?? 'UTF8',
        collate: m[4] ?? 'C.UTF-8',
        ctype: m[5] ?? 'C.UTF-8',
        extensions: new Set(['plpgsql']),
      });
      return ok();
    }
    if ((m = new RegExp(`^SELECT 1 FROM pg_database WHERE datname = ${literal}$`).exec(sql))) {
      return ok(server.databases.has(m[1]!.replace(/''/g, "'")) ? '1\n' : '');
    }
    if (/^SELECT pg_terminate_backend\(pid\) FROM pg_stat_activity WHERE datname = '[^']*' AND pid <> pg_backend_pid\(\)$/.test(sql)) return ok();
    if ((m = /^BEGIN; (.*); COMMIT$/.exec(sql))) {
      // One transaction: every rename, or none.
      const renamed = new Map(server.databases);
      for (const statement of m[1]!.split('; ')) {
        const r = new RegExp(`^ALTER DATABASE ${quoted} RENAME TO ${quoted}$`).exec(statement);
        if (!r) return fatal(`the fake psql does not understand: ${statement}`, 3);
        const [from, to] = [name(r[1]!), name(r[2]!)];
        const db = renamed.get(from);
        if (!db) return error(`database "${from}" does not exist`);
        if (renamed.has(to)) return error(`database "${to}" already exists`);
        renamed.delete(from);
        renamed.set(to, db);
      }
      server.databases = renamed;
      return ok();
    }
    return fatal(`the fake psql does not understand: ${sql}`, 3);
  });
}
