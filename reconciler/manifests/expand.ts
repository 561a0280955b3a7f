import path from 'node:path';
import { error, warning, type Diagnostic, type Location } from '../core/diagnostics.js';
import { resourceId, type Resource, type ResourceKind } from '../core/resource.js';
import type { DirectorySpec, FirewallSpec, PgAccessSpec, SiteSpec } from '../core/specs.js';
import { HOST_PARTS, PROJECT_PARTS } from '../drivers/kinds.js';
import { adminAccess } from '../drivers/postgresql/project.js';
import type { AddOptions, HostExpansion, PrimitiveExpansion, ProjectExpansion, ProjectIds } from '../drivers/manifest-types.js';
import { hostPolicy, isHostLevel, type HostPolicy } from './host-policy.js';
import type { LoadedDocument } from './load.js';
import { ENV_DIRECTORY, projectUser, webRoot, workingDirectory } from './primitive.js';
import { primitive } from './primitives.js';
import type { HostManifest, Manifest, Placement, PrimitiveManifest, ProjectManifest } from './types.js';

export { ENV_DIRECTORY, pgName, projectUser, UNIT_PREFIX, WEB_GROUP, webRoot, workingDirectory } from './primitive.js';

export const DEFAULT_ALLOWED_ROOTS = ['/srv', '/opt', '/var/lib', '/var/www', '/var/log', '/etc/hostkit'];
export const DEFAULT_STATE_DIRECTORY = '/var/lib/hostkit';

/** Users and groups every Debian host has; anything else must be declared. */
export const SYSTEM_USERS = new Set([
  'root',
  'daemon',
  'bin',
  'sys',
  'adm',
  'nogroup',
  'nobody',
  'www-data',
  'postgres',
  'ssl-cert',
  'systemd-journal',
  'users',
  'staff',
]);
/** Names a project may not run as. */
export const RESERVED_USERS = new Set([
  ...SYSTEM_USERS,
  'sync',
  'games',
  'man',
  'lp',
  'mail',
  'news',
  'uucp',
  'proxy',
  'backup',
  'list',
  'irc',
  'messagebus',
  'sshd',
  'hostkit',
]);
export const RESERVED_PG_NAMES = new Set(['postgres', 'template0', 'template1', 'public']);

export interface HostSettings {
  name: string;
  labels: Record<string, string>;
  allowedRoots: string[];
  stateDirectory: string;
  policy: HostPolicy;
  manifest: Manifest<HostManifest>;
}

export function hostSettings(manifest: Manifest<HostManifest>): HostSettings {
  const spec = manifest.value.spec ?? {};
  const stateDirectory = spec.stateDirectory ?? DEFAULT_STATE_DIRECTORY;
  return {
    name: manifest.name,
    labels: manifest.value.metadata.labels ?? {},
    allowedRoots: spec.allowedRoots ?? DEFAULT_ALLOWED_ROOTS,
    stateDirectory,
    policy: hostPolicy(spec, stateDirectory),
    manifest,
  };
}

export function placedOn(placement: Placement, host: { name: string; labels: Record<string, string> }): boolean {
  if (placement.hosts?.includes(host.name)) return true;
  const match = placement.selector?.matchLabels;
  return match !== undefined && Object.entries(match).every(([k, v]) => host.labels[k] === v);
}

// Something runs as the project's user, in its working directory, or reads its files there.
// A static site with none of these needs neither an account nor a working directory.
function runsSomething(project: ProjectManifest): boolean {
  const spec = project.spec;
  return (
    spec.runtime !== 'static' ||
    spec.service !== undefined ||
    [spec.workers, spec.timers, spec.lifecycle, spec.files].some((list) => (list ?? []).length > 0) ||
    spec.health?.command !== undefined ||
    spec.source !== undefined
  );
}

export interface Expansion {
  host: HostSettings;
  resources: Resource[];
  diagnostics: Diagnostic[];
}

// Collects the resources of one host and reports claims made twice on it:
// a resource id, a domain, a listening port.
class HostBuilder {
  readonly resources = new Map<string, Resource>();
  readonly diagnostics: Diagnostic[] = [];
  /** Openings for the host's one firewall table, from primitives (FirewallRules), by the manifest that asked. */
  readonly openings: FirewallSpec['openings'] = [];
  private readonly claims = new Map<string, Location>();
  private readonly ports = new Map<string, Location>();
  private readonly manifestResources = new Map<string, string[]>();

