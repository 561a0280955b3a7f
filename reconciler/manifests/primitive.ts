// Small helpers that turn manifest fields into resource specs, shared by the
// Project expansion (expand.ts) and the driver folders' manifest.ts and project.ts. A leaf:
// it must not import the driver registry (a driver's manifest.ts imports it).
import type { Location } from '../core/diagnostics.js';
import { currentLink } from '../drivers/release/layout.js';
import type { Environment, ProjectManifest } from './types.js';

/** Where a Host's paths may be unless its spec.allowedRoots says otherwise. */
export const DEFAULT_ALLOWED_ROOTS = ['/srv', '/opt', '/var/lib', '/var/www', '/var/log', '/etc/hostkit'];

/** Every unit HostKit writes is named hk-NAME.service (or .timer). */
export const UNIT_PREFIX = 'hk-';

export const ENV_DIRECTORY = '/etc/hostkit/env';
/** The group nginx's workers read as (Debian): a static site's web root is readable by it. */
export const WEB_GROUP = 'www-data';

export function projectUser(project: ProjectManifest): string {
  return project.spec.user ?? project.metadata.name;
}

export function workingDirectory(project: ProjectManifest): string {
  return project.spec.service?.workingDirectory ?? `/srv/${project.metadata.name}`;
}

/**
 * What a static project's sites serve: `static.root`, else `public` in its working directory.
 * With a source, a relative `static.root` (default `public`) is inside the current release.
 */
export function webRoot(project: ProjectManifest): string {
  const root = project.spec.static?.root;
  if (project.spec.source && !root?.startsWith('/')) return `${currentLink(project.metadata.name)}/${root ?? 'public'}`;
  return root ?? `${workingDirectory(project)}/public`;
}

/** A PostgreSQL name for a manifest name (dashes are not allowed unquoted). */
export function pgName(name: string): string {
  return name.replace(/-/g, '_');
}

export function stringEnv(env: Environment | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = String(v);
  return out;
}

/** An octal mode as written ("0640"), or the fallback. */
export function parseMode(mode: string | undefined, fallback: number): number {
  return mode === undefined ? fallback : parseInt(mode, 8);
}

/** Owner, group and mode of a path primitive: root's by default, the group following an owner given alone. */
export function ownership(spec: { owner?: string; group?: string; mode?: string }, defaultMode: number) {
  const owner = spec.owner ?? 'root';
  return { owner, group: spec.group ?? (spec.owner ? owner : 'root'), mode: parseMode(spec.mode, defaultMode) };
}

/** Where owner and group were written, for "unknown user" diagnostics at the field. */
export function ownerOrigins(at: (pointer: string) => Location, spec: { owner?: string; group?: string }): Record<string, Location> {
  const out: Record<string, Location> = {};
  if (spec.owner) out.owner = at('/spec/owner');
  if (spec.group) out.group = at('/spec/group');
  else if (spec.owner) out.group = at('/spec/owner');
  return out;
}
