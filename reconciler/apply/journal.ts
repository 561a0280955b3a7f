import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Change } from '../diff/model.js';
import type { CommandSpec } from '../core/specs.js';
import { forgetPrunedCheckpoints } from '../drivers/backup/checkpoint.js';
import type { ChangeJournal } from '../drivers/types.js';
import type { FileStat, Host } from '../hosts/types.js';
import type { HostSpec } from '../manifests/types.js';
import { toInventoryEntry, type InventoryEntry } from './inventory.js';
import { ensureDirectory, jsonText, readJson } from './state-file.js';

// The run journal: STATE/runs/RUN-ID/ holds run.json (written before anything
// changes: what is planned), events.jsonl (one line per step, appended as
// each step happens: a rewrite per step made a run of N changes write O(N²)
// bytes) and backups/ (the previous bytes of every
// file-like resource, taken before it is overwritten). STATE/current-run.json
// names the run in progress; a run that finds it at start-up was interrupted.

export type RunType = 'apply' | 'rollback';

export interface PlannedStep {
  id: string;
  kind: Change['kind'];
  action: Change['action'];
  project?: string;
  /** A resource a restore keeps (its driver's `restore.keeps`) that this step creates: its inventory entry, which the restored inventory keeps. */
  entry?: InventoryEntry;
  /** Lifecycle commands, in journals of versions before driver records: what a down plan needs (drivers/command/restore.ts). */
  command?: Pick<CommandSpec, 'phase' | 'down' | 'irreversible' | 'user' | 'workingDirectory' | 'project' | 'timeoutMs'> & { environmentFile?: string };
}

export interface RunRecord {
  version: 1;
  id: string;
  type: RunType;
  host: string;
  /** The Host manifest's spec.hostnames: other names the machine may report (checked by `hostkit rollback`). */
  hostnames?: string[];
  commit?: string;
  /** The commit the host was at before this run (from the inventory). */
  previousCommit?: string;
  startedAt: string;
  planned: PlannedStep[];
  /** For rollback runs: the run being undone. */
  target?: string;
}

/**
 * What a backup restores: a file's bytes and ownership, or its absence; or a driver's
 * record of live state (`state`: JSON its driver reads back, drivers/types.ts Restore).
 * `firewall` (the table's restore transaction) and `pgrole` (a role's settings, with how
 * to reach the server) are what versions before the driver records wrote: read, never written.
 */
export type BackupTarget =
  | { type: 'file'; path: string }
  | { type: 'state'; kind: Change['kind']; key: string }
  | { type: 'firewall' }
  | { type: 'pgrole'; role: string; postgresql?: HostSpec['postgresql'] };

export type RunEvent =
  | { ev: 'backup'; id: string; target: BackupTarget; file?: string; absent?: true; link?: string; mode?: number; uid?: number; gid?: number; t: string }
  | { ev: 'begin'; id: string; t: string }
  | { ev: 'applied'; id: string; ms: number; t: string }
  | { ev: 'settled'; t: string }
  | { ev: 'verified'; t: string }
  | { ev: 'health'; project: string; ok: boolean; detail?: string; t: string }
  | { ev: 'failed'; id: string; error: string; t: string }
  | { ev: 'rolling-back'; t: string }
  | { ev: 'down'; id: string; ok: boolean; t: string }
  | { ev: 'end'; status: RunStatus; detail?: string; t: string };

export type RunStatus = 'applied' | 'rolled-back' | 'interrupted-rolled-back' | 'restored' | 'failed';

export function runsDirectory(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'runs');
}

function currentPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'current-run.json');
}

/** The run now applying on the host (the one current-run.json names), if any: a driver records it beside what it did. */
export async function openRunId(host: Host, stateDirectory: string): Promise<string | undefined> {
  return (await readJson<{ run?: string }>(host, currentPath(stateDirectory)))?.run;
}

