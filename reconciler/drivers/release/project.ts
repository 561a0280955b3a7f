// The release part of expanding a Project (manifests/expand.ts calls it after the
// account, directory and env file parts, before the units): a project with
// `spec.source` gets one `release/NAME` resource, and its units, lifecycle
// commands and static site run in or serve from /srv/NAME/current.
import { durationMs } from '../../core/duration.js';
import type { Location } from '../../core/diagnostics.js';
import type { ProjectManifest } from '../../manifests/types.js';
import { stringEnv, UNIT_PREFIX } from '../../manifests/primitive.js';
import type { AddOptions } from '../manifest-types.js';
import { currentLink } from './records.js';
import type { ReleaseSpec } from './spec.js';

export const DEFAULT_KEEP = 5;
/** A build step's time unless it says otherwise. */
export const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

/**
 * Where the project's units and commands run: /srv/NAME/current with a source (unless
 * spec.service.workingDirectory says otherwise), else `fallback`.
 */
export function runDirectory(project: ProjectManifest, fallback: string): string {
  if (!project.spec.source || project.spec.service?.workingDirectory) return fallback;
  return currentLink(project.metadata.name);
}

/** A static site's root with a source: a relative `static.root` (default `public`) inside the current release. */
export function releaseWebRoot(project: ProjectManifest): string | undefined {
  if (!project.spec.source) return undefined;
  const root = project.spec.static?.root ?? 'public';
  return root.startsWith('/') ? root : `${currentLink(project.metadata.name)}/${root}`;
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
