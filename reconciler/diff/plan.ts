import type { Logger } from 'pino';
import { plainCredentials } from '../core/credentials.js';
import { error, hasErrors, type Diagnostic } from '../core/diagnostics.js';
import { HostKitError } from '../core/errors.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import { loadFingerprintKey, Redactor, SecretResolver, storeFingerprintKey } from '../core/secrets.js';
import { readInventory, type Inventory } from '../apply/inventory.js';
import { drivers as defaultDrivers, PLANNED_DRIVERS } from '../drivers/registry.js';
import { createRunServices, DriverRuns } from '../drivers/run.js';
import { hasGuard, type AnyDriver, type DriverContext } from '../drivers/types.js';
import type { Host } from '../hosts/types.js';
import { expandForHost, hostSettings } from '../manifests/expand.js';
import type { HostManifest, Manifest } from '../manifests/types.js';
import { checkOps, PENDING_ACTIONS, summarize, type Change, type Plan } from './model.js';
import { KIND_RANK, orderChanges } from './order.js';

/**
 * Which host a run plans and how it reaches it: what the callers of the engine
 * (commands, the agent, tests) choose. It is passed on whole, from reconcileHost
 * (engine.ts ReconcileInput extends it) to planHost: an option is added here once.
 */
export interface PlanTarget {
  hostName: string;
  host: Host;
  log: Logger;
  /** How the repository is named in plans (e.g. the --repo argument). */
  repository: string;
  commit?: string;
  /** Environment the `env` secret references read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Override the state directory from the Host manifest (tests, --state-dir). */
  stateDirectory?: string;
  drivers?: ReadonlyMap<ResourceKind, AnyDriver>;
  redactor?: Redactor;
}

export interface PlanOptions extends PlanTarget {
  manifests: readonly Manifest[];
  mode: 'plan' | 'apply';
  /** Keep a new fingerprint key on the host once the plan holds no error (default: in apply mode; also a plan saved to be applied later). */
  keepFingerprintKey?: boolean;
}

/** What a resource's driver desired and observed (undefined: absent), as its plan() was given them. */
export interface ResourceState {
  desired: unknown;
  observed: unknown;
}

export interface PlannedHost {
  plan: Plan;
  resources: Resource[];
  inventory: Inventory;
  /** The run's context; whoever ends the run calls `context.run.close()` (engine.ts reconcileHost). */
  context: DriverContext;
  /** Each driver's state for this run, the same for apply, settle, verify and rollback as for desire and observe. */
  runs: DriverRuns;
  drivers: ReadonlyMap<ResourceKind, AnyDriver>;
  redactor: Redactor;
  /** By resource id (orphans and kinds without a driver included): a saved plan fingerprints them (diff/saved-plan.ts). */
  states: ReadonlyMap<string, ResourceState>;
}

// expand -> select -> observe -> plan for one host. Reads the host, never changes it.
// If it throws, what the run opened (a PostgreSQL pool) is closed again.
export async function planHost(options: PlanOptions): Promise<PlannedHost> {
  const hostManifest = options.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host' && m.name === options.hostName);
  if (!hostManifest) {
    const known = options.manifests.filter((m) => m.kind === 'Host').map((m) => m.name);
    throw new HostKitError(
      'UNKNOWN_HOST',
      `No Host manifest named "${options.hostName}" in ${options.repository}; known hosts: ${known.join(', ') || '(none)'}. Pass --host NAME.`,
      {
        data: { host: options.hostName, known },
      },
    );
  }
  const settings = hostSettings(hostManifest);
  const stateDirectory = options.stateDirectory ?? settings.stateDirectory;
  const expansion = expandForHost(options.manifests, settings);
  const registry = options.drivers ?? defaultDrivers;
  const redactor = options.redactor ?? new Redactor();
  // A plain environment value that looks like a credential is scrubbed from everything this run prints, as a secret is.
  for (const r of expansion.resources)
    for (const value of plainCredentials((r.spec as { environment?: Record<string, string> }).environment)) redactor.add(value);
  const run = createRunServices({ host: options.host, stateDirectory, log: options.log });
  // Read together, with the users and groups every plan reads (over SSH, one round trip for all).
  run.users.get().catch(() => undefined); // a failure is the first reader's to report
  const [fingerprintKey, inventory] = await Promise.all([
    loadFingerprintKey(options.host, stateDirectory, options.mode),
    readInventory(options.host, stateDirectory, options.hostName),
  ]);
  const context: DriverContext = {
    run,
    host: options.host,
    hostManifest: hostManifest.value,
    stateDirectory,
    mode: options.mode,
    log: options.log,
    fileDigests: new Map(),
    digestKey: fingerprintKey.key,
    inventory,
    written: new Map(),
    warnings: [],
    secrets: new SecretResolver({
      host: options.host,
      redactor,
      fingerprintKey: fingerprintKey.key,
      ...(options.env ? { env: options.env } : {}),
      ...(hostManifest.value.spec?.age ? { ageIdentityFile: hostManifest.value.spec.age.identityFile } : {}),
    }),
  };
  const runs = new DriverRuns(context);
  const desiredIds = new Set(expansion.resources.map((r) => r.id));
  const orphans = Object.values(inventory.resources).filter((r) => !desiredIds.has(r.id)) as Resource[];
  try {
    const states = new Map<string, ResourceState>();
    const changes = await planChanges(expansion.resources, orphans, registry, context, runs, states);
    const diagnostics: Diagnostic[] = [...expansion.diagnostics];
    for (const c of changes) diagnostics.push(...c.diagnostics);
    const plan: Plan = {
      host: options.hostName,
      repository: options.repository,
      ...(options.commit ? { commit: options.commit } : {}),
      changes,
      diagnostics,
      summary: summarize(changes),
    };
    // Kept only by an apply about to run: a dry run, or a plan with errors, writes nothing.
    if ((options.keepFingerprintKey ?? options.mode === 'apply') && !fingerprintKey.stored && !hasErrors(diagnostics))
      await storeFingerprintKey(options.host, stateDirectory, fingerprintKey.key);
    return { plan, resources: expansion.resources, inventory, context, runs, drivers: registry, redactor, states };
  } catch (cause) {
    await context.run.close().catch(() => undefined);
    throw cause;
  }
}

