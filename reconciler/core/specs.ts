// Normalized specs of primitive resources, after defaults are applied.
// Modes are numbers here (0o640); owners and groups are names.
import type { Limits, Restart, SecretRef } from '../manifests/types.js';

export interface AccountSpec {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
}

export interface DirectorySpec {
  path: string;
  owner: string;
  group: string;
  mode: number;
}

export interface FileSpec {
  path: string;
  content: string;
  owner: string;
  group: string;
  mode: number;
}

export interface EnvFileSpec {
  path: string;
  owner: string;
  group: string;
  mode: number;
  /** Plain values, rendered as given. */
  environment: Record<string, string>;
  /** Values resolved from secret references at plan time; never shown. */
  secrets: Record<string, SecretRef>;
  /** Keys whose values come from elsewhere and must be redacted (e.g. a database URL). */
  derivedSecrets?: Record<string, { template: string; secret: SecretRef }>;
}

export interface UnitSpec {
  unit: string;
  description: string;
  command: string[];
  user: string;
  group: string;
  workingDirectory?: string;
  environmentFile?: string;
  environment: Record<string, string>;
  restart: Restart;
  type: 'simple' | 'oneshot';
  limits: Limits;
  isolation: { profile: 'none' | 'web-service' | 'strict'; writablePaths: string[]; network: 'any' | 'loopback-only' };
  /** Files the service reads: their content hash is part of the unit, so a change restarts it. */
  reads: string[];
}

export interface TimerSpec {
  unit: string;
  service: string;
  /** One OnCalendar= line each (a cron line restricting both day fields needs two). */
  onCalendar: string[];
  schedule: string;
  persistent: boolean;
}

export interface SiteSpec {
  site: string;
  domains: string[];
  upstream?: { host: string; port: number };
  root?: string;
  /** The root is not HostKit's to create (outside its project's own paths): the plan checks that it exists. */
  rootMustExist?: boolean;
  tls: 'acme' | 'self-signed' | 'none' | { certificate: string; key: string };
  redirectHttp: boolean;
  locations: { path: string; port?: number; root?: string }[];
  /** Response headers added to everything the site serves. */
  headers?: Record<string, string>;
  gate?: { basicAuth?: { realm: string; htpasswd: SecretRef }; allow?: string[] };
}

export interface CertificateSpec {
  name: string;
  domains: string[];
  issuer: 'acme' | 'self-signed';
}

export interface PgRoleSpec {
  role: string;
  password?: SecretRef;
  connectionLimit: number;
  /** Explicit opt-in: drop the role (HostKit never drops one otherwise). */
  drop?: boolean;
}

export interface PgDatabaseSpec {
  database: string;
  owner: string;
  extensions: string[];
  /** Explicit opt-in: drop the database and its data (HostKit never drops one otherwise). */
  drop?: boolean;
  /** Fixed at creation; a different value later is an error, never a recreate. */
  encoding?: string;
  locale?: string;
}

export interface FirewallSpec {
  input: 'drop' | 'accept';
  ssh: false | { port: number; from: string[] };
  openings: { port: number; protocol: 'tcp' | 'udp'; from: string[]; for: string }[];
}

export interface CommandSpec {
  project: string;
  name: string;
  phase: 'before-start' | 'after-start';
  command: string[];
  down?: string[];
  irreversible: boolean;
  user: string;
  workingDirectory: string;
  /** From the manifest's `timeout`; absent: COMMAND_TIMEOUT_MS. Not part of what the command does (its digest). */
  timeoutMs?: number;
}
