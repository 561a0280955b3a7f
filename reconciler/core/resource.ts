import type { RegisteredKind } from '../drivers/kinds.js';
import type { Location } from './diagnostics.js';

// The primitive kinds a manifest expands into: one per driver in the registry.
export type ResourceKind = RegisteredKind;

/** A piece of desired host state, produced by expanding manifests. */
export interface Resource<S = unknown> {
  /** "kind/name", unique per host; for path resources the name is the path without its leading slash. */
  id: string;
  kind: ResourceKind;
  name: string;
  spec: S;
  /** Ids of resources that must be applied before this one. */
  dependsOn: string[];
  /** Where it was declared: file, line and pointer of the manifest part. */
  origin: Location;
  /** The project it belongs to, when expanded from a Project. */
  project?: string;
  /** Declared by a host-level manifest (the Host's spec.policy.hostLevelPaths): drivers may then adopt what exists. */
  hostLevel?: true;
  /** Where individual spec fields were written, when they came straight from a manifest field (e.g. owner). */
  fieldOrigins?: Record<string, Location>;
}

export function resourceId(kind: ResourceKind, name: string): string {
  return `${kind}/${name.replace(/^\//, '')}`;
}