  readonly host: HostSettings;

  constructor(host: HostSettings) {
    this.host = host;
  }

  add<S>(owner: string, kind: ResourceKind, name: string, spec: S, origin: Location, options: AddOptions & { project?: string } = {}): string {
    const id = resourceId(kind, name);
    const existing = this.resources.get(id);
    if (existing) {
      // Identical shared resources (a user two projects run as, a common directory) merge.
      const same = JSON.stringify(existing.spec) === JSON.stringify(spec);
      if (!(options.shared && same)) {
        this.diagnostics.push(
          error(
            kind === 'file' || kind === 'envfile' || kind === 'directory' ? 'path claimed twice' : 'resource declared twice',
            `${id} on host ${this.host.name} is also declared at ${existing.origin.file}:${existing.origin.line ?? 0}`,
            origin,
          ),
        );
      }
      this.track(owner, id);
      return id;
    }
    const resource: Resource<S> = { id, kind, name, spec, dependsOn: options.dependsOn ?? [], origin };
    if (options.project) resource.project = options.project;
    if (options.fieldOrigins) resource.fieldOrigins = options.fieldOrigins;
    this.resources.set(id, resource);
    this.track(owner, id);
    return id;
  }

  private track(owner: string, id: string): void {
    const list = this.manifestResources.get(owner) ?? [];
    list.push(id);
    this.manifestResources.set(owner, list);
  }

  resourcesOf(owner: string): string[] {
    return this.manifestResources.get(owner) ?? [];
  }

  /** False (and a diagnostic "WHAT claimed twice") when another manifest already claimed `key` of this sort on this host. */
  claim(what: string, key: string, origin: Location): boolean {
    const previous = this.claims.get(`${what}\0${key}`);
    if (previous) {
      this.diagnostics.push(
        error(`${what} claimed twice`, `${key} on host ${this.host.name} is also claimed at ${previous.file}:${previous.line ?? 0}`, origin),
      );
      return false;
    }
    this.claims.set(`${what}\0${key}`, origin);
    return true;
  }

  claimPort(port: number, bind: string, origin: Location): void {
    const key = String(port);
    const previous = this.ports.get(key);
    if (previous) {
      this.diagnostics.push(
        error('port claimed twice', `port ${port} on host ${this.host.name} is also claimed at ${previous.file}:${previous.line ?? 0}`, origin),
      );
    } else this.ports.set(key, origin);
    void bind;
  }

  checkPath(p: string, origin: Location): void {
    const problem = pathProblem(p, this.host, origin);
    if (problem) this.diagnostics.push(problem);
  }

  /** What expanding one manifest (a driver folder's manifest.ts or project.ts) may do, as `owner`; what it adds belongs to `project`, if given. */
  expansion(owner: string, source: LoadedDocument, project?: string): PrimitiveExpansion {
    const at = (pointer: string) => source.locate(pointer);
    return {
      origin: at('/metadata/name'),
      at,
      add: (kind, name, spec, origin, options) => this.add(owner, kind, name, spec, origin, project ? { ...options, project } : options),
      checkPath: (p, origin) => this.checkPath(p, origin),
      claim: (what, key, origin) => this.claim(what, key, origin),
      openFirewall: (opening) => this.openings.push({ ...opening, for: owner }),
      report: (diagnostic) => this.diagnostics.push(diagnostic),
    };
  }
}

/** A path that is not plain, or not under the host's allowed roots. */
export function pathProblem(p: string, host: HostSettings, origin: Location): Diagnostic | undefined {
  const segments = p.split('/').slice(1);
  if (p !== '/' && segments.some((s) => s === '' || s === '.' || s === '..')) {
    return error('path escapes its root', `${p} has an empty, "." or ".." segment; write the plain absolute path`, origin);
  }
  if (!host.allowedRoots.some((root) => p === root || p.startsWith(root.endsWith('/') ? root : root + '/'))) {
    return error(
      'path outside allowed roots',
      `${p} is not under ${host.allowedRoots.join(', ')} (host ${host.name}: set spec.allowedRoots to allow more)`,
      origin,
    );
  }
  return undefined;
}

