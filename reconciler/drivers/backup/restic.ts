import { HostKitError } from '../../core/errors.js';
import type { ExecResult, Host } from '../../hosts/types.js';

// restic, the store of every backup and checkpoint: one repository per host. Every
// command gets the repository, its password and the backend's credentials through
// its environment (never its arguments: `ps` shows those to every user), and what it
// prints is redacted by the caller's `scrub` before it reaches an error or a log.

/** How to reach the host's repository: RESTIC_REPOSITORY, RESTIC_PASSWORD and backend credentials. */
export interface ResticAccess {
  host: Host;
  /** The environment restic runs with (values are secrets: never logged, never in argv). */
  env: Record<string, string>;
  /** Redacts the secrets above (and any other) from restic's output. */
  scrub: (text: string) => string;
  /** The name snapshots are recorded under (restic --host). */
  hostname: string;
}

/** A snapshot as `restic snapshots --json` lists it, with HostKit's tags read. */
export interface Snapshot {
  id: string;
  shortId: string;
  time: string;
  paths: string[];
  tags: string[];
  project?: string;
  kind?: 'database' | 'files' | 'checkpoint';
  run?: string;
}

/** What one `restic backup` added. */
export interface BackupSummary {
  snapshot: string;
  /** Bytes read from the source (the dump's size, or the paths' total). */
  bytes: number;
  /** Bytes added to the repository after deduplication and compression. */
  added: number;
  seconds: number;
}

