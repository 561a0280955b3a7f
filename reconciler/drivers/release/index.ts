// The application's own code: one `release/NAME` per project with `spec.source`.
// Each release is a directory /srv/NAME/releases/ID holding one commit (or archive)
// and what its build steps made, marked complete last (.hostkit-release.json);
// /srv/NAME/current is a relative symlink to the release in service, switched
// atomically. A release is built once per (commit, build digest): a later run
// switching back to it reuses it. See README.md in this folder.
import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError } from '../../core/errors.js';
import { changeBase, findOp, type Change, type FieldChange } from '../../diff/model.js';
import { releaseHold, safetyStatus, type HoldEntry } from '../../apply/quarantine.js';
import { openRunId } from '../../apply/journal.js';
import type { Host } from '../../hosts/types.js';
import { fileDigest } from '../shared/inputs.js';
import type { Driver, DriverContext } from '../types.js';
import { buildDigest, buildRelease, contentOf, gitSource, ownerOf, removeTree, sourceAccess, type ReleaseContent } from './build.js';
import { releaseDefinition } from './definition.js';
import { holdBinds } from './holds.js';
import {
  appendSwitch,
  currentLink,
  currentTarget,
  MARKER,
  previousRelease,
  readReleases,
  releaseDir,
  releasesDir,
  sharedDir,
  type ReleaseMarker,
  type Switch,
} from './records.js';
import { releaseRestore } from './restore.js';
import { cachedCommit, commitSubjects, isCommitId, resolveRefs } from './source/index.js';
import type { ReleaseSpec } from './spec.js';

export { buildDigest } from './build.js';
export { historyPath, MARKER, newReleaseId as releaseId, type ReleaseMarker } from './records.js';

export interface DesiredRelease {
  /** The commit to serve (git); undefined in a plan that may not contact the source and has no cached answer, or when `deferred`. */
  commit?: string;
  archiveSha256?: string;
  /** The ref as written (a plan shows it when it cannot resolve it). */
  ref?: string;
  /** sha256 of the build steps and shared paths: a new one builds a new release. */
  buildDigest: string;
  /** Subjects of the commits between the current release and the target, newest first (from the cache only). */
  subjects: string[];
  /** The release a hold keeps the project on (`hostkit rollback --project P --to ID`), instead of what the source says. */
  held?: string;
  /** A hold the release spec no longer matches (a commit changed it): the apply ends it. */
  staleHold?: string;
  /** The ref is resolved by the apply: the project's user, which fetches it, is made earlier in the same run. */
  deferred?: true;
}

export interface ObservedRelease {
  /** The release ROOT/current points to (its ID), if any. */
  current?: string;
  /** Every directory in ROOT/releases, sorted by ID (oldest first); `marker` absent for an interrupted build. */
  releases: { id: string; marker?: ReleaseMarker }[];
  /** Switches to releases, newest last (STATE/releases/NAME.json). */
  history: Switch[];
}

/** What one run saw and did, for desire (the current release) and verify (the release switched to). */
export interface ReleaseRun {
  observing?: Promise<Map<string, ObservedRelease>>;
  switched: Map<string, string>;
}

/**
 * What an apply does, in this order. `resolve`: the ref, as the project's user (its account
 * is made earlier in the run); `build`: the release of the target content (reusing a complete
 * one only when `resolve` found a commit already built); `switch`: `current` to `release`, or
 * to the release `build` made; `remove`: interrupted builds and releases past `keep`;
 * `end-hold`: the hold its release spec no longer matches.
 */
export type ReleaseOp =
  | { op: 'resolve'; ref: string }
  | { op: 'build'; steps: number }
  | { op: 'switch'; release?: string }
  | { op: 'remove'; releases: string[] }
  | { op: 'end-hold'; release: string };

type ReleaseChange = Change<DesiredRelease, ObservedRelease, ReleaseSpec, ReleaseOp>;

const short = (commit: string | undefined) => (commit ? commit.slice(0, 7) : '(none)');

/** The complete release built from `desired`'s content with its build digest (the newest, if several). */
export function matchingRelease(desired: ReleaseContent, observed: ObservedRelease | undefined): string | undefined {
  const content = contentOf(desired);
  if (!content || !observed) return undefined;
  const same = observed.releases.filter((r) => r.marker && contentOf(r.marker) === content && r.marker.buildDigest === desired.buildDigest);
  // The current one first: re-applying never switches between two equal builds.
  return (same.find((r) => r.id === observed.current) ?? same.at(-1))?.id;
}