// Resources every host with managed services needs.
function addHostBase(b: HostBuilder): void {
  const origin = b.host.manifest.source.locate('/metadata/name');
  for (const dir of ['/etc/hostkit', ENV_DIRECTORY]) {
    b.add<DirectorySpec>('host', 'directory', dir, { path: dir, owner: 'root', group: 'root', mode: 0o755 }, origin, { shared: true });
  }
}

// A Project becomes what each driver folder's part of it adds (drivers/NAME/project.ts),
// in PROJECT_PARTS order, sharing one context.
function expandProject(b: HostBuilder, m: Manifest<ProjectManifest>): void {
  const p = m.value;
  const name = p.metadata.name;
  const ids: ProjectIds = { account: '', directory: '', files: [], envFiles: [], databases: [], beforeStart: [], afterStart: [], units: [] };
  const isStatic = p.spec.runtime === 'static';
  const root = isStatic && (p.spec.domains ?? []).length > 0 ? webRoot(p) : undefined;
  const x: ProjectExpansion = {
    ...b.expansion(`Project/${name}`, m.source, name),
    host: { name: b.host.name, spec: b.host.manifest.value.spec ?? {}, policy: b.host.policy },
    project: p,
    name,
    user: projectUser(p),
    runs: runsSomething(p),
    workingDirectory: workingDirectory(p),
    webRoot:
      root === undefined
        ? undefined
        : {
            path: root,
            origin: m.source.locate(p.spec.static?.root ? '/spec/static/root' : '/metadata/name'),
            ...(p.spec.source !== undefined && !p.spec.static?.root?.startsWith('/') ? { inRelease: true } : {}),
          },
    reads: [],
    ids,
    startsAfter: () => [ids.account, ids.directory, ...ids.files, ...ids.envFiles, ...ids.databases, ...(ids.release ? [ids.release] : [])],
    dependOn: (id, more) => {
      const r = b.resources.get(id);
      if (r) r.dependsOn = [...r.dependsOn, ...more];
    },
    claimPort: (port, bind, origin) => b.claimPort(port, bind, origin),
  };
  for (const part of PROJECT_PARTS) part.expand(x);
}

// A primitive manifest becomes what its driver folder's manifest.ts says (drivers/NAME/manifest.ts).
function expandPrimitive(b: HostBuilder, m: Manifest<PrimitiveManifest>): void {
  primitive(m.kind).expand(m, b.expansion(`${m.kind}/${m.name}`, m.source));
}

// The host's one firewall table: the Host's policy, the projects' openings, then those of primitives.
function addFirewall(b: HostBuilder, projects: Manifest<ProjectManifest>[]): void {
  const fw = b.host.manifest.value.spec?.firewall;
  const openings: FirewallSpec['openings'] = [];
  for (const p of projects) {
    for (const o of p.value.spec.firewall ?? []) openings.push({ port: o.port, protocol: o.protocol ?? 'tcp', from: o.from ?? [], for: `Project/${p.name}` });
  }
  openings.push(...b.openings);
  // Firewall management is the host's choice: openings alone never switch on a drop policy.
  if (!fw) {
    if (openings.length > 0) {
      b.diagnostics.push(
        warning(
          'firewall not managed',
          `host ${b.host.name} has no spec.firewall, so the openings of ${[...new Set(openings.map((o) => o.for))].join(', ')} are not applied; add spec.firewall to the host to manage its nftables table`,
          b.host.manifest.source.locate('/metadata/name'),
        ),
      );
    }
    return;
  }
  const ssh = fw?.ssh === false ? false : { port: fw?.ssh?.port ?? 22, from: fw?.ssh?.from ?? [] };
  b.add<FirewallSpec>(
    'host',
    'firewall',
    'hostkit',
    { input: fw?.input ?? 'drop', ssh, openings },
    b.host.manifest.source.locate(fw ? '/spec/firewall' : '/metadata/name'),
  );
}

// HostKit's own PostgreSQL admin access, before every role and database of the host (drivers/postgresql/project.ts).
function addPgAccess(b: HostBuilder): void {
  const users = [...b.resources.values()].filter((r) => r.kind === 'pgrole' || r.kind === 'pgdatabase');
  const postgresql = b.host.manifest.value.spec?.postgresql;
  const spec = users.length > 0 ? adminAccess(postgresql) : undefined;
  if (!spec) return;
  const id = b.add<PgAccessSpec>('host', 'pgaccess', 'local', spec, b.host.manifest.source.locate(postgresql ? '/spec/postgresql' : '/metadata/name'));
  for (const r of users) r.dependsOn.push(id);
}

