import type { Logger } from 'pino';
import type { Diagnostic } from '../core/diagnostics.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import type { SecretResolver } from '../core/secrets.js';
import type { Change, Operation } from '../diff/model.js';
import type { Host } from '../hosts/types.js';
import type { HostManifest } from '../manifests/types.js';
import type { Inventory, InventoryEntry } from '../apply/inventory.js';
import type { PlannedStep } from '../apply/journal.js';
import type { RunServices } from './run.js';
import type { AnyPrimitive } from './manifest-types.js';

export interface DriverContext {
  host: Host;
  secrets: SecretResolver;
  /** The Host manifest of the managed host (admin connections, ACME account, firewall policy). */
  hostManifest: HostManifest;
  /** Where HostKit keeps its state on the managed host. */
  stateDirectory: string;
  /** "plan" for dry runs: drivers must not change anything in either mode before apply(). */
  mode: 'plan' | 'apply';
  log: Logger;
  /**
   * sha256 of the desired content of every file this run manages, by path,
   * filled by drivers of files before later kinds resolve their desired state
   * (a unit embeds the digests of the files its service reads).
   */
  fileDigests: Map<string, string>;
  /**
   * The host's fingerprint key (STATE/fingerprint.key): every digest of file bytes that
   * reaches a rendered file or a plan is an HMAC under it (shared/inputs.ts fileDigest),
   * so a unit file anyone on the host can read, or a plan on a pull request, gives no
   * way to test guesses of a secret in an env file offline.
   */
  digestKey: Buffer;
  /** What HostKit applied on the host before this run (STATE/inventory.json): what it owns and the bytes it wrote. */
  inventory: Inventory;
  /**
   * By resource id: sha256 of the bytes this run will have written at each of the
   * resource's paths once applied (drivers/shared/owned.ts recordWritten); kept in the
   * inventory, so the next plan knows which live bytes are HostKit's own.
   */
  written: Map<string, Record<string, string>>;
  /** Problems found while applying that do not stop the run (e.g. systemd-analyze warnings); reported with the result. */
  warnings: Diagnostic[];
  /**
   * What several drivers share during this run (the user database, nginx's owed reload,
   * the services restarted so far): made by the engine with the context, gone with it.
   */
  run: RunServices;
}

export interface Applied<D = unknown, O = unknown, S = unknown, U = unknown, P extends Operation = Operation> {
  change: Change<D, O, S, P>;
  undo: U;
}

export interface PlanInput<S, D, O> {
  /** The desired resource, or for an orphan the resource as it was last applied. */
  resource: Resource<S>;
  /** What the driver resolved the resource into (secrets read, defaults applied); undefined for orphans. */
  desired: D | undefined;
  /** Live state; undefined when the thing does not exist on the host. */
  observed: O | undefined;
  /** The resource was applied by HostKit before and no manifest declares it any more. */
  orphan: boolean;
}

/**
 * What validation, schema generation and ordering need of a kind, without its driver's
 * code (drivers/NAME/definition.ts, listed in drivers/kinds.ts); the driver spreads it.
 */
export interface KindDefinition<K extends string = ResourceKind> {
  readonly kind: K;
  /**
   * Where its changes fall among kinds with no dependency between them (lower first;
   * deletions in reverse): apt sources and packages first, then accounts and directories, then databases, files, commands,
   * units, certificates and sites, the firewall last (DRIVERS.md "Across drivers").
   */
  readonly rank: number;
  /** What happens to a resource HostKit created whose manifest is gone. */
  readonly orphans: 'delete' | 'report';
  /** The manifest kinds its folder expands (drivers/NAME/manifest.ts), if any. */
  readonly manifests?: readonly AnyPrimitive[];
}

/**
 * One driver per kind of host state (reconciler/drivers/NAME/). The engine only
 * knows this interface; adding a driver means adding a folder and registering it.
 *
 * S: the resource spec, D: the resolved desired state, O: the observed state,
 * U: what apply returns (settle and verify read it), K: the kind, R: the driver's own
 * state for one run (createRun), P: the operations its plan computes (declared in its folder).
 */
