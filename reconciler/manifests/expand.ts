import path from 'node:path';
import { error, warning, type Diagnostic, type Location } from '../core/diagnostics.js';
import { resourceId, type Resource, type ResourceKind } from '../core/resource.js';
import type {
  AccountSpec,
  CertificateSpec,
  CommandSpec,
  DirectorySpec,
  EnvFileSpec,
  FileSpec,
  FirewallSpec,
  PgDatabaseSpec,
  PgRoleSpec,
  SiteSpec,
  TimerSpec,
  UnitSpec,
} from '../core/specs.js';
import { durationMs } from '../core/duration.js';
import type { AddOptions, PrimitiveExpansion } from '../drivers/manifest-types.js';
import { hostPolicy, isHostLevel, projectRoots, within, type HostPolicy } from './host-policy.js';
import type { LoadedDocument } from './load.js';
import { DEFAULT_ALLOWED_ROOTS, parseMode, pgName, stringEnv, UNIT_PREFIX } from './primitive.js';
import { primitive } from './primitives.js';
import { scheduleError, toOnCalendar } from './schedule.js';
import { expandRelease, releaseWebRoot, runDirectory } from '../drivers/release/project.js';
import { currentLink } from '../drivers/release/records.js';
import type { HostManifest, Manifest, Placement, PrimitiveManifest, ProjectManifest } from './types.js';

export { DEFAULT_ALLOWED_ROOTS, pgName, UNIT_PREFIX } from './primitive.js';

export const DEFAULT_STATE_DIRECTORY = '/var/lib/hostkit';
export const ENV_DIRECTORY = '/etc/hostkit/env';
/** The group nginx's workers read as (Debian): a static site's web root is readable by it. */
export const WEB_GROUP = 'www-data';

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

export function projectUser(project: ProjectManifest): string {
  return project.spec.user ?? project.metadata.name;
}

export function workingDirectory(project: ProjectManifest): string {
  return project.spec.service?.workingDirectory ?? `/srv/${project.metadata.name}`;
}

