import { error, type Diagnostic } from '../../core/diagnostics.js';
import { HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import { changeBase, type Change } from '../../diff/model.js';
import type { Driver, DriverContext } from '../types.js';
import {
  aptGet,
  candidates,
  installArgument,
  listInstalled,
  provider,
  readMarker,
  sourcesDigest,
  staleness,
  unavailable,
  writeMarker,
  type InstalledSet,
} from './apt.js';
import { packageDefinition } from './definition.js';
import { packageRestore } from './restore.js';
import type { PackageSpec } from './spec.js';

export type { PackageSpec } from './spec.js';

export interface ObservedPackage {
  /** The installed package that makes it present (itself, one providing it, its versioned flavour). */
  providedBy?: { name: string; version: string };
  /** For a removal: the package itself is installed. */
  installed?: boolean;
  /** Checked at plan time, the lists being fresh: why apt cannot install it. */
  unavailable?: string;
}

/** What apply does: install the package (at a version), or purge it; every package of the run in one apt-get. */
export type PackageOp = { op: 'install'; package: string; version?: string } | { op: 'purge'; package: string };

/** Nothing: a restore keeps installed packages (reported), like accounts. */
export type PackageUndo = Record<string, never>;

/** One run's packages, so the first change applied installs every missing one at once. */
export interface PackageRun {
  /** Every desired resource (not the orphans: those are never installed again). */
  resources: Resource<PackageSpec>[];
  /** What dpkg listed at observe. */
  installed?: InstalledSet;
  /** What `apt-cache policy` said at plan time of the missing packages (the lists were fresh then). */
  known?: Map<string, string[]>;
  /** The run's one apt-get (its failure fails every package change of the run, without running it again). */
  done?: Promise<void>;
  /** The installed packages after it, for verify (one dpkg-query for all). */
  after?: Promise<InstalledSet>;
}

type PackageChange = Change<PackageSpec, ObservedPackage, PackageSpec, PackageOp>;

/** The inventory's mark, kept by every run after the one whose apt-get installed it: HostKit installed this package. */
export const INSTALLED_MARK = 'apt-get install';

const NOTHING: PackageUndo = {};

// Missing on the host (or, for a removal, still there): what the run's one apt-get is for.
function wanted(spec: PackageSpec, installed: InstalledSet): boolean {
  return spec.remove ? installed.has(spec.name) : provider(installed, spec.name, spec.version) === undefined;
}

function label(spec: PackageSpec): string {
  return spec.version === undefined ? spec.name : `${spec.name}=${spec.version}`;
}

function declaredAt(r: Resource<PackageSpec>): string {
  return `${r.origin.file}:${r.origin.line ?? 0} (${r.spec.neededBy.join(', ')})`;
}

/**
 * OS packages (apt/dpkg). Observe: one `dpkg-query` over all installed packages, no
 * network; a name is present when an installed package is it, provides it or is its
 * versioned flavour. The first change applied runs, for every package of the run,
 * `apt-get update` (only when the lists are stale or an apt source changed), one
 * `apt-cache policy` (a package apt does not know fails the run before anything is
 * installed) and one `apt-get install`. Packages rank before every other kind but the
 * apt sources, so a failure there leaves the rest of the host untouched. Installed
 * packages are kept by every restore, and when no manifest declares them (reported;
 * `remove: true` purges).
 */
export const packageDriver: Driver<PackageSpec, PackageSpec, ObservedPackage, PackageUndo, 'package', PackageRun, PackageOp> = {
  ...packageDefinition,

  createRun: () => ({ resources: [] }),

  // The desired state is the spec; what HostKit installed before stays marked in the inventory.
  async desire(resources, ctx, state) {
    state.resources = [...resources];
    for (const r of resources) {
      const mark = ctx.inventory.resources[r.id]?.written?.[INSTALLED_MARK];
      if (mark !== undefined) ctx.written.set(r.id, { ...ctx.written.get(r.id), [INSTALLED_MARK]: mark });
    }
    return new Map(resources.map((r) => [r.id, { desired: r.spec, diagnostics: [] as Diagnostic[] }]));
  },

  // One dpkg-query; when something is missing and the lists are fresh, one apt-cache policy (local lists, no network).
  async observe(resources, ctx, state) {
    const installed = await listInstalled(ctx.host);
    state.installed = installed;
    const missing = resources.filter((r) => !r.spec.remove && wanted(r.spec, installed));
    const known = missing.length > 0 ? await planTimeCandidates(ctx, missing) : undefined;
    if (known) state.known = known;
    const out = new Map<string, ObservedPackage>();
    for (const r of resources) {
      const found = provider(installed, r.spec.name, r.spec.version);
      const o: ObservedPackage = {
        ...(found ? { providedBy: found } : {}),
        ...(r.spec.remove ? { installed: installed.has(r.spec.name) } : {}),
      };
      const why = known && !found && !r.spec.remove ? unavailable(known, r.spec.name, r.spec.version) : undefined;
      if (why) o.unavailable = why;
      out.set(r.id, o);
    }
    return out;
  },

  plan({ resource, desired, observed, orphan }): PackageChange {
    const base = { ...changeBase(resource), disruptive: false, fields: [] };
    const spec = resource.spec;
    const seen = observed ? { observed } : {};
    if (orphan || !desired) {
      if (!observed?.providedBy) return { ...base, action: 'noop', ops: [], reason: 'no manifest declares it any more; not installed', ...seen };
      // An orphan is its inventory entry: the mark says whether HostKit's apt-get installed it.
      const mine = (resource as Resource<PackageSpec> & { written?: Record<string, string> }).written?.[INSTALLED_MARK] !== undefined;
      return {
        ...base,
        action: 'delete',
        ops: [{ op: 'purge', package: spec.name }],
        reason: `no manifest declares it any more; ${mine ? 'HostKit installed it, and it' : 'it'} stays installed (declare it with remove: true to purge it)`,
        ...seen,
      };
    }
    if (desired.remove) {
      if (!observed?.installed) return { ...base, action: 'noop', ops: [], desired, ...seen };
      return { ...base, action: 'delete', ops: [{ op: 'purge', package: spec.name }], desired, reason: 'remove: true purges it', ...seen };
    }
    if (observed?.providedBy) {
      const by = observed.providedBy.name === spec.name ? '' : ` (provided by ${observed.providedBy.name})`;
      return { ...base, action: 'noop', ops: [], desired, ...seen, ...(by ? { reason: `installed${by}` } : {}) };
    }
    const change: PackageChange = {
      ...base,
      action: 'create',
      ops: [{ op: 'install', package: spec.name, ...(spec.version ? { version: spec.version } : {}) }],
      fields: [{ field: '/installed', before: null, after: label(spec) }],
      desired,
      reason: `needed by ${spec.neededBy.join(', ')}`,
      ...seen,
    };
    if (observed?.unavailable) {
      change.diagnostics.push(
        error('package not found', `${label(spec)}, declared at ${declaredAt(resource)}, cannot be installed: ${observed.unavailable}`, resource.origin),
      );
    }
    return change;
  },

  /**
   * The first change of the run installs (and purges) every package of the run in one
   * apt-get; the others find theirs done. If it throws before apt-get ran (a package no
   * source has, `apt-get update` failing), nothing was installed; if dpkg failed part-way,
   * what it unpacked stays (a restore never purges). Either way nothing of a later kind has
   * run yet: packages rank before everything but the apt sources.
   */
  async apply(change, ctx, state) {
    state.done ??= installAll(ctx, state);
    await state.done;
    if (change.action === 'create') ctx.written.set(change.id, { ...ctx.written.get(change.id), [INSTALLED_MARK]: new Date().toISOString() });
    return NOTHING;
  },

  // One dpkg-query for all of the run's packages: each is (or, for a removal, is no longer) installed.
  async verify(change, ctx, state) {
    state.after ??= listInstalled(ctx.host);
    const installed = await state.after;
    const spec = change.resource!.spec;
    if (!wanted(spec, installed)) return [];
    const what = spec.remove
      ? `${spec.name} is still installed after apt-get purged it`
      : `no installed package is or provides ${label(spec)} after apt-get installed it`;
    return [error('verification failed', what, change.origin)];
  },

  restore: packageRestore,
};

// At plan time only when the lists are fresh and no apt source is declared (one could add the package once written).
async function planTimeCandidates(ctx: DriverContext, missing: readonly Resource<PackageSpec>[]): Promise<Map<string, string[]> | undefined> {
  if ((ctx.hostManifest.spec?.aptSources ?? []).length > 0) return undefined;
  if (staleness(await readMarker(ctx.host, ctx.stateDirectory), await sourcesDigest(ctx.host), Date.now()) !== undefined) return undefined;
  return candidates(ctx.host, [...new Set(missing.map((r) => r.spec.name))]);
}

// The run's one apt-get: update when stale or a source changed, refuse what apt does not know, then install and purge together.
async function installAll(ctx: DriverContext, state: PackageRun): Promise<void> {
  const installed = state.installed ?? (await listInstalled(ctx.host));
  const todo = state.resources.filter((r) => wanted(r.spec, installed));
  if (todo.length === 0) return;
  const adding = todo.filter((r) => !r.spec.remove);
  if (adding.length > 0) {
    const digest = await sourcesDigest(ctx.host);
    const changed = ctx.run.apt.changes;
    const stale =
      changed.length > 0 ? `${changed.join(', ')} changed in this run` : staleness(await readMarker(ctx.host, ctx.stateDirectory), digest, Date.now());
    let warned: string[] = [];
    if (stale !== undefined) {
      ctx.log.info({ reason: stale }, 'apt-get update');
      warned = await aptGet(ctx.host, 'update');
      await writeMarker(ctx.host, ctx.stateDirectory, { updatedAt: Date.now(), sources: digest });
    }
    // The lists are those plan read (no update since): its answer stands.
    const names = [...new Set(adding.map((r) => r.spec.name))];
    const known = stale === undefined && state.known && names.every((n) => state.known!.has(n)) ? state.known : await candidates(ctx.host, names);
    const refused = adding.flatMap((r) => {
      const why = unavailable(known, r.spec.name, r.spec.version);
      return why ? [{ r, why }] : [];
    });
    if (refused.length > 0) {
      throw new HostKitError(
        'PACKAGE_NOT_FOUND',
        `${refused.map(({ r, why }) => `package ${label(r.spec)}, declared at ${declaredAt(r)}: ${why}`).join('; ')}; nothing was installed${
          warned.length > 0 ? ` (apt-get update said: ${warned.slice(0, 3).join(' ')})` : ''
        }`,
        { data: { packages: refused.map(({ r }) => r.spec.name), resourceId: refused[0]!.r.id } },
      );
    }
  }
  const args = todo.map((r) => installArgument(r.spec.name, r.spec.version, r.spec.remove === true));
  ctx.log.info({ packages: args }, 'apt-get install');
  await aptGet(ctx.host, 'install', todo.some((r) => r.spec.remove) ? ['--purge', ...args] : args);
}