export interface Driver<
  S = unknown,
  D = unknown,
  O = unknown,
  U = unknown,
  K extends string = ResourceKind,
  R = void,
  P extends Operation = Operation,
> extends KindDefinition<K> {
  /**
   * Optional: the driver's state for one run (what desire and observe saw, so that apply
   * can do for every change at once what it would do once per change). The engine calls
   * it once per run and passes the result as the last argument of every other call of
   * that run; it is dropped with the run. A driver that keeps nothing has none.
   */
  createRun?(ctx: DriverContext): R;

  /**
   * Resolve desired state that needs the host or secrets (never changes the host).
   * May add diagnostics, e.g. an unavailable secret.
   */
  desire(resources: readonly Resource<S>[], ctx: DriverContext, state: R): Promise<Map<string, { desired: D; diagnostics: Diagnostic[] }>>;

  /**
   * Read the live state of all the given resources, batched: a constant number
   * of processes or queries, not one per resource. Never changes the host.
   */
  observe(resources: readonly Resource<S>[], ctx: DriverContext, state: R): Promise<Map<string, O>>;

  /** Desired vs observed -> Change, with the operations apply will run. Pure: no I/O. */
  plan(input: PlanInput<S, D, O>): Change<D, O, S, P>;

  /**
   * Optional: the desired state without what only says when it was resolved (a clock
   * reading), which a saved plan fingerprints (diff/saved-plan.ts); default all of it.
   * What such a reading decides shows in the planned change, which is compared too.
   */
  stableDesired?(desired: D): unknown;

  /**
   * Make the change: run its operations (`change.ops`), nothing else. Returns what rollback
   * needs. Each driver documents what the host looks like if apply throws part-way.
   */
  apply(change: Change<D, O, S, P>, ctx: DriverContext, state: R): Promise<U>;

  /**
   * Optional (see WithSettle): called once per run after every change of this kind was
   * applied: the place for one daemon-reload and one restart call instead of one per
   * resource. If it throws, the run rolls back (a restore from its journal, see `restore`).
   */
  settle?(items: readonly Applied<D, O, S, U, P>[], ctx: DriverContext, phase: 'apply', state: R): Promise<void>;

  /** Check the change took effect (after settle); problems are returned, not thrown. */
  verify(change: Change<D, O, S, P>, ctx: DriverContext, state: R): Promise<Diagnostic[]>;

  /**
   * How its changes are undone: the one path of the in-run rollback, crash recovery
   * and `hostkit rollback` (Restore below).
   */
  readonly restore: Restore<Change<D, O, S, P>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDriver = Driver<any, any, any, any, ResourceKind, any, any>;

// Optional capabilities: each a named interface a driver adds to Driver, found by its type guard.

/** A driver that makes its kind's changes live once per run, after all of them applied. */
export type WithSettle = Required<Pick<AnyDriver, 'settle'>>;

export function hasSettle(driver: AnyDriver): driver is AnyDriver & WithSettle {
  return typeof driver.settle === 'function';
}

/**
 * A driver some of whose changes must find the changes applied before them live: before
 * such a change applies, every driver applied so far in the run settles (an after-start
 * lifecycle command runs against the services its project restarted, not the old ones).
 */
export interface WithSettleFirst<C = Change> {
  settleFirst(change: C): boolean;
}

export function hasSettleFirst(driver: AnyDriver): driver is AnyDriver & WithSettleFirst {
  return 'settleFirst' in driver && typeof driver.settleFirst === 'function';
}

/**
 * A driver whose changes depend on the rest of the plan: after every driver planned its own
 * changes, `guard` may turn one of its changes into another, seeing every pending change of
 * the run by id (a checkpoint is taken only when a change it guards is pending). Pure: no I/O.
 */
export interface WithGuard<C = Change> {
  guard(change: C, pending: ReadonlyMap<string, Change>): C;
}

export function hasGuard(driver: AnyDriver): driver is AnyDriver & WithGuard {
  return 'guard' in driver && typeof driver.guard === 'function';
}

/** Optional capability: the manifest kinds a driver folder expands (drivers/manifest-types.ts). */
export interface WithManifests<P extends AnyPrimitive = AnyPrimitive> {
  readonly manifests: readonly P[];
}

export function hasManifests<D extends object>(driver: D): driver is D & WithManifests {
  return Array.isArray((driver as Partial<WithManifests>).manifests);
}

// Undo: one path for the in-run rollback, crash recovery and `hostkit rollback`
// (apply/restore.ts runs it). Before a change applies, its driver records in the
// run journal what puts the host back: files through the journal, anything else
// as a JSON record of its own. A restore reads those records back, newest change
// first, and asks the driver that made each into steps.

/** Where a driver records, before one change applies, what undoes it (the run journal, for that change). */
export interface ChangeJournal {
  readonly host: Host;
  readonly stateDirectory: string;
  /** Save a path's bytes and ownership, where it points if a symlink, or that it is absent (once per path and run). */
  backupFile(path: string): Promise<void>;
  /** backupFile for several paths at once (one round trip over SSH for all), recorded in the order given. */
  backupFiles(paths: readonly string[]): Promise<void>;
  /**
   * Save live state that bytes of a file cannot express (the firewall's restore transaction,
   * a role's settings, kernel values) as a JSON record, named `key` within the change
   * (once per key and run). No secret value: the journal is root's, but kept for weeks.
   */
  backupState(key: string, data: unknown): Promise<void>;
}

/** One journaled change, as a restore reads it back: what the run planned for it, how far it got, and its records. */
export interface JournaledChange<T = unknown> {
  id: string;
  /** What the run planned for it (absent for a change no plan of the run lists). */
  planned?: PlannedStep;
  /** Its apply started (the change may be half made). */
  begun: boolean;
  /** Its apply returned. */
  applied: boolean;
  /** Its undo already ran once and was recorded (`ran`): a down command never runs twice. */
  ran: boolean;
  /** Its state records (backupState), oldest first. */
  records: { key: string; data: T }[];
  /**
   * The run had ended (`hostkit rollback` of a closed run): what it created may have been
   * used since. False while the run is still open (its own rollback of a failure, the
   * recovery of an interrupted run): nothing used its creations yet.
   */
  finished: boolean;
  /**
   * The restore puts databases back to their checkpoints too (`hostkit rollback --with-data`).
   * Without it a checkpoint is restored only by the rollback of an unfinished run of a project
   * that asks for it (`database.restoreDataOnRollback`); otherwise the restore says the data was not reverted.
   */
  withData?: boolean;
}

/** What a driver's restore steps and hooks may use. */
export interface RestoreContext {
  host: Host;
  stateDirectory: string;
  log: Logger;
  /**
   * The run doing the restore (`hostkit rollback`), for the step's change: back up there
   * what the step replaces, so the restore can be undone in turn. Absent for the in-run
   * rollback and for crash recovery (the run being restored is the record).
   */
  record?: ChangeJournal;
  /** Record in the restored run's journal that this step's undo ran (`ok` or not), so no later restore runs it again. */
  ran(ok: boolean): Promise<void>;
}

/** A step a driver plans: `action` is its own name (shown by `hostkit rollback --dry-run`). */
export interface DriverRestoreStep {
  action: string;
  resource: string;
  /** Already as before: nothing to do. */
  unchanged?: boolean;
}

/** The generic steps of every restore: files, links and what is kept (apply/restore.ts applies them). */
export type FileRestoreStep =
  | { action: 'restore-file'; resource: string; path: string; bytes: number; unchanged: boolean; backup: string; mode: number; uid: number; gid: number }
  | { action: 'remove-file'; resource: string; path: string; unchanged: boolean }
  | { action: 'restore-link'; resource: string; path: string; target: string; unchanged: boolean }
  | { action: 'keep'; resource: string; detail: string; entry?: InventoryEntry };

/** A driver's steps carry its kind, so the restore hands each back to the driver that planned it. */
export type RestoreStep = FileRestoreStep | (DriverRestoreStep & { kind: ResourceKind });

const FILE_ACTIONS: ReadonlySet<string> = new Set(['restore-file', 'remove-file', 'restore-link', 'keep']);

/** A step the restore itself runs (a driver's steps carry its kind and are its driver's to run). */
export function isFileStep(step: RestoreStep): step is FileRestoreStep {
  return FILE_ACTIONS.has(step.action);
}

/**
 * A driver's once-per-restore work, after every step ran (systemd: one daemon-reload and
 * one restart; nginx: `nginx -t` and one reload). Planned from all the restore's steps,
 * not only its own kind's: a driver acts on the files it reads whoever wrote them (systemd
 * on the firewall's boot unit, nginx on a certificate).
 */
export interface AfterRestore<A = unknown> {
  /** What it will do, from every step and every journaled change of the restore, or undefined for nothing. Reads the host, changes nothing. */
  plan(
    steps: readonly RestoreStep[],
    changes: readonly JournaledChange[],
    host: Host,
    readBackup: (file: string) => Promise<Buffer | undefined>,
  ): Promise<A | undefined>;
  /** Lines `hostkit rollback --dry-run` shows. */
  describe(plan: A): string[];
  /** Before any step runs (systemd stops the units whose files go). */
  before?(plan: A, ctx: RestoreContext): Promise<void>;
  apply(plan: A, ctx: RestoreContext): Promise<void>;
}

/**
 * How a driver's changes are undone. (a) `backup` records, before a change applies, what
 * puts it back; (b) `plan` turns one journaled change's records into steps (reads the
 * host, changes nothing); (c) `apply` runs one step; (d) `after` runs once per restore.
 * A restore is idempotent: restoring twice, or a change that never got made, is harmless.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Restore<C = Change, T = any, St extends DriverRestoreStep = any, A = any> {
  /**
   * Before `change` applies. If it throws, nothing of the change happened yet and it does
   * not apply (the run rolls back what applied before it).
   */
  backup(change: C, journal: ChangeJournal, ctx: DriverContext): Promise<void>;
  /**
   * What a restore keeps of what this kind's changes created, and why (an account may own
   * files, a database holds data): a kept resource stays, with its inventory entry. A
   * created resource for which `plan` makes steps is not kept (an empty directory goes).
   */
  readonly keeps?: string;
  /**
   * A reason to leave one journaled change's backed-up files as they are now, or undefined
   * to put them back (a certificate the CA issued since, valid for the names before: ordering
   * it again would burn rate limit). Reads the host, changes nothing.
   */
  keepFiles?(change: JournaledChange<T>, host: Host): Promise<string | undefined>;
  /** Steps for one journaled change of this kind, from its records (files are the journal's). */
  plan?(change: JournaledChange<T>, host: Host): Promise<St[]>;
  /** Run one step; a string returned is a warning the restore reports (what was not undone). Throws: the step failed, the others go on. */
  apply?(step: St, ctx: RestoreContext): Promise<string | void>;
  /** One line of `hostkit rollback --dry-run` for a step. */
  describe?(step: St): string;
  after?: AfterRestore<A>;
}

/** A driver that declares how its changes are undone (every registered one does; found by its guard where a journal names a kind). */
export type WithRestore = Pick<AnyDriver, 'restore'>;

export function hasRestore(driver: AnyDriver | undefined): driver is AnyDriver & WithRestore {
  return driver !== undefined && typeof (driver as Partial<WithRestore>).restore?.backup === 'function';
}