// Each kind's driver desires, observes and plans its resources (and the orphans of its kind), in apply order.
async function planChanges(
  resources: readonly Resource[],
  orphans: readonly Resource[],
  registry: ReadonlyMap<ResourceKind, AnyDriver>,
  context: DriverContext,
  runs: DriverRuns,
  states: Map<string, ResourceState>,
): Promise<Change[]> {
  const byKind = new Map<ResourceKind, { desired: Resource[]; orphans: Resource[] }>();
  for (const r of resources) group(byKind, r.kind).desired.push(r);
  for (const r of orphans) group(byKind, r.kind).orphans.push(r);

  // Desired state is resolved in kind order (files before the units that embed
  // their digests); observation runs concurrently: each driver is batched and
  // drivers touch disjoint state.
  const kinds = [...byKind.keys()].sort((a, b) => KIND_RANK[a] - KIND_RANK[b]);
  const wantedByKind = new Map<ResourceKind, Map<string, { desired: unknown; diagnostics: Diagnostic[] }>>();
  const observing = new Map(
    kinds.map((kind) => {
      const driver = registry.get(kind);
      const entry = byKind.get(kind)!;
      const pending = driver ? driver.observe([...entry.desired, ...entry.orphans], context, runs.of(driver)) : Promise.resolve(new Map());
      pending.catch(() => undefined); // awaited below; this only keeps an early rejection from counting as unhandled
      return [kind, pending] as const;
    }),
  );
  for (const kind of kinds) {
    const driver = registry.get(kind);
    if (driver) wantedByKind.set(kind, await driver.desire(byKind.get(kind)!.desired, context, runs.of(driver)));
  }
  const perKind = await Promise.all(
    kinds.map(async (kind) => {
      const { desired, orphans: gone } = byKind.get(kind)!;
      const driver = registry.get(kind);
      if (!driver) {
        for (const r of desired) states.set(r.id, { desired: undefined, observed: undefined });
        return desired.map((r) => unsupported(r));
      }
      const started = performance.now();
      const observed = await observing.get(kind)!;
      const wanted = wantedByKind.get(kind)!;
      context.log.debug({ kind, resources: desired.length + gone.length, ms: Math.round(performance.now() - started) }, 'observed');
      const changes: Change[] = [];
      for (const r of desired) {
        const w = wanted.get(r.id);
        states.set(r.id, { desired: w?.desired, observed: observed.get(r.id) });
        const change = checkOps(driver.plan({ resource: r, desired: w?.desired, observed: observed.get(r.id), orphan: false }));
        change.diagnostics.push(...(w?.diagnostics ?? []));
        changes.push(change);
      }
      for (const r of gone) {
        states.set(r.id, { desired: undefined, observed: observed.get(r.id) });
        const change = checkOps(driver.plan({ resource: r, desired: undefined, observed: observed.get(r.id), orphan: true }));
        if (driver.orphans === 'report' && change.action === 'delete') {
          // Kept and reported, and kept in the inventory so it is reported again next time.
          change.action = 'noop';
          change.ops = [];
          change.orphan = true;
        }
        changes.push(change);
      }
      return changes;
    }),
  );
  return orderChanges(guarded(perKind.flat(), registry));
}

// The guard pass: a driver that guards other changes (drivers/types.ts WithGuard) sees every pending change.
function guarded(changes: Change[], registry: ReadonlyMap<ResourceKind, AnyDriver>): Change[] {
  const guardOf = (c: Change) => {
    const driver = registry.get(c.kind);
    return driver && hasGuard(driver) ? driver : undefined;
  };
  if (!changes.some((c) => guardOf(c) !== undefined)) return changes;
  const pending = new Map(changes.filter((c) => PENDING_ACTIONS.includes(c.action)).map((c) => [c.id, c]));
  return changes.map((c) => {
    const driver = guardOf(c);
    return driver ? checkOps(driver.guard(c, pending)) : c;
  });
}

function group(map: Map<ResourceKind, { desired: Resource[]; orphans: Resource[] }>, kind: ResourceKind) {
  let entry = map.get(kind);
  if (!entry) {
    entry = { desired: [], orphans: [] };
    map.set(kind, entry);
  }
  return entry;
}

function unsupported(r: Resource): Change {
  return {
    id: r.id,
    kind: r.kind,
    action: 'unsupported',
    fields: [],
    ops: [],
    disruptive: false,
    reason: `not yet supported: ${PLANNED_DRIVERS[r.kind] ?? 'no driver'}`,
    origin: r.origin,
    ...(r.project ? { project: r.project } : {}),
    diagnostics: [],
    resource: r,
  };
}

export function assertApplicable(plan: Plan): void {
  if (hasErrors(plan.diagnostics)) {
    const first = plan.diagnostics.find((d) => d.severity === 'error') ?? error('plan has errors', '');
    throw new HostKitError('PLAN_HAS_ERRORS', `The plan for ${plan.host} has errors; nothing was applied. First: ${first.summary}: ${first.detail}`);
  }
}