// What the host gets once everything placed on it is expanded (drivers/NAME/host.ts): its apt sources and packages.
function expandHostParts(b: HostBuilder, projects: Manifest<ProjectManifest>[]): void {
  const hostAt = (pointer: string) => b.host.manifest.source.locate(pointer);
  const x: HostExpansion = {
    host: { name: b.host.name, spec: b.host.manifest.value.spec ?? {}, at: hostAt },
    projects: projects.map((p) => ({ name: p.name, spec: p.value.spec, at: (pointer: string) => p.source.locate(pointer) })),
    kinds: new Set([...b.resources.values()].map((r) => r.kind)),
    resources: <S>(kind: ResourceKind) => [...b.resources.values()].filter((r) => r.kind === kind) as Resource<S>[],
    add: (kind, name, spec, origin, options) => b.add('host', kind, name, spec, origin, options),
    report: (d) => b.diagnostics.push(d),
  };
  for (const part of HOST_PARTS) part.expand(x);
}

/** Expand every manifest placed on `host` into the resources it needs. */
export function expandForHost(manifests: readonly Manifest[], host: HostSettings): Expansion {
  const b = new HostBuilder(host);
  const placed = manifests.filter((m) => m.kind !== 'Host' && placedOn((m.value as ProjectManifest | PrimitiveManifest).spec.placement, host));
  const projects = placed.filter((m): m is Manifest<ProjectManifest> => m.kind === 'Project');
  if (projects.some((p) => p.value.spec.runtime !== 'static' || p.value.spec.service)) addHostBase(b);
  for (const m of placed) {
    if (m.kind === 'Project') expandProject(b, m as Manifest<ProjectManifest>);
    else expandPrimitive(b, m as Manifest<PrimitiveManifest>);
  }
  addFirewall(b, projects);
  addPgAccess(b);
  expandHostParts(b, projects);

  // Manifest-level dependsOn: every resource of this manifest after every resource of the named one.
  for (const m of placed) {
    for (const ref of m.value.metadata.dependsOn ?? []) {
      const targets = b.resourcesOf(ref);
      for (const id of b.resourcesOf(`${m.kind}/${m.name}`)) {
        const r = b.resources.get(id)!;
        for (const t of targets) if (t !== id && !r.dependsOn.includes(t)) r.dependsOn.push(t);
      }
    }
  }
  // A web root another manifest declares as a Directory is created by it, not checked.
  for (const r of b.resources.values()) {
    const site = r.spec as SiteSpec;
    const dir = r.kind === 'site' && site.rootMustExist ? resourceId('directory', site.root!) : undefined;
    if (dir && b.resources.has(dir)) {
      delete site.rootMustExist;
      delete r.fieldOrigins;
      if (!r.dependsOn.includes(dir)) r.dependsOn.push(dir);
    }
  }
  // A primitive belongs to the project it names (holds, health, and what its drivers may adopt follow it).
  for (const m of placed) {
    const project = (m.value.metadata as { project?: string }).project;
    if (project) for (const id of b.resourcesOf(`${m.kind}/${m.name}`)) b.resources.get(id)!.project ??= project;
  }
  // Drivers may adopt what exists only for host-level declarations (the Host's own resources are host-level).
  const hostLevel = ['host', ...placed.filter((m) => isHostLevel(m.source.file, host.policy)).map((m) => `${m.kind}/${m.name}`)];
  for (const owner of hostLevel) for (const id of b.resourcesOf(owner)) b.resources.get(id)!.hostLevel = true;
  // Implicit: a path resource after the directory that contains it, and after the accounts that own it.
  for (const r of b.resources.values()) {
    const spec = r.spec as { path?: string; owner?: string; group?: string };
    if (r.kind === 'file' || r.kind === 'envfile' || r.kind === 'directory') {
      const parent = resourceId('directory', path.posix.dirname(spec.path!));
      if (b.resources.has(parent) && parent !== r.id && !r.dependsOn.includes(parent)) r.dependsOn.push(parent);
      for (const u of [spec.owner, spec.group]) {
        const acc = u ? resourceId('account', u) : undefined;
        if (acc && b.resources.has(acc) && !r.dependsOn.includes(acc)) r.dependsOn.push(acc);
      }
    }
  }
  return { host, resources: [...b.resources.values()], diagnostics: b.diagnostics };
}