export function newRunId(now = new Date()): string {
  // Sortable by time, to the millisecond: 20261122T053900123Z-a1b2c3.
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** What the run plans, as its record keeps it; `keeps`: whether a restore keeps what a change of the kind creates. */
export function plannedSteps(changes: readonly Change[], keeps: (kind: Change['kind']) => boolean): PlannedStep[] {
  return changes.map((c) => {
    const step: PlannedStep = { id: c.id, kind: c.kind, action: c.action, ...(c.project ? { project: c.project } : {}) };
    if (c.action === 'create' && keeps(c.kind) && c.resource) step.entry = toInventoryEntry(c.resource);
    return step;
  });
}

/** What RunJournal.look saw of a path: its stat, and its bytes (a file) or where it points (a symlink). */
interface Looked {
  st: FileStat | undefined;
  bytes?: Buffer;
  link?: string;
}

// Events that must be on disk before the process goes on (see RunJournal.event).
const SYNCED_EVENTS: ReadonlySet<RunEvent['ev']> = new Set(['begin', 'down', 'end']);

/** One run's journal on the host. Every method writes through before it returns. */
export class RunJournal {
  readonly host: Host;
  readonly stateDirectory: string;
  readonly record: RunRecord;
  readonly events: RunEvent[];
  private backups = 0;
  /** Opened by this process (RunJournal.open), not loaded from the host. */
  private opened = false;
  /** What is backed up already (JSON of each backup target), so each is saved once. */
  private readonly backedUp = new Set<string>();

  private constructor(host: Host, stateDirectory: string, record: RunRecord, events: RunEvent[]) {
    this.host = host;
    this.stateDirectory = stateDirectory;
    this.record = record;
    this.events = events;
    this.backups = events.filter((e) => e.ev === 'backup' && e.file).length;
    for (const e of events) if (e.ev === 'backup') this.backedUp.add(backedUpKey(e));
  }

  get dir(): string {
    return path.posix.join(runsDirectory(this.stateDirectory), this.record.id);
  }

  /**
   * Mark the run as the one in progress, then write its record, before anything changes.
   * Killed in between, the next start-up finds it (openRun): without a record it is
   * dropped, with one it is closed; a record no mark names would stay open for good.
   */
  static async open(
    host: Host,
    stateDirectory: string,
    record: Omit<RunRecord, 'version' | 'id' | 'startedAt'> & { id?: string },
    /** Backed up first, as backupFile(id, path) right after opening would, looked at while the directories are. */
    first?: { id: string; path: string },
  ): Promise<RunJournal> {
    const full: RunRecord = { version: 1, ...record, id: record.id ?? newRunId(), startedAt: new Date().toISOString() };
    const journal = new RunJournal(host, stateDirectory, full, []);
    journal.opened = true;
    // Every directory on the way is made here (the state directory, runs/, the run's own): the files below go straight in.
    const [, seen] = await Promise.all([ensureDirectory(host, path.posix.join(journal.dir, 'backups')), first ? journal.look(first.path) : undefined]);
    const file = { uid: 0, gid: 0, mode: 0o600 };
    await host.writeFile(currentPath(stateDirectory), jsonText({ run: full.id }), file);
    await host.writeFile(path.posix.join(journal.dir, 'run.json'), jsonText(full), file);
    await host.writeFile(path.posix.join(journal.dir, 'events.jsonl'), '', file);
    if (first && seen) await journal.keep(first.id, first.path, seen);
    return journal;
  }

  static async load(host: Host, stateDirectory: string, id: string): Promise<RunJournal | undefined> {
    const dir = path.posix.join(runsDirectory(stateDirectory), id);
    const record = await readJson<RunRecord>(host, path.posix.join(dir, 'run.json'));
    if (!record || record.version !== 1) return undefined;
    const text = (await host.readFile(path.posix.join(dir, 'events.jsonl')))?.toString('utf8') ?? '';
    const events: RunEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        events.push(JSON.parse(line) as RunEvent);
      } catch {
        break; // a line cut short by a kill mid-append: the events before it are whole
      }
    }
    return new RunJournal(host, stateDirectory, record, events);
  }

  /**
   * Append one event, in one write: it is on the host before the step it
   * records happens. The events recovery decides by are synced to disk (the
   * file's earlier events with them), so after a power loss it never misses a
   * change that did happen: `begin` (and the backups before it) ahead of the
   * change, `down` after a down command ran, `end` before the run stops being
   * current.
   */
  async event(event: DistributiveOmit<RunEvent, 't'>): Promise<void> {
    const entry = { ...event, t: new Date().toISOString() } as RunEvent;
    this.events.push(entry);
    if (entry.ev === 'backup') this.backedUp.add(backedUpKey(entry));
    await this.host.appendFile(
      path.posix.join(this.dir, 'events.jsonl'),
      JSON.stringify(entry) + '\n',
      { uid: 0, gid: 0, mode: 0o600 },
      { sync: SYNCED_EVENTS.has(entry.ev) },
    );
  }

  /** Save a path's current bytes and ownership, where it points if a symlink (a release's `current`), or that it is absent, under the run, once per path. */
  async backupFile(id: string, filePath: string): Promise<void> {
    await this.backupFiles(id, [filePath]);
  }

  /**
   * backupFile for several paths: every path is looked at at once (over SSH, one
   * round trip for all), then each is saved and recorded in the order given.
   */
  async backupFiles(id: string, filePaths: readonly string[]): Promise<void> {
    const todo = [...new Set(filePaths)].filter((p) => !this.backedUp.has(JSON.stringify({ type: 'file', path: p })));
    const seen = await Promise.all(todo.map((p) => this.look(p)));
    for (const [i, filePath] of todo.entries()) await this.keep(id, filePath, seen[i]!);
  }

  // Saves what look() saw of a path under the run and records it.
  private async keep(id: string, filePath: string, { st, bytes, link }: Looked): Promise<void> {
    const target = { type: 'file' as const, path: filePath };
    if (link !== undefined) await this.event({ ev: 'backup', id, target, link });
    else if (!st || st.type !== 'file') await this.event({ ev: 'backup', id, target, absent: true });
    else {
      const file = `backups/${++this.backups}`;
      await this.host.writeFile(path.posix.join(this.dir, file), bytes ?? Buffer.alloc(0), { uid: 0, gid: 0, mode: 0o600 });
      await this.event({ ev: 'backup', id, target, file, mode: st.mode, uid: st.uid, gid: st.gid });
    }
  }

  // A path's stat, and its bytes (a file) or where it points (a symlink). The bytes are asked for with the
  // stat (one round trip over SSH); `managed` opens without following or blocking (a symlink, a FIFO, a
  // symlinked directory on the way fail there, and a file is then read again as it is).
  private async look(filePath: string): Promise<Looked> {
    const [st, early] = await Promise.all([this.host.stat(filePath), this.host.readFile(filePath, { managed: true }).catch(() => undefined)]);
    if (st?.type === 'symlink') {
      const link = await this.host.readlink(filePath);
      return link === undefined ? { st } : { st, link };
    }
    if (st?.type !== 'file') return { st };
    return { st, bytes: early ?? (await this.host.readFile(filePath)) ?? Buffer.alloc(0) };
  }

  /** Save a driver's JSON record of live state that is not a file (drivers/types.ts ChangeJournal.backupState), once per change and key. */
  async backupState(id: string, kind: Change['kind'], key: string, data: unknown): Promise<void> {
    const target: BackupTarget = { type: 'state', kind, key };
    if (this.backedUp.has(JSON.stringify({ ...target, id }))) return;
    const file = `backups/${++this.backups}`;
    await this.host.writeFile(path.posix.join(this.dir, file), JSON.stringify(data), { uid: 0, gid: 0, mode: 0o600 });
    await this.event({ ev: 'backup', id, target, file });
  }

  /** The journal as one change's driver records into it. */
  forChange(id: string, kind: Change['kind']): ChangeJournal {
    return {
      host: this.host,
      stateDirectory: this.stateDirectory,
      backupFile: (p) => this.backupFile(id, p),
      backupFiles: (paths) => this.backupFiles(id, paths),
      backupState: (key, data) => this.backupState(id, kind, key, data),
    };
  }

  async readBackup(file: string): Promise<Buffer | undefined> {
    return this.host.readFile(path.posix.join(this.dir, file));
  }

  async close(status: RunStatus, detail?: string): Promise<void> {
    await this.event({ ev: 'end', status, ...(detail ? { detail } : {}) });
    // A run this process opened is the current one: it named itself there, and the run lock kept any other out since.
    const current = this.opened ? { run: this.record.id } : await readJson<{ run?: string }>(this.host, currentPath(this.stateDirectory));
    if (current?.run === this.record.id) await this.host.remove(currentPath(this.stateDirectory));
  }

  get status(): RunStatus | 'open' {
    const end = [...this.events].reverse().find((e) => e.ev === 'end');
    return end && end.ev === 'end' ? end.status : 'open';
  }
}

