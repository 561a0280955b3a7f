// The release part of expanding a Project (manifests/expand.ts calls it after the
// account, directory and env file parts, before the units): a project with
// `spec.source` gets one `release/NAME` resource, and its units, lifecycle
// commands and static site run in or serve from ROOT/current.
import { durationMs } from '../../core/duration.js';
import type { Location } from '../../core/diagnostics.js';
import type { ProjectManifest } from '../../manifests/types.js';
import { stringEnv, UNIT_PREFIX } from '../../manifests/primitive.js';
import type { AddOptions } from '../manifest-types.js';
import type { ReleaseSpec } from './spec.js';

export const DEFAULT_KEEP = 5;
/** A build step's time unless it says otherwise. */
export const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

/** Where a project's releases live under its directory ROOT. */
export const releasesDirectory = (root: string) => `${root}/releases`;
export const sharedDirectory = (root: string) => `${root}/shared`;
/** The link to the release in service: what units run in and take as an input. */
export const currentPath = (root: string) => `${root}/current`;

/** The project's directory when it has a source: /srv/NAME (a release's files never go elsewhere). */
export function projectRoot(project: ProjectManifest): string {
  return `/srv/${project.metadata.name}`;
}

/**
 * Where the project's units and commands run: ROOT/current with a source (unless
 * spec.service.workingDirectory says otherwise), else `fallback`.
 */
export function runDirectory(project: ProjectManifest, fallback: string): string {
  if (!project.spec.source || project.spec.service?.workingDirectory) return fallback;
  return currentPath(projectRoot(project));
}

/** A static site's root with a source: a relative `static.root` (default `public`) inside the current release. */
export function releaseWebRoot(project: ProjectManifest): string | undefined {
  if (!project.spec.source) return undefined;
  const root = project.spec.static?.root ?? 'public';
  return root.startsWith('/') ? root : `${currentPath(projectRoot(project))}/${root}`;
}

/** What the release part may do while a Project expands (manifests/expand.ts). */
export interface ReleaseExpansion {
  add(spec: ReleaseSpec, origin: Location, options: AddOptions): string;
  at(pointer: string): Location;
}

/**
 * The project's `release/NAME`, after its account, directory and env file
 * (`dependsOn`); undefined without a source.
 */
export function expandRelease(
  project: ProjectManifest,
  x: ReleaseExpansion,
  context: { user: string; dependsOn: string[]; isolation: ReleaseSpec['isolation']; webReadable: boolean },
): string | undefined {
  const spec = project.spec;
  if (!spec.source) return undefined;
  const release: ReleaseSpec = {
    project: project.metadata.name,
    user: context.user,
    group: context.user,
    root: projectRoot(project),
    source: spec.source,
    build: (spec.build ?? []).map((b) => ({
      command: b.command,
      environment: stringEnv(b.environment),
      timeoutMs: b.timeout ? durationMs(b.timeout) : BUILD_TIMEOUT_MS,
    })),
    keep: spec.releases?.keep ?? DEFAULT_KEEP,
    shared: spec.shared ?? [],
    isolation: context.isolation,
    webReadable: context.webReadable,
    restarts: [
      ...(spec.service?.command ? [`${UNIT_PREFIX}${project.metadata.name}.service`] : []),
      ...(spec.workers ?? []).map((w) => `${UNIT_PREFIX}${project.metadata.name}-${w.name}.service`),
    ],
  };
  return x.add(release, x.at('/spec/source'), { dependsOn: context.dependsOn });
}