/** Retention: how many daily, weekly and monthly snapshots of each group are kept. */
export interface KeepPolicy {
  last?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

const RESTIC = 'restic';
const NETWORK_TIMEOUT_MS = 60 * 60 * 1000;
const QUICK_TIMEOUT_MS = 2 * 60 * 1000;

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

async function restic(access: ResticAccess, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return access.host.exec(RESTIC, ['--no-cache', ...args], {
    env: access.env,
    timeoutMs: options.timeoutMs ?? QUICK_TIMEOUT_MS,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

function failure(access: ResticAccess, what: string, result: ExecResult, data: Record<string, unknown> = {}): HostKitError {
  const output = access.scrub(tail(result.stderr || result.stdout));
  const unreachable =
    /unable to open (config file|repository)|Is there a repository|connection refused|no such host|i\/o timeout|ssh: |dial tcp|unable to start the sftp session|server response unexpected/i.test(
      output,
    );
  const message = `${what}: restic exited ${result.exitCode}: ${output}`;
  const details = { data: { ...data, exitCode: result.exitCode, output } };
  return unreachable ? new HostKitError('BACKUP_REPOSITORY_UNAVAILABLE', message, details) : new HostKitError('BACKUP_FAILED', message, details);
}

/** Whether the repository exists (and opens with the password): `restic cat config`. */
export async function repositoryExists(access: ResticAccess): Promise<boolean> {
  const r = await restic(access, ['cat', 'config']);
  if (r.exitCode === 0) return true;
  if (/unable to open config file: .*(no such file|not exist|404)|Is there a repository at the following location/i.test(r.stderr)) return false;
  throw failure(access, 'the backup repository could not be opened', r);
}

/** Create the repository (`restic init`); an existing one is left as it is. */
export async function initRepository(access: ResticAccess): Promise<void> {
  if (await repositoryExists(access)) return;
  const r = await restic(access, ['init', '--quiet']);
  if (r.exitCode !== 0) throw failure(access, 'the backup repository could not be created', r);
}

/** Remove the locks a killed restic left (restic removes only stale ones: a live process's lock stays). */
export async function unlockStale(access: ResticAccess): Promise<void> {
  const r = await restic(access, ['unlock', '--quiet']);
  if (r.exitCode !== 0) throw failure(access, 'stale locks of the backup repository could not be removed', r);
}

function tagArgs(tags: readonly string[]): string[] {
  return tags.flatMap((t) => ['--tag', t]);
}

function summaryOf(access: ResticAccess, what: string, result: ExecResult): BackupSummary {
  for (const line of result.stdout.trim().split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as {
      message_type?: string;
      snapshot_id?: string;
      total_bytes_processed?: number;
      data_added?: number;
      total_duration?: number;
    };
    if (msg.message_type === 'summary' && msg.snapshot_id) {
      return { snapshot: msg.snapshot_id, bytes: msg.total_bytes_processed ?? 0, added: msg.data_added ?? 0, seconds: msg.total_duration ?? 0 };
    }
  }
  throw failure(access, `${what}: restic printed no summary`, result);
}

/**
 * Back up what `producer` (a shell command, given its arguments positionally) writes to
 * its standard output as one file, `filename`, in a new snapshot. The two run in one
 * bash pipeline with pipefail: a producer that fails fails the backup (restic has
 * saved a snapshot of a partial stream by then; it is removed again).
 */
export async function backupStream(
  access: ResticAccess,
  options: { what: string; producer: string; args: readonly string[]; filename: string; tags: readonly string[]; timeoutMs?: number },
): Promise<BackupSummary> {
  const command = [
    'restic',
    '--no-cache',
    'backup',
    '--json',
    '--stdin',
    '--stdin-filename',
    options.filename,
    '--host',
    access.hostname,
    ...tagArgs(options.tags),
  ];
  const script = `set -o pipefail; ${options.producer} | ${command.map(shellQuote).join(' ')}`;
  const r = await access.host.exec('bash', ['-c', script, 'hostkit-backup', ...options.args], {
    env: access.env,
    timeoutMs: options.timeoutMs ?? NETWORK_TIMEOUT_MS,
  });
  if (r.exitCode !== 0) {
    // A snapshot restic finished before the producer's failure was seen holds a partial stream.
    const partial = /"message_type":"summary".*"snapshot_id":"([0-9a-f]+)"/.exec(r.stdout)?.[1];
    if (partial) await forgetSnapshots(access, [partial]).catch(() => undefined);
    throw failure(access, options.what, r);
  }
  return summaryOf(access, options.what, r);
}

async function forgetSnapshots(access: ResticAccess, ids: readonly string[], prune = false): Promise<void> {
  const r = await restic(access, ['forget', '--quiet', ...(prune ? ['--prune'] : []), ...ids], { timeoutMs: prune ? NETWORK_TIMEOUT_MS : QUICK_TIMEOUT_MS });
  if (r.exitCode !== 0) throw failure(access, `snapshots ${ids.join(', ')} could not be removed`, r);
}

/** Forget snapshots by id and prune the data only they held. */
export async function forgetAndPrune(access: ResticAccess, ids: readonly string[]): Promise<void> {
  await forgetSnapshots(access, ids, true);
}

/** Back up directories (absolute paths) in one snapshot. */
export async function backupPaths(
  access: ResticAccess,
  options: { what: string; paths: readonly string[]; tags: readonly string[]; timeoutMs?: number },
): Promise<BackupSummary> {
  const r = await restic(access, ['backup', '--json', '--host', access.hostname, ...tagArgs(options.tags), '--', ...options.paths], {
    timeoutMs: options.timeoutMs ?? NETWORK_TIMEOUT_MS,
  });
  // Exit 3: some files could not be read; the snapshot exists but is incomplete.
  if (r.exitCode !== 0) throw failure(access, options.what, r);
  return summaryOf(access, options.what, r);
}

/** Snapshots carrying every one of `tags`, oldest first. */
export async function listSnapshots(access: ResticAccess, tags: readonly string[] = []): Promise<Snapshot[]> {
  const r = await restic(access, ['snapshots', '--json', ...(tags.length > 0 ? ['--tag', tags.join(',')] : [])], { timeoutMs: NETWORK_TIMEOUT_MS });
  if (r.exitCode !== 0) throw failure(access, 'the snapshots could not be listed', r);
  const raw = JSON.parse(r.stdout || '[]') as { id: string; short_id: string; time: string; paths?: string[]; tags?: string[] }[];
  return raw.map((s) => {
    const tags = s.tags ?? [];
    const tag = (key: string) => tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);
    const kind = tag('kind');
    const project = tag('project');
    const run = tag('run');
    return {
      id: s.id,
      shortId: s.short_id,
      time: s.time,
      paths: s.paths ?? [],
      tags,
      ...(project ? { project } : {}),
      ...(kind === 'database' || kind === 'files' || kind === 'checkpoint' ? { kind } : {}),
      ...(run ? { run } : {}),
    };
  });
}

/** Apply a retention policy to the snapshots carrying `tags` (grouped by their tags and paths), and prune. */
export async function forget(access: ResticAccess, tags: readonly string[], keep: KeepPolicy): Promise<void> {
  const policy = (['last', 'daily', 'weekly', 'monthly'] as const).flatMap((k) => (keep[k] !== undefined ? [`--keep-${k}`, String(keep[k])] : []));
  if (policy.length === 0) return; // no policy: keep everything
  const r = await restic(access, ['forget', '--quiet', '--prune', '--group-by', 'tags,paths', '--tag', tags.join(','), ...policy], {
    timeoutMs: NETWORK_TIMEOUT_MS,
  });
  if (r.exitCode !== 0) throw failure(access, 'old snapshots could not be removed', r);
}

/** `restic check`: the repository's structure is consistent. */
export async function checkRepository(access: ResticAccess): Promise<void> {
  const r = await restic(access, ['check', '--quiet'], { timeoutMs: NETWORK_TIMEOUT_MS });
  if (r.exitCode !== 0) throw failure(access, 'the backup repository failed its check', r);
}

/** Stream one file of a snapshot into `consumer` (a shell command reading standard input). */
export async function restoreStream(
  access: ResticAccess,
  options: { what: string; snapshot: string; filename: string; consumer: string; args: readonly string[]; timeoutMs?: number },
): Promise<void> {
  const dump = ['restic', '--no-cache', 'dump', options.snapshot, options.filename].map(shellQuote).join(' ');
  const r = await access.host.exec('bash', ['-c', `set -o pipefail; ${dump} | ${options.consumer}`, 'hostkit-restore', ...options.args], {
    env: access.env,
    timeoutMs: options.timeoutMs ?? NETWORK_TIMEOUT_MS,
  });
  if (r.exitCode !== 0) throw failure(access, options.what, r);
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