/** What a static project's sites serve: `static.root`, else `public` in its working directory (in its current release with a source). */
export function webRoot(project: ProjectManifest): string {
  return releaseWebRoot(project) ?? project.spec.static?.root ?? `${workingDirectory(project)}/public`;
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

  claimDomain(domain: string, origin: Location): boolean {
    return this.claim('domain', domain, origin);
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

  /** What expanding one primitive manifest (its driver folder's manifest.ts) may do, as `owner`. */
  expansion(owner: string, source: LoadedDocument): PrimitiveExpansion {
    const at = (pointer: string) => source.locate(pointer);
    return {
      origin: at('/metadata/name'),
      at,
      add: (kind, name, spec, origin, options) => this.add(owner, kind, name, spec, origin, options),
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

function expandProject(b: HostBuilder, m: Manifest<ProjectManifest>): void {
  const p = m.value;
  const spec = p.spec;
  const name = p.metadata.name;
  const at = (pointer: string) => m.source.locate(pointer);
  const owner = `Project/${name}`;
  const user = projectUser(p);
  const opts = { project: name };
  const dir = workingDirectory(p);
  const isStatic = spec.runtime === 'static';
  const needsService = !isStatic || spec.service !== undefined;
  const runs = runsSomething(p);
  const root = isStatic && (spec.domains ?? []).length > 0 ? webRoot(p) : undefined;

  let accountId = '';
  let dirId = '';
  if (runs) {
    accountId = b.add<AccountSpec>(
      owner,
      'account',
      user,
      { user, group: user, home: dir, shell: '/usr/sbin/nologin', groups: [] },
      at(spec.user ? '/spec/user' : '/metadata/name'),
      { ...opts, shared: true },
    );
    b.checkPath(dir, at(spec.service?.workingDirectory ? '/spec/service/workingDirectory' : '/metadata/name'));
    (spec.service?.isolation?.writablePaths ?? []).forEach((p, i) => b.checkPath(p, at(`/spec/service/isolation/writablePaths/${i}`)));
    dirId = b.add<DirectorySpec>(owner, 'directory', dir, { path: dir, owner: user, ...webAccess(dir, root, user) }, at('/metadata/name'), {
      ...opts,
      dependsOn: [accountId],
    });
  }
  const rootAt = at(spec.static?.root ? '/spec/static/root' : '/metadata/name');
  const isolation: UnitSpec['isolation'] = {
    profile: spec.service?.isolation?.profile ?? 'web-service',
    writablePaths: spec.service?.isolation?.writablePaths ?? [dir],
    network: spec.service?.isolation?.network ?? 'any',
  };
  const releaseId = expandRelease(
    p,
    { add: (s, origin, options) => b.add(owner, 'release', name, s, origin, { ...opts, ...options }), at },
    { user, dependsOn: [accountId, dirId], isolation, webReadable: root !== undefined },
  );
  // With a source, the units and commands run in the current release, and a static root is inside it.
  const runDir = runDirectory(p, dir);
  const rootId = releaseId ?? (root === undefined ? undefined : addWebRoot(b, p, root, rootAt, runs ? { user, dependsOn: [accountId, dirId] } : undefined));

  const fileIds: string[] = [];
  const reads: string[] = [];
  (spec.files ?? []).forEach((f, i) => {
    const filePath = `${dir}/${f.name}`;
    reads.push(filePath);
    fileIds.push(
      b.add<FileSpec>(
        owner,
        'file',
        filePath,
        { path: filePath, content: f.content, owner: 'root', group: user, mode: parseMode(f.mode, 0o640) },
        at(`/spec/files/${i}`),
        {
          ...opts,
          dependsOn: [dirId],
        },
      ),
    );
  });

  let envFile: string | undefined;
  const envIds: string[] = [];
  if (needsService) {
    envFile = `${ENV_DIRECTORY}/${name}.env`;
    const environment = stringEnv(spec.service?.environment);
    if (spec.service?.port !== undefined) {
      environment.PORT ??= String(spec.service.port);
      environment.BIND ??= spec.service.bind ?? '127.0.0.1';
    }
    const envSpec: EnvFileSpec = { path: envFile, owner: 'root', group: user, mode: 0o640, environment, secrets: { ...(spec.service?.secrets ?? {}) } };
    if (spec.database) {
      const role = spec.database.role ?? pgName(name);
      const database = spec.database.name ?? pgName(name);
      envSpec.derivedSecrets = {
        [spec.database.urlEnv ?? 'DATABASE_URL']: {
          template: `postgresql://${role}:{secret}@127.0.0.1:${b.host.manifest.value.spec?.postgresql?.port ?? 5432}/${database}`,
          secret: spec.database.password,
        },
      };
    }
    reads.push(envFile);
    envIds.push(
      b.add<EnvFileSpec>(owner, 'envfile', envFile, envSpec, at('/spec/service'), { ...opts, dependsOn: [accountId, resourceId('directory', ENV_DIRECTORY)] }),
    );
  }

  // Database before the service that uses it.
  const dbIds: string[] = [];
  if (spec.database) {
    const role = spec.database.role ?? pgName(name);
    const database = spec.database.name ?? pgName(name);
    const roleId = b.add<PgRoleSpec>(
      owner,
      'pgrole',
      role,
      { role, password: spec.database.password, connectionLimit: spec.database.connectionLimit ?? -1 },
      at('/spec/database'),
      opts,
    );
    dbIds.push(roleId);
    dbIds.push(
      b.add<PgDatabaseSpec>(owner, 'pgdatabase', database, { database, owner: role, extensions: spec.database.extensions ?? [] }, at('/spec/database'), {
        ...opts,
        dependsOn: [roleId],
      }),
    );
  }

  const serviceDeps = [accountId, dirId, ...fileIds, ...envIds, ...dbIds, ...(releaseId ? [releaseId] : [])];
  if (releaseId) reads.push(currentLink(name));
  const before: string[] = [];
  (spec.lifecycle ?? []).forEach((l, i) => {
    const cmd: CommandSpec = {
      project: name,
      name: l.name,
      phase: l.phase,
      command: l.command,
      irreversible: l.irreversible ?? false,
      user,
      workingDirectory: runDir,
      ...(l.down ? { down: l.down } : {}),
      ...(l.timeout ? { timeoutMs: durationMs(l.timeout) } : {}),
    };
    const id = b.add<CommandSpec>(owner, 'command', `${name}-${l.name}`, cmd, at(`/spec/lifecycle/${i}`), { ...opts, dependsOn: serviceDeps });
    if (l.phase === 'before-start') before.push(id);
  });

  const unitBase = (unit: string, description: string, command: string[], type: UnitSpec['type']): UnitSpec => ({
    unit,
    description,
    command,
    user,
    group: user,
    workingDirectory: runDir,
    ...(envFile ? { environmentFile: envFile } : {}),
    environment: {},
    restart: spec.service?.restart ?? 'on-failure',
    type,
    limits: spec.service?.limits ?? {},
    isolation,
    reads,
  });

  const unitIds: string[] = [];
  if (needsService && spec.service?.command) {
    const unit = `${UNIT_PREFIX}${name}.service`;
    unitIds.push(
      b.add<UnitSpec>(owner, 'unit', unit, unitBase(unit, `HostKit project ${name}`, spec.service.command, 'simple'), at('/spec/service'), {
        ...opts,
        dependsOn: [...serviceDeps, ...before],
      }),
    );
    if (spec.service.port !== undefined) b.claimPort(spec.service.port, spec.service.bind ?? '127.0.0.1', at('/spec/service/port'));
  }
  (spec.workers ?? []).forEach((w, i) => {
    const unit = `${UNIT_PREFIX}${name}-${w.name}.service`;
    const u = unitBase(unit, `HostKit project ${name}, worker ${w.name}`, w.command, 'simple');
    u.environment = stringEnv(w.environment);
    u.restart = w.restart ?? u.restart;
    u.limits = w.limits ?? u.limits;
    unitIds.push(b.add<UnitSpec>(owner, 'unit', unit, u, at(`/spec/workers/${i}`), { ...opts, dependsOn: [...serviceDeps, ...before] }));
  });
  (spec.timers ?? []).forEach((t, i) => {
    const service = `${UNIT_PREFIX}${name}-${t.name}.service`;
    const timer = `${UNIT_PREFIX}${name}-${t.name}.timer`;
    const u = unitBase(service, `HostKit project ${name}, timer ${t.name}`, t.command, 'oneshot');
    u.restart = 'no';
    u.limits = t.limits ?? u.limits;
    const serviceId = b.add<UnitSpec>(owner, 'unit', service, u, at(`/spec/timers/${i}`), { ...opts, dependsOn: [...serviceDeps, ...before] });
    const converted = toOnCalendar(t.schedule);
    if ('error' in converted) {
      b.diagnostics.push(scheduleError(`timers[${i}].schedule`, t.schedule, converted.error, at(`/spec/timers/${i}/schedule`)));
      return;
    }
    b.add<TimerSpec>(
      owner,
      'timer',
      timer,
      { unit: timer, service, onCalendar: converted.onCalendar, schedule: t.schedule, persistent: t.persistent ?? true },
      at(`/spec/timers/${i}`),
      {
        ...opts,
        dependsOn: [serviceId],
      },
    );
  });
  (spec.lifecycle ?? []).forEach((l, i) => {
    if (l.phase === 'after-start') {
      const id = resourceId('command', `${name}-${l.name}`);
      const r = b.resources.get(id);
      if (r) r.dependsOn = [...r.dependsOn, ...unitIds];
      void i;
    }
  });

  (spec.domains ?? []).forEach((d, i) => {
    const domains = [d.name, ...(d.aliases ?? [])];
    // A domain claimed twice is reported once, as such, not again as a duplicate site.
    if (!domains.map((domain) => b.claimDomain(domain, at(`/spec/domains/${i}`))).every(Boolean)) return;
    const tls = d.tls ?? 'acme';
    const siteDeps = [...unitIds, ...(rootId ? [rootId] : [])];
    if (tls === 'acme' || tls === 'self-signed') {
      siteDeps.push(b.add<CertificateSpec>(owner, 'certificate', d.name, { name: d.name, domains, issuer: tls }, at(`/spec/domains/${i}`), opts));
    }
    if (typeof tls === 'object') {
      b.checkPath(tls.certificate, at(`/spec/domains/${i}/tls/certificate`));
      b.checkPath(tls.key, at(`/spec/domains/${i}/tls/key`));
    }
    const site: SiteSpec = {
      site: d.name,
      domains,
      tls,
      redirectHttp: d.redirectHttp ?? tls !== 'none',
      locations: d.locations ?? [],
      ...(d.responseHeaders && Object.keys(d.responseHeaders).length > 0 ? { headers: d.responseHeaders } : {}),
    };
    if (root !== undefined) {
      site.root = root;
      if (!rootId) site.rootMustExist = true;
    } else if (spec.service?.port !== undefined) {
      site.upstream = {
        host: spec.service.bind && spec.service.bind !== '0.0.0.0' && spec.service.bind !== '::' ? spec.service.bind : '127.0.0.1',
        port: spec.service.port,
      };
    }
    if (d.gate) {
      site.gate = {
        ...(d.gate.basicAuth ? { basicAuth: { realm: d.gate.basicAuth.realm ?? name, htpasswd: d.gate.basicAuth.htpasswd } } : {}),
        ...(d.gate.allow ? { allow: d.gate.allow } : {}),
      };
    }
    for (const [j, loc] of (d.locations ?? []).entries()) if (loc.root) b.checkPath(loc.root, at(`/spec/domains/${i}/locations/${j}/root`));
    b.add<SiteSpec>(owner, 'site', d.name, site, at(`/spec/domains/${i}`), {
      ...opts,
      dependsOn: siteDeps,
      ...(site.rootMustExist ? { fieldOrigins: { root: rootAt } } : {}),
    });
  });
  if (spec.static?.root?.startsWith('/')) b.checkPath(spec.static.root, at('/spec/static/root'));
}

/**
 * A static site's web root under the project's own paths is HostKit's to create,
 * readable by nginx's group (owned by the project's user when something of the
 * project runs, so it can write there; else by root). Elsewhere it is the
 * operator's: the site only checks that it exists (see expandForHost).
 */
function addWebRoot(
  b: HostBuilder,
  project: ProjectManifest,
  root: string,
  origin: Location,
  runs: { user: string; dependsOn: string[] } | undefined,
): string | undefined {
  if (!projectRoots(project.metadata.name, b.host.policy).some((r) => within(root, r))) return undefined;
  if (runs && root === workingDirectory(project)) return resourceId('directory', root); // planned as the working directory
  const spec: DirectorySpec = { path: root, owner: runs?.user ?? 'root', group: WEB_GROUP, mode: 0o750 };
  return b.add<DirectorySpec>(`Project/${project.metadata.name}`, 'directory', root, spec, origin, {
    project: project.metadata.name,
    dependsOn: runs?.dependsOn ?? [],
  });
}

/** The working directory's group and mode: nginx reads a web root that is the directory, and passes through one inside it. */
function webAccess(dir: string, root: string | undefined, user: string): { group: string; mode: number } {
  if (root === dir) return { group: WEB_GROUP, mode: 0o750 };
  // nginx is not in the project's group: others may traverse to the web root, not list.
  if (root !== undefined && within(root, dir)) return { group: user, mode: 0o751 };
  return { group: user, mode: 0o750 };
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