/**
 * What to remove: interrupted builds (no marker, not current), then the oldest
 * complete releases past `keep`, never the current one nor the one before it.
 */
export function releasesToRemove(observed: ObservedRelease, keep: number): string[] {
  const unfinished = observed.releases.filter((r) => !r.marker && r.id !== observed.current).map((r) => r.id);
  const complete = observed.releases.filter((r) => r.marker || r.id === observed.current).map((r) => r.id);
  const protectedIds = new Set([observed.current, previousRelease(observed.history, observed.current)]);
  const removable = complete.filter((id) => !protectedIds.has(id));
  const excess = Math.max(0, complete.length - keep);
  return [...unfinished, ...removable.slice(0, excess)];
}

// Everything about one project's releases from file reads alone (no process): the link, the directory, the markers, the history.
async function observeOne(host: Host, project: string, stateDirectory: string): Promise<ObservedRelease | undefined> {
  const found = await readReleases(host, stateDirectory, project);
  if (found.current === undefined && found.releases.length === 0) return undefined;
  return {
    ...(found.current !== undefined ? { current: found.current } : {}),
    releases: found.releases.map((r) => ({ id: r.id, ...(r.marker ? { marker: r.marker } : {}) })).reverse(),
    history: found.history,
  };
}

// What a hold means for one project's desire: the held release, or a hold that no longer binds.
function holdFor(
  r: { spec: ReleaseSpec; origin: Change['origin'] },
  hold: HoldEntry | undefined,
  seen: ObservedRelease | undefined,
): { held?: ReleaseMarker; stale?: string; diagnostics: Diagnostic[] } {
  if (!hold) return { diagnostics: [] };
  const marker = seen?.releases.find((x) => x.id === hold.release)?.marker;
  if (holdBinds(hold, r.spec) && marker) return { held: marker, diagnostics: [] };
  const diagnostics = holdBinds(hold, r.spec)
    ? [
        warning(
          'held release missing',
          `project ${r.spec.project} is held on release ${hold.release}, which is not a complete release on the host: the hold ends`,
          r.origin,
        ),
      ]
    : [];
  return { stale: hold.release, diagnostics };
}

/**
 * Releases (kind `release`): see README.md in this folder. Rank 4.5: after the
 * account, directory and env file, before lifecycle commands and units, whose
 * desire reads the release's input digest.
 */