// A path is backed up once per run; a state record once per change and key.
function backedUpKey(e: Extract<RunEvent, { ev: 'backup' }>): string {
  return JSON.stringify(e.target.type === 'state' ? { ...e.target, id: e.id } : e.target);
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The run left open by an interrupted process, if any. */
export async function openRun(host: Host, stateDirectory: string): Promise<RunJournal | undefined> {
  const current = await readJson<{ run?: string }>(host, currentPath(stateDirectory));
  if (!current?.run) return undefined;
  const journal = await RunJournal.load(host, stateDirectory, current.run);
  if (!journal) {
    await host.remove(currentPath(stateDirectory)); // opened but its record never written: nothing changed yet
    return undefined;
  }
  if (journal.status !== 'open') {
    await host.remove(currentPath(stateDirectory));
    return undefined;
  }
  return journal;
}

/** Every run, oldest first (run ids sort by time). */
export async function listRuns(host: Host, stateDirectory: string): Promise<RunJournal[]> {
  const ids = ((await host.readdir(runsDirectory(stateDirectory))) ?? []).sort();
  const out: RunJournal[] = [];
  for (const id of ids) {
    const j = await RunJournal.load(host, stateDirectory, id);
    if (j) out.push(j);
  }
  return out;
}

/** How many runs an apply leaves in STATE/runs unless told otherwise (each holds the backups of what it changed). */
export const DEFAULT_KEEP_RUNS = 50;

/**
 * Remove all but the newest `keep` runs (never the open one). Returns the removed ids.
 * Run ids sort by time, and the open run is the one current-run.json names: no journal
 * is read, so this costs a directory listing however long the runs are.
 */
export async function pruneRuns(
  host: Host,
  stateDirectory: string,
  keep: number,
  /** What the caller knows, holding the run lock since it listed them: the runs there are, none of them open. */
  known?: { runs: readonly string[] },
): Promise<string[]> {
  const [listed, current] = known
    ? [known.runs, undefined]
    : await Promise.all([host.readdir(runsDirectory(stateDirectory)), readJson<{ run?: string }>(host, currentPath(stateDirectory))]);
  const ids = [...(listed ?? [])].sort();
  const open = current?.run;
  const victims = ids.slice(0, Math.max(0, ids.length - keep)).filter((id) => id !== open);
  for (const id of victims) await removeTree(host, path.posix.join(runsDirectory(stateDirectory), id));
  // A run's database checkpoints (restic snapshots) go with its journal: nothing could restore them any more.
  if (victims.length > 0) await forgetPrunedCheckpoints(host, stateDirectory, new Set(ids.filter((id) => !victims.includes(id))));
  return victims;
}

async function removeTree(host: Host, dir: string): Promise<void> {
  const paths = ((await host.readdir(dir)) ?? []).map((name) => path.posix.join(dir, name));
  const stats = await Promise.all(paths.map((p) => host.stat(p)));
  for (const [i, p] of paths.entries()) {
    if (stats[i]?.type === 'directory') await removeTree(host, p);
    else await host.remove(p);
  }
  await host.remove(dir);
}
