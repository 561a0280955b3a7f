// TypeScript shapes of the manifests; the schemas (schema/*.schema.json, and for
// primitive kinds their driver folders' manifest.ts) are the source of truth for
// what is valid, these types describe what validation guarantees.
import type { AptSourceEntry } from '../drivers/aptsource/spec.js';
import type { PrimitiveSpecOf } from '../drivers/manifest-types.js';
import type { ImplicitPackages, PackageEntry, Runtime } from '../drivers/package/spec.js';
import type { RegisteredPrimitive } from '../drivers/kinds.js';
import type { LoadedDocument } from './load.js';

export type SecretRef = { file: string } | { env: string } | { age: string };
export type Environment = Record<string, string | number | boolean>;
export type Restart = 'always' | 'on-failure' | 'no';

export interface Placement {
  hosts?: string[];
  selector?: { matchLabels: Record<string, string> };
}

export interface Metadata {
  name: string;
  labels?: Record<string, string>;
  description?: string;
  dependsOn?: string[];
  /** Primitives only: the project the manifest belongs to (see policy.ts). */
  project?: string;
}

export interface Limits {
  memoryMax?: string;
  memoryHigh?: string;
  cpuQuota?: string;
  tasksMax?: number;
}

/** Retention of backups: how many snapshots are kept per period (restic forget --keep-*). */
export interface BackupKeep {
  last?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

export interface HostSpec {
  address?: string;
  /** How `--target`/`--hosts` reach the machine over SSH (commands/targets.ts); read on the operator's machine. */
  ssh?: HostSsh;
  /** The machine's own IP addresses a project's service may bind besides loopback. */
  addresses?: string[];
  /** Names the machine may report as its hostname besides metadata.name. */
  hostnames?: string[];
  allowedRoots?: string[];
  stateDirectory?: string;
  firewall?: {
    input?: 'drop' | 'accept';
    ssh?: false | { port?: number; from?: string[] };
    confirmTimeout?: string;
  };
  acme?: { directory?: string; email: string; renewBefore?: number; caCertificate?: string };
  postgresql?: { socket?: string; host?: string; port?: number; user?: string; password?: SecretRef };
  age?: { identityFile: string };
  /** Who may change what (policy.ts): host-level repository paths and per-project grants. */
  policy?: {
    hostLevelPaths?: string[];
    grants?: Record<string, PolicyGrant>;
  };
  /** Where secret references may point. */
  secrets?: { roots?: string[]; env?: string[] };
  /** Deploy-loop protection: pause a project after this many failed applies within the window. */
  deploy?: { pauseAfterFailures?: number; failureWindow?: string };
  /** The host's restic repository for backups and checkpoints (drivers/backup). */
  backup?: { repository?: string; password: SecretRef; environment?: Record<string, SecretRef> };
  /** The hostkit command the timers HostKit owns run (default /usr/bin/hostkit). */
  hostkitPath?: string;
  /** OS packages (drivers/package), vendor apt sources (drivers/aptsource), and the packages HostKit's own kinds imply. */
  packages?: PackageEntry[];
  aptSources?: AptSourceEntry[];
  implicitPackages?: boolean | ImplicitPackages;
}

/** A Host's spec.ssh: defaults for reaching it over SSH; the command line wins. */
export interface HostSsh {
  user?: string;
  port?: number;
  /** Resolved on the operator's machine: a key file there, or a variable there holding the key. */
  identityFile?: SecretRef;
  /** A known_hosts file on the operator's machine. */
  knownHosts?: string;
  sudo?: boolean;
}

/** What the Host lets one project touch besides what it owns. */
export interface PolicyGrant {
  paths?: string[];
  secrets?: string[];
  env?: string[];
  ports?: number[];
  /** OS packages its Project may declare in spec.packages. */
  packages?: string[];
}

export interface ServiceSpec {
  command?: string[];
  workingDirectory?: string;
  port?: number;
  bind?: string;
  environment?: Environment;
  secrets?: Record<string, SecretRef>;
  restart?: Restart;
  isolation?: { profile?: 'none' | 'web-service' | 'strict'; writablePaths?: string[]; network?: 'any' | 'loopback-only' };
  limits?: Limits;
}

export interface DomainSpec {
  name: string;
  aliases?: string[];
  tls?: 'acme' | 'self-signed' | 'none' | { certificate: string; key: string };
  redirectHttp?: boolean;
  /** Added to every response of the site (plain names and values, checked again before rendering). */
  responseHeaders?: Record<string, string>;
  locations?: { path: string; port?: number; root?: string }[];
  gate?: { basicAuth?: { realm?: string; htpasswd: SecretRef }; allow?: string[] };
}

export interface ProjectSpec {
  placement: Placement;
  runtime: Runtime;
  packages?: PackageEntry[];
  user?: string;
  service?: ServiceSpec;
  workers?: { name: string; command: string[]; environment?: Environment; restart?: Restart; limits?: Limits }[];
  timers?: { name: string; schedule: string; command: string[]; persistent?: boolean; limits?: Limits }[];
  files?: { name: string; content: string; mode?: string }[];
  static?: { root: string };
  domains?: DomainSpec[];
  database?: {
    engine?: 'postgresql';
    name?: string;
    role?: string;
    password: SecretRef;
    extensions?: string[];
    connectionLimit?: number;
    urlEnv?: string;
    backup?: { schedule: string; keep?: BackupKeep; drill?: 'daily' | 'weekly' | 'monthly' };
    /** A run checkpoints the database before a before-start command or a new release (default true, with a Host spec.backup). */
    checkpoint?: boolean;
    /** A failed run restores the database from its checkpoint too. */
    restoreDataOnRollback?: boolean;
  };
  backup?: { paths: string[]; schedule: string; keep?: BackupKeep };
  firewall?: { port: number; protocol?: 'tcp' | 'udp'; from?: string[] }[];
  health?: {
    http?: { path: string; expectStatus?: number; bodyContains?: string };
    tcp?: { port: number };
    command?: string[];
    timeout?: string;
    retries?: number;
  };
  lifecycle?: { name: string; phase: 'before-start' | 'after-start'; command: string[]; down?: string[]; irreversible?: boolean; timeout?: string }[];
  /** The application's code (drivers/release): exactly one of git or archive. */
  source?: SourceSpec;
  build?: { command: string[]; environment?: Environment; timeout?: string }[];
  releases?: { keep?: number };
  /** Relative paths kept across releases, linked into each. */
  shared?: string[];
  /** How a new version of the service replaces the running one (drivers/systemd/deploy): `restart` (the default) or `blue-green`. */
  deploy?: { strategy?: 'restart' | 'blue-green'; port?: number; drain?: string };
}

export type SourceSpec =
  { git: { url: string; ref: string; subdirectory?: string; sshKey?: SecretRef; token?: SecretRef } } | { archive: { url: string; sha256: string } };

export interface Ownership {
  owner?: string;
  group?: string;
  mode?: string;
}

/** Each primitive manifest kind's spec as written, declared by its driver folder (drivers/NAME/manifest.ts). */
export type PrimitiveSpecs = { [P in RegisteredPrimitive as P['kind']]: PrimitiveSpecOf<P> };

export type PrimitiveKind = keyof PrimitiveSpecs;
export type ManifestKind = 'Host' | 'Project' | PrimitiveKind;

interface ManifestBase<K extends ManifestKind, S> {
  apiVersion: 'hostkit.dev/v1';
  kind: K;
  metadata: Metadata;
  spec: S;
}

export type HostManifest = ManifestBase<'Host', HostSpec>;
export type ProjectManifest = ManifestBase<'Project', ProjectSpec>;
export type PrimitiveManifest<K extends PrimitiveKind = PrimitiveKind> = ManifestBase<K, PrimitiveSpecs[K] & { placement: Placement }>;
export type AnyManifest = HostManifest | ProjectManifest | PrimitiveManifest;

/** A validated manifest and the document it came from (for locations). */
export interface Manifest<M extends AnyManifest = AnyManifest> {
  kind: M['kind'];
  name: string;
  value: M;
  source: LoadedDocument;
}
