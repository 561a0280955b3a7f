import type { Logger } from 'pino';
import type { Diagnostic } from '../core/diagnostics.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import type { SecretResolver } from '../core/secrets.js';
import type { Change } from '../diff/model.js';
import type { Host } from '../hosts/types.js';
import type { HostManifest } from '../manifests/types.js';
import type { Inventory } from '../apply/inventory.js';
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

export interface Applied<D = unknown, O = unknown, S = unknown, U = unknown> {
  change: Change<D, O, S>;
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
   * deletions in reverse): accounts and directories, then databases, files, commands,
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
 * U: the undo data apply returns for rollback, K: the kind, R: the driver's own
 * state for one run (createRun).
 */
export interface Driver<S = unknown, D = unknown, O = unknown, U = unknown, K extends string = ResourceKind, R = void> extends KindDefinition<K> {
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

  /** Desired vs observed -> Change. Pure: no I/O. */
  plan(input: PlanInput<S, D, O>): Change<D, O, S>;

  /**
   * Make the change. Returns what rollback needs. Each driver documents what
   * the host looks like if apply throws part-way.
   */
  apply(change: Change<D, O, S>, ctx: DriverContext, state: R): Promise<U>;

  /**
   * Optional (see WithSettle): called once per run after every change of this kind was
   * applied (phase "apply"), or after they were rolled back (phase "rollback"): the place
   * for one daemon-reload and one restart call instead of one per resource.
   * If it throws in the apply phase, the run rolls back.
   */
  settle?(items: readonly Applied<D, O, S, U>[], ctx: DriverContext, phase: 'apply' | 'rollback', state: R): Promise<void>;

  /** Check the change took effect (after settle); problems are returned, not thrown. */
  verify(change: Change<D, O, S>, ctx: DriverContext, state: R): Promise<Diagnostic[]>;

  /** Put back what apply changed, from its undo data. */
  rollback(change: Change<D, O, S>, undo: U, ctx: DriverContext, state: R): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDriver = Driver<any, any, any, any, ResourceKind, any>;

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
 * A driver whose rollback does what a restore from the run's backups would do again
 * (a lifecycle command's down command): once its rollback of a change succeeded, the
 * executor records this journal event for it, and a later restore does not repeat it.
 */
export interface WithRollbackEvent {
  readonly rollbackEvent: 'down';
}

export function hasRollbackEvent(driver: AnyDriver): driver is AnyDriver & WithRollbackEvent {
  return 'rollbackEvent' in driver && driver.rollbackEvent === 'down';
}

/** A driver that names the files a change may overwrite or remove (backed up in the run journal before it applies). */
export interface WithBackupPaths<C = Change> {
  backupPaths(change: C): string[];
}

export function hasBackupPaths(driver: AnyDriver | undefined): driver is AnyDriver & WithBackupPaths {
  return driver !== undefined && 'backupPaths' in driver && typeof driver.backupPaths === 'function';
}

/** Optional capability: the manifest kinds a driver folder expands (drivers/manifest-types.ts). */
export interface WithManifests<P extends AnyPrimitive = AnyPrimitive> {
  readonly manifests: readonly P[];
}

export function hasManifests<D extends object>(driver: D): driver is D & WithManifests {
  return Array.isArray((driver as Partial<WithManifests>).manifests);
}
