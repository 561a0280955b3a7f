// What a driver folder declares about the manifest kinds it expands (Account,
// Site, Sysctl, ...): their schema, their spec type, how one manifest becomes
// resources, and what a project may not declare with them. The engine's
// manifests/ code dispatches through the registry to these; it names no kind.
import type { Diagnostic, Location } from '../core/diagnostics.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import type { LoadedDocument } from '../manifests/load.js';
import type { HostPolicy } from '../manifests/host-policy.js';
import type { HostSpec, Metadata, Placement, ProjectManifest } from '../manifests/types.js';

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

/**
 * The ids of what the parts of one Project's expansion added so far, for the parts
 * after them (PROJECT_PARTS order, drivers/kinds.ts). Empty until its part ran.
 */
export interface ProjectIds {
  /** The project's account; '' when nothing of the project runs (ProjectExpansion.runs). */
  account: string;
  /** Its working directory; '' when nothing of the project runs. */
  directory: string;
  /** A static site's web root when HostKit creates it (it may be the working directory). */
  webRoot?: string;
  files: string[];
  envFiles: string[];
  /** The PostgreSQL role and database. */
  databases: string[];
  /** The project's release (drivers/release), when it has a source. */
  release?: string;
  /** Lifecycle commands the project's units start after. */
  beforeStart: string[];
  /** Lifecycle commands that run once the project's units started. */
  afterStart: string[];
  /** The service, workers and timers' services. */
  units: string[];
}

/**
 * What expanding one Project on one host shares across its parts: the manifest, the
 * host's operations (every resource added belongs to the project), and what earlier
 * parts decided or added. Made once per project by manifests/expand.ts.
 */
export interface ProjectExpansion extends PrimitiveExpansion {
  /** The host it is expanded for: its name, its Host manifest's spec, and its policy. */
  readonly host: { readonly name: string; readonly spec: HostSpec; readonly policy: HostPolicy };
  readonly project: ProjectManifest;
  /** metadata.name */
  readonly name: string;
  /** The user its processes run as (spec.user, else its name). */
  readonly user: string;
  /** Something of the project runs as its user or reads its files: it needs an account and a working directory. */
  readonly runs: boolean;
  /**
   * Where the project's commands and units run: spec.service.workingDirectory, else
   * /srv/NAME. A part before the commands' may move it (a release: /srv/NAME/current);
   * the account's home and the directory HostKit creates are where it was first.
   */
  workingDirectory: string;
  /**
   * What a static project with domains serves (its static.root, else public/ in its working directory), and where that was
   * written. `inRelease`: it is inside the project's current release (drivers/release), which provides it: nothing creates it.
   */
  readonly webRoot: { readonly path: string; readonly origin: Location; readonly inRelease?: true } | undefined;
  /** Paths the project's processes read (its files, its env file): a unit restarts when one changes. */
  readonly reads: string[];
  /** The env file its units read, when it has one. */
  environmentFile?: string;
  readonly ids: ProjectIds;
  /** What the project's commands and units start after: its account, directory, files, env files, databases and release. */
  startsAfter(): string[];
  /** Resource `id`, added by an earlier part of this project, also waits for `ids`. */
  dependOn(id: string, ids: readonly string[]): void;
  /** A listening port (another manifest's claim of it on this host is an error). */
  claimPort(port: number, bind: string, origin: Location): void;
}

/** One driver folder's part of expanding a Project (drivers/NAME/project.ts), run in PROJECT_PARTS order. */
export interface ProjectPart {
  /** What the part adds, for the order's documentation and messages. */
  readonly name: string;
  expand(x: ProjectExpansion): void;
}

/**
 * What a host-level part (drivers/NAME/host.ts, listed in HOST_PARTS) sees of one host once
 * every manifest placed on it is expanded: the Host manifest, the projects placed on it, and
 * the kinds of the resources they added. What it adds is the host's (`project` names the one
 * project it belongs to, when one alone asked for it).
 */
export interface HostExpansion {
  readonly host: { readonly name: string; readonly spec: HostSpec; at(pointer: string): Location };
  readonly projects: readonly { readonly name: string; readonly spec: ProjectManifest['spec']; at(pointer: string): Location }[];
  /** The kinds of the resources added so far on this host. */
  readonly kinds: ReadonlySet<ResourceKind>;
  /** The resources of `kind` added so far on this host (read only). */
  resources<S>(kind: ResourceKind): readonly Readonly<Pick<Resource<S>, 'id' | 'spec' | 'origin' | 'project'>>[];
  add<S>(kind: ResourceKind, name: string, spec: S, origin: Location, options?: AddOptions & { project?: string }): string;
  report(diagnostic: Diagnostic): void;
}

/** One driver folder's part of expanding a host after its manifests (drivers/NAME/host.ts), run in HOST_PARTS order. */
export interface HostPart {
  readonly name: string;
  expand(x: HostExpansion): void;
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
  refuse(rule: string, what: string, pointer: string, grant?: 'paths' | 'secrets' | 'env' | 'ports' | 'packages'): void;
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