export const releaseDriver: Driver<ReleaseSpec, DesiredRelease, ObservedRelease, void, 'release', ReleaseRun, ReleaseOp> = {
  ...releaseDefinition,
  restore: releaseRestore,

  createRun: () => ({ switched: new Map() }),

  // The target commit: pinned refs as written; others resolved with one `git ls-remote` per URL
  // in an apply, and only from the cache in a plan (a pull request's plan never contacts a source).
  // A project held by `hostkit rollback --to` desires its held release and contacts no source.
  async desire(resources, ctx, state) {
    const out = new Map<string, { desired: DesiredRelease; diagnostics: Diagnostic[] }>();
    const observed = await state.observing?.catch(() => undefined);
    const holds = new Map((await safetyStatus(ctx.host, ctx.stateDirectory)).held.map((h) => [h.project, h]));
    const held = new Map(resources.map((r) => [r.id, holdFor(r, holds.get(r.spec.project), observed?.get(r.id))]));
    const remote = ctx.mode === 'apply' ? resources.filter((r) => !held.get(r.id)!.held && 'git' in r.spec.source && !isCommitId(r.spec.source.git.ref)) : [];
    const resolved =
      remote.length > 0
        ? await resolveRefs(await Promise.all(remote.map(async (r) => ({ access: await sourceAccess(r.spec, ctx, true), source: gitSource(r.spec)! }))))
        : new Map<string, { commit: string } | { error: HostKitError }>();
    for (const r of resources) {
      const spec = r.spec;
      const hold = held.get(r.id)!;
      const diagnostics: Diagnostic[] = [...hold.diagnostics];
      const desired: DesiredRelease = { buildDigest: buildDigest(spec), subjects: [], ...(hold.stale ? { staleHold: hold.stale } : {}) };
      const git = gitSource(spec);
      if (hold.held) {
        desired.held = hold.held.id;
        desired.buildDigest = hold.held.buildDigest;
        if (hold.held.commit) desired.commit = hold.held.commit;
        if (hold.held.archiveSha256) desired.archiveSha256 = hold.held.archiveSha256;
      } else if (!git && 'archive' in spec.source) desired.archiveSha256 = spec.source.archive.sha256;
      else if (git) {
        desired.ref = git.ref;
        if (isCommitId(git.ref)) desired.commit = git.ref;
        else if (ctx.mode === 'plan') {
          const cached = await cachedCommit(await sourceAccess(spec, ctx, false), git);
          if (cached) desired.commit = cached;
        } else {
          const got = resolved.get(spec.project);
          if (got && 'commit' in got) desired.commit = got.commit;
          // Its account is made by this run, before the release applies: the apply resolves the ref as that user.
          else if (got && got.error.code === 'UNKNOWN_USER') desired.deferred = true;
          else
            diagnostics.push(
              error(
                'source not resolved',
                ctx.secrets.scrub(got ? errorMessage(got.error) : `project ${spec.project}: ref ${git.ref} was not resolved`),
                r.origin,
              ),
            );
        }
      }
      const seen = observed?.get(r.id);
      const current = seen?.releases.find((x) => x.id === seen.current)?.marker;
      if (git && desired.commit && current?.commit && current.commit !== desired.commit)
        desired.subjects = await commitSubjects(await sourceAccess(spec, ctx, false), current.commit, desired.commit, 20).catch(() => []);
      // The units' input: the content they will run. Unresolved (a plan), it is the current one's, so nothing restarts in the plan.
      const content = contentOf(desired)
        ? `${contentOf(desired)}:${desired.buildDigest}`
        : current
          ? `${contentOf(current)}:${current.buildDigest}`
          : `unresolved:${desired.ref ?? ''}`;
      ctx.fileDigests.set(currentLink(spec.project), fileDigest(ctx, `release:${content}`));
      out.set(r.id, { desired, diagnostics });
    }
    return out;
  },

  // File reads only (readlink, readdir, the markers, the history): no process, no network.
  observe(resources, ctx, state) {
    const observing = (async () => {
      const found = await Promise.all(resources.map((r) => observeOne(ctx.host, r.spec.project, ctx.stateDirectory)));
      const out = new Map<string, ObservedRelease>();
      resources.forEach((r, i) => {
        if (found[i]) out.set(r.id, found[i]!);
      });
      return out;
    })();
    state.observing = observing;
    return observing;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = changeBase(resource);
    if (orphan || !desired)
      return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'no manifest declares it any more: its releases are kept' };
    const spec = resource.spec;
    const current = observed?.releases.find((r) => r.id === observed.current);
    const target = desired.held ?? matchingRelease(desired, observed);
    const fields: FieldChange[] = [];
    const ops: ReleaseOp[] = [];
    const content = contentOf(desired);
    let reason: string | undefined;
    if (!content) {
      // A plan that may not ask the source, or an apply that resolves the ref itself: the ref as written.
      if (!current?.marker) {
        fields.push({ field: '/ref', after: `${desired.ref} (resolved when applied)` });
        reason = `(none) -> ${desired.ref}`;
        ops.push({ op: 'resolve', ref: desired.ref ?? '' }, { op: 'build', steps: spec.build.length }, { op: 'switch' });
      }
    } else if (!current || current.id !== target || !current.marker) {
      const before = current?.marker ? contentOf(current.marker) : undefined;
      fields.push({ field: desired.commit ? '/commit' : '/archiveSha256', ...(before ? { before } : {}), after: content });
      if (desired.subjects.length > 0) fields.push({ field: '/commits', after: desired.subjects });
      fields.push({ field: '/release', ...(current ? { before: current.id } : {}), after: target ?? 'a new release' });
      if (!target && spec.build.length > 0) fields.push({ field: '/build', after: spec.build.map((b) => b.command.join(' ')) });
      if (current && spec.restarts.length > 0) fields.push({ field: '/restarts', after: spec.restarts });
      reason = `${short(before)} -> ${short(content)}${desired.held ? ' (held by rollback --to)' : ''}`;
      ops.push(...(target ? [] : [{ op: 'build' as const, steps: spec.build.length }]), { op: 'switch', ...(target ? { release: target } : {}) });
    }
    const switching = ops.length > 0;
    const removed = observed ? releasesToRemove(switchedView(observed, switching ? (target ?? '(new)') : observed.current), spec.keep) : [];
    if (removed.length > 0) {
      fields.push({ field: '/removed', after: removed });
      ops.push({ op: 'remove', releases: removed });
    }
    if (desired.staleHold) {
      fields.push({ field: '/hold', before: desired.staleHold, after: 'ended: the release spec changed' });
      ops.push({ op: 'end-hold', release: desired.staleHold });
    }
    const action = ops.length === 0 ? 'noop' : !observed ? 'create' : 'update';
    return {
      ...base,
      action,
      fields,
      ops,
      disruptive: switching && current !== undefined,
      ...(reason ? { reason } : {}),
      desired,
      ...(observed ? { observed } : {}),
    } as ReleaseChange;
  },

  // Runs the change's operations. If it throws before the switch, `current` is as it was (a
  // half-built release is removed, or left without its marker for the next apply to remove).
  // The switch is one rename; the run's journal holds where `current` pointed before (restore.ts).
  async apply(change, ctx, state) {
    const spec = change.resource!.spec;
    let content: ReleaseContent = change.desired!;
    let built: string | undefined;
    for (const op of change.ops) {
      switch (op.op) {
        case 'resolve':
          content = { ...content, commit: await resolveNow(spec, ctx) };
          break;
        case 'build': {
          const owner = await ownerOf(ctx.host, spec);
          for (const dir of [releasesDir(spec.project), sharedDir(spec.project)]) {
            if (!(await ctx.host.stat(dir))) await ctx.host.mkdir(dir, { ...owner, mode: spec.webReadable ? 0o755 : 0o750 });
          }
          const reuse = findOp(change, 'resolve') ? matchingRelease(content, await observeOne(ctx.host, spec.project, ctx.stateDirectory)) : undefined;
          built = reuse ?? (await buildRelease(spec, content, ctx));
          break;
        }
        case 'switch': {
          const id = op.release ?? built!;
          const make = async () => {
            await ctx.host.symlink(currentTarget(id), currentLink(spec.project));
            const run = await openRunId(ctx.host, ctx.stateDirectory);
            await appendSwitch(ctx.host, ctx.stateDirectory, spec.project, { id, at: new Date().toISOString(), ...(run ? { run } : {}) });
          };
          state.switched.set(change.id, id);
          // blue-green: the deploy starts its new instance in this release and switches `current` with nginx (settle does it otherwise).
          if (spec.switchWithNginx)
            ctx.run.switches.defer(spec.project, { release: id, directory: releaseDir(spec.project, id), link: currentLink(spec.project) }, make);
          else await make();
          break;
        }
        case 'remove': {
          // Never the release just switched to, whatever the plan saw (a kill between plan and apply).
          const keep = new Set([state.switched.get(change.id), (await observeOne(ctx.host, spec.project, ctx.stateDirectory))?.current]);
          for (const id of op.releases.filter((r) => !keep.has(r))) await removeTree(ctx.host, releaseDir(spec.project, id));
          break;
        }
        case 'end-hold':
          await releaseHold(ctx.host, ctx.stateDirectory, spec.project);
          break;
      }
    }
  },

  // A switch deferred to a blue-green deploy that did not make it (its deploy had nothing to do) is made here, after every change applied.
  async settle(items, ctx) {
    for (const item of items) await ctx.run.switches.make(item.change.resource!.spec.project);
  },

  async verify(change, ctx, state) {
    const id = state.switched.get(change.id);
    if (!id) return [];
    const spec = change.resource!.spec;
    const [link, marker] = await Promise.all([ctx.host.readlink(currentLink(spec.project)), ctx.host.readFile(`${releaseDir(spec.project, id)}/${MARKER}`)]);
    if (link === currentTarget(id) && marker) return [];
    return [error('release not current', `${currentLink(spec.project)} points to ${link ?? '(nothing)'}, not the complete release ${id}`, change.origin)];
  },
};

// A ref the desire could not resolve (the project's user did not exist yet), resolved now as that user.
async function resolveNow(spec: ReleaseSpec, ctx: DriverContext): Promise<string> {
  const got = (await resolveRefs([{ access: await sourceAccess(spec, ctx, true), source: gitSource(spec)! }])).get(spec.project);
  if (got && 'commit' in got) return got.commit;
  throw got?.error ?? new HostKitError('SOURCE_REF_UNKNOWN', `project ${spec.project}: the ref was not resolved`, { data: { project: spec.project } });
}

// The releases as they will be once `current` points to `id` (prune protects the new current and the one before it).
function switchedView(observed: ObservedRelease, id: string | undefined): ObservedRelease {
  if (id === undefined || id === observed.current) return observed;
  const history = observed.current ? [...observed.history, { id: observed.current, at: '' }, { id, at: '' }] : observed.history;
  const releases = observed.releases.some((r) => r.id === id) ? observed.releases : [...observed.releases, { id, marker: {} as ReleaseMarker }];
  return { current: id, releases, history };
}
