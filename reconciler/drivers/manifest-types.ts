// What a driver folder declares about the manifest kinds it expands (Account,
// Site, Sysctl, ...): their schema, their spec type, how one manifest becomes
// resources, and what a project may not declare with them. The engine's
// manifests/ code dispatches through the registry to these; it names no kind.
import type { Diagnostic, Location } from '../core/diagnostics.js';
import type { ResourceKind } from '../core/resource.js';
import type { LoadedDocument } from '../manifests/load.js';
import type { Metadata, Placement } from '../manifests/types.js';

/** A schema-valid manifest of kind K whose spec is S (what validation guarantees). */
export interface PrimitiveInput<K extends string = string, S = unknown> {
  kind: K;
  name: string;
  value: { apiVersion: 'hostkit.dev/v1'; kind: K; metadata: Metadata; spec: S & { placement: Placement } };
  source: LoadedDocument;
}

/**
 * The JSON Schema of a manifest kind's spec, without what every primitive
 * shares (apiVersion, kind, metadata, spec.placement): schema/resources.schema.json
 * is generated from these (manifests/schema-files.ts).
 */
export interface PrimitiveSchema {
  /** One line, the kind's title in the schema. */
  title: string;
  /** Required spec fields besides placement. */
  required?: readonly string[];
  /** The spec's fields besides placement: JSON Schema (draft 2020-12), $refs into common.schema.json. */
  properties: Readonly<Record<string, object>>;
}

/** Options of one resource added by an expansion (manifests/expand.ts HostBuilder). */
export interface AddOptions {
  dependsOn?: string[];
  /** Identical resources declared by several manifests merge (a shared user); otherwise the second is an error. */
  shared?: boolean;
  /** Where individual spec fields were written (e.g. owner), for diagnostics about them. */
  fieldOrigins?: Record<string, Location>;
}

/** What expanding one manifest may do on the host it is placed on. */
export interface PrimitiveExpansion {
  /** The manifest's name (metadata.name) location. */
  readonly origin: Location;
  at(pointer: string): Location;
  /** Add a resource owned by this manifest; returns its id ("kind/name"). */
  add<S>(kind: ResourceKind, name: string, spec: S, origin: Location, options?: AddOptions): string;
  /** A path must be plain and under the host's allowed roots (a diagnostic otherwise). */
  checkPath(path: string, origin: Location): void;
  /** False (and a diagnostic "WHAT claimed twice") when another manifest already claimed `key` of this sort on this host (a domain, a file). */
  claim(what: string, key: string, origin: Location): boolean;
  /** A firewall opening for the host's one table (built after every manifest is expanded). */
  openFirewall(opening: { port: number; protocol: 'tcp' | 'udp'; from: string[] }): void;
  report(diagnostic: Diagnostic): void;
}

/** The project a manifest belongs to, on one host: what it owns and was granted (manifests/policy.ts). */
export interface ProjectRoom {
  readonly project: string;
  /** The user the project runs as. */
  readonly user: string;
  ownsDomain(domain: string): boolean;
  ownsUnitName(name: string): boolean;
}

/** Who-may-change-what checks of one manifest on one host (manifests/policy.ts Checker). */
export interface PrimitivePolicy {
  /** Undefined for a host-level manifest: it may declare anything the schema allows. */
  readonly project: ProjectRoom | undefined;
  at(pointer: string): Location;
  report(diagnostic: Diagnostic): void;
  /** A policy refusal: `grant` names the spec.policy.grants field that could allow it, if any. */
  refuse(rule: string, what: string, pointer: string, grant?: 'paths' | 'secrets' | 'env' | 'ports'): void;
  /** A path HostKit writes, serves or runs in: never a protected path; from a project, inside its own roots. */
  path(path: string, pointer: string, what: string): void;
  /** A declared directory above a protected path must stay root's and not writable by others. */
  directory(path: string, owner: string, group: string, mode: number, pointer: string): void;
  ownership(owner: string | undefined, group: string | undefined, pointer: string): void;
  user(user: string, pointer: string, what: string): void;
  port(port: number, pointer: string): void;
  sshPort(port: number, pointer: string): void;
  pgName(name: string, pointer: string, what: string): void;
  extensions(list: readonly string[] | undefined, pointer: string): void;
  drop(drop: boolean | undefined, pointer: string): void;
}

/**
 * A manifest kind a driver folder expands (drivers/NAME/manifest.ts), exposed
 * on its driver (WithManifests). K: the manifest kind, S: its spec as written.
 */
export interface PrimitiveDefinition<K extends string = string, S = unknown> {
  readonly kind: K;
  readonly schema: PrimitiveSchema;
  /** The resources one manifest of this kind needs on the host it is placed on. */
  expand(m: PrimitiveInput<K, S>, x: PrimitiveExpansion): void;
  /** Policy checks of one manifest of this kind, beyond those every manifest gets (secret references). */
  policy?(m: PrimitiveInput<K, S>, c: PrimitivePolicy): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPrimitive = PrimitiveDefinition<string, any>;

/** The spec type a definition declares (manifests/types.ts PrimitiveSpecs). */
export type PrimitiveSpecOf<P> = P extends PrimitiveDefinition<string, infer S> ? S : never;
