import { error, type Diagnostic, type Location } from '../core/diagnostics.js';
import { ENV_DIRECTORY, placedOn, pgName, projectUser, type HostSettings } from './expand.js';
import type { PrimitivePolicy, ProjectRoom } from '../drivers/manifest-types.js';
import { isHostLevel, PROJECT_ROOTS, projectRoots, protectedBelow, protectedProblem, within } from './host-policy.js';
import { primitive } from './primitives.js';
import type { Manifest, PrimitiveManifest, ProjectManifest, SecretRef } from './types.js';

// Who may change what. A manifest under one of the Host's host-level paths may
// declare anything the schema allows (within allowedRoots); any other manifest
// belongs to one project and may touch only what that project owns. Every check
// looks at one manifest at a time against lookup maps built once.

export const POLICY_SUMMARY = 'not allowed in a project manifest';

/** Extensions that reach outside the database (untrusted languages, server files): host-level only. */
export const UNTRUSTED_EXTENSIONS = new Set(['plpythonu', 'plpython2u', 'plpython3u', 'plperlu', 'pltclu', 'plv8u', 'adminpack', 'file_fdw']);

type Grantable = 'paths' | 'secrets' | 'env' | 'ports' | 'packages';

// Facts about the repository every check needs, gathered in one pass.
interface Index {
  projects: Map<string, Manifest<ProjectManifest>>;
  /** Every project name in the repository (Projects and primitives' metadata.project). */
  names: Set<string>;
  /** Who runs as or declares each user: a project name, or '' for a manifest without one. */
  users: Map<string, string>;
  /** The project that serves each domain (its domains and their aliases, its Sites). */
  domains: Map<string, string>;
}

function buildIndex(manifests: readonly Manifest[]): Index {
  const projects = new Map<string, Manifest<ProjectManifest>>();
  const names = new Set<string>();
  const users = new Map<string, string>();
  const domains = new Map<string, string>();
  for (const m of manifests) {
    if (m.kind === 'Project') {
      const p = m as Manifest<ProjectManifest>;
      projects.set(m.name, p);
      names.add(m.name);
      users.set(projectUser(p.value), m.name);
      for (const d of p.value.spec.domains ?? []) for (const name of [d.name, ...(d.aliases ?? [])]) domains.set(name, m.name);
    } else if (m.kind !== 'Host') {
      const project = (m.value as PrimitiveManifest).metadata.project;
      if (project) names.add(project);
      if (project && m.kind === 'Site') for (const name of (m.value as PrimitiveManifest<'Site'>).spec.domains) domains.set(name, project);
    }
  }
  for (const m of manifests) {
    if (m.kind !== 'Account') continue;
    const v = m.value as PrimitiveManifest<'Account'>;
    const user = v.spec.user ?? m.name;
    if (!users.has(user)) users.set(user, v.metadata.project ?? '');
  }
  return { projects, names, users, domains };
}

// The project a name such as `api-worker` or `api-session-key` belongs to: the longest project name it starts with.
function nameOwner(name: string, index: Index): string | undefined {
  for (let end = name.length; end > 0; end = name.lastIndexOf('-', end - 1)) {
    const candidate = name.slice(0, end);
    if (index.names.has(candidate)) return candidate;
  }
  return undefined;
}

/** One project's rights on one host: what it owns plus what the Host grants it. */
class Room implements ProjectRoom {
  readonly project: string;
  readonly host: HostSettings;
  readonly user: string;
  private readonly index: Index;
  private readonly roots: string[];
  private readonly ports: Set<number>;
  private readonly env: Set<string>;
  private readonly secretPaths: string[];

  constructor(project: string, host: HostSettings, index: Index) {
    this.project = project;
    this.host = host;
    this.index = index;
    const grant = host.policy.grants[project] ?? {};
    const manifest = index.projects.get(project);
    this.user = manifest ? projectUser(manifest.value) : project;
    this.roots = [...projectRoots(project, host.policy), `${ENV_DIRECTORY}/${project}.env`];
    const port = manifest?.value.spec.service?.port;
    this.ports = new Set([...(port !== undefined ? [port] : []), ...(grant.ports ?? [])]);
    this.env = new Set([...host.policy.secretEnv, ...(grant.env ?? [])]);
    this.secretPaths = grant.secrets ?? [];
  }

  ownsPath(p: string): boolean {
    return this.roots.some((root) => within(p, root));
  }

  ownsPort(port: number): boolean {
    return this.ports.has(port);
  }

  ownsDomain(domain: string): boolean {
    return this.index.domains.get(domain) === this.project;
  }

  ownsEnv(name: string): boolean {
    return this.env.has(name);
  }

  ownsSecret(file: string): boolean {
    if (this.secretPaths.some((s) => within(file, s))) return true;
    return this.host.policy.secretRoots.some((root) => {
      if (within(file, `${root}/${this.project}`) && file !== `${root}/${this.project}`) return true;
      const rest = file.startsWith(root + '/') ? file.slice(root.length + 1) : undefined;
      return rest !== undefined && !rest.includes('/') && rest.startsWith(`${this.project}-`) && nameOwner(rest, this.index) === this.project;
    });
  }

  ownsUnitName(name: string): boolean {
    return nameOwner(name, this.index) === this.project;
  }
}

// Diagnostics of one manifest on one host.
class Checker implements PrimitivePolicy {
  readonly out: Diagnostic[] = [];
  readonly host: HostSettings;
  private readonly m: Manifest;
  private readonly room: Room | undefined;

  constructor(m: Manifest, host: HostSettings, project: string | undefined, index: Index) {
    this.m = m;
    this.host = host;
    this.room = project === undefined ? undefined : new Room(project, host, index);
  }

  at(pointer: string): Location {
    return this.m.source.locate(pointer);
  }

  report(diagnostic: Diagnostic): void {
    this.out.push(diagnostic);
  }

  /** A policy refusal: `grant` names the spec.policy.grants field that could allow it, if any. */
  refuse(rule: string, what: string, pointer: string, grant?: Grantable): void {
    const paths = this.host.policy.hostLevelPaths.join(', ');
    const how = grant
      ? `Declare it in a host-level path (${paths}) or grant it in the Host's spec.policy.grants.${this.room?.project ?? 'PROJECT'}.${grant}.`
      : `Declare it in a host-level path (${paths}).`;
    this.out.push(error(POLICY_SUMMARY, `rule ${rule}: ${what}. ${how}`, this.at(pointer)));
  }

  /** A path HostKit writes, or serves, or runs in: never a protected path; from a project, inside its own roots. */
  path(p: string, pointer: string, what: string): void {
    const problem = protectedProblem(p, this.host.policy);
    if (problem) {
      this.out.push(error('path never writable', `rule never-writable: ${problem}; no manifest may declare it (host ${this.host.name})`, this.at(pointer)));
      return;
    }
    const room = this.room;
    if (room && !room.ownsPath(p)) {
      this.refuse(
        'project-path',
        `${what} ${p} is outside project ${room.project}'s own paths (${PROJECT_ROOTS.map((r) => `${r}/${room.project}`).join(', ')} and ${ENV_DIRECTORY}/${room.project}.env)`,
        pointer,
        'paths',
      );
    }
  }

  /** A declared directory above a protected path must stay root's and not writable by others. */
  directory(p: string, owner: string, group: string, mode: number, pointer: string): void {
    const below = protectedBelow(p, this.host.policy);
    if (below && (owner !== 'root' || group !== 'root' || (mode & 0o022) !== 0)) {
      this.out.push(
        error(
          'path never writable',
          `rule never-writable: ${p} holds ${below.why} (${below.path}); it may only be declared owned by root:root and not group- or world-writable`,
          this.at(pointer),
        ),
      );
    }
  }

  secret(ref: SecretRef, pointer: string): void {
    const policy = this.host.policy;
    const room = this.room;
    if ('file' in ref) {
      if (!policy.secretRoots.some((root) => within(ref.file, root) && ref.file !== root)) {
        this.out.push(
          error(
            'secret outside secret roots',
            `rule secret-root: ${ref.file} is not under the secret roots of host ${this.host.name} (${policy.secretRoots.join(', ')}); put the file there (set the Host's spec.secrets.roots to change them)`,
            this.at(`${pointer}/file`),
          ),
        );
      } else if (room && !room.ownsSecret(ref.file)) {
        this.refuse(
          'secret-owner',
          `${ref.file} is not project ${room.project}'s secret (its own are ${policy.secretRoots.map((r) => `${r}/${room.project}/... or ${r}/${room.project}-*`).join(', ')})`,
          `${pointer}/file`,
          'secrets',
        );
      }
    } else if ('env' in ref) {
      if (room && !room.ownsEnv(ref.env)) {
        this.refuse(
          'secret-env',
          `the agent variable ${ref.env} is neither listed in the Host's spec.secrets.env nor granted to project ${room.project}`,
          `${pointer}/env`,
          'env',
        );
      } else if (!room && !policy.secretEnv.has(ref.env)) {
        this.out.push(
          error(
            'secret variable not listed',
            `rule secret-env: the agent variable ${ref.env} is not listed in host ${this.host.name}'s spec.secrets.env; add it there to let manifests read it`,
            this.at(`${pointer}/env`),
          ),
        );
      }
    }
  }

  /** Who may own a project's files: root or its own user; its group, root's, or www-data (nginx reads static files). */
  ownership(owner: string | undefined, group: string | undefined, pointer: string): void {
    const room = this.room;
    if (!room) return;
    if (owner !== undefined && owner !== 'root' && owner !== room.user)
      this.refuse('file-owner', `owner "${owner}" is neither root nor project ${room.project}'s own user "${room.user}"`, `${pointer}/owner`);
    if (group !== undefined && !['root', room.user, 'www-data'].includes(group))
      this.refuse('file-owner', `group "${group}" is not project ${room.project}'s own group "${room.user}" (nor root, nor www-data)`, `${pointer}/group`);
  }

  user(user: string, pointer: string, what: string): void {
    const room = this.room;
    if (room && user !== room.user) this.refuse('run-as', `${what} runs as "${user}", not as project ${room.project}'s own user "${room.user}"`, pointer);
  }

  port(port: number, pointer: string): void {
    const room = this.room;
    if (room && !room.ownsPort(port))
      this.refuse('site-port', `port ${port} is not a port project ${room.project} declares (its spec.service.port)`, pointer, 'ports');
  }

  sshPort(port: number, pointer: string): void {
    if (this.room && port === this.host.policy.sshPort) {
      this.refuse('firewall-ssh', `port ${port} is host ${this.host.name}'s SSH port; only the Host's spec.firewall.ssh opens it`, pointer);
    }
  }

  pgName(name: string, pointer: string, what: string): void {
    const room = this.room;
    if (room && name !== pgName(room.project)) {
      this.refuse('pg-name', `${what} "${name}" is not project ${room.project}'s own (${pgName(room.project)})`, pointer);
    }
  }

  extensions(list: readonly string[] | undefined, pointer: string): void {
    if (!this.room) return;
    (list ?? []).forEach((e, i) => {
      if (UNTRUSTED_EXTENSIONS.has(e))
        this.refuse('pg-extension', `extension ${e} reaches outside the database (untrusted language or server files)`, `${pointer}/${i}`);
    });
  }

  drop(drop: boolean | undefined, pointer: string): void {
    if (this.room && drop) this.refuse('pg-drop', 'dropping a role or database destroys data for good', pointer);
  }

  get project(): Room | undefined {
    return this.room;
  }
}

// The checks of each kind; `c.project` is undefined for a host-level manifest.
function checkProject(c: Checker, m: Manifest<ProjectManifest>, index: Index): void {
  const spec = m.value.spec;
  const room = c.project;
  if (room && spec.user && spec.user !== m.name) {
    const holder = index.users.get(spec.user);
    if (holder !== undefined && holder !== m.name) {
      c.refuse(
        'run-as',
        `"${spec.user}" is ${holder ? `project ${holder}'s user` : 'an account declared by another manifest'}, not project ${m.name}'s own`,
        '/spec/user',
      );
    }
    const named = index.projects.get(spec.user);
    if (named && named !== m) c.refuse('run-as', `"${spec.user}" is the name of project ${spec.user}`, '/spec/user');
  }
  if (spec.service?.workingDirectory) c.path(spec.service.workingDirectory, '/spec/service/workingDirectory', 'workingDirectory');
  (spec.service?.isolation?.writablePaths ?? []).forEach((p, i) => c.path(p, `/spec/service/isolation/writablePaths/${i}`, 'writable path'));
  if (spec.static?.root?.startsWith('/')) c.path(spec.static.root, '/spec/static/root', 'static root');
  (spec.domains ?? []).forEach((d, i) => {
    (d.locations ?? []).forEach((l, j) => {
      if (l.root) c.path(l.root, `/spec/domains/${i}/locations/${j}/root`, 'location root');
      if (l.port !== undefined) c.port(l.port, `/spec/domains/${i}/locations/${j}/port`);
    });
    if (typeof d.tls === 'object' && room) {
      for (const field of ['certificate', 'key'] as const) {
        const p = d.tls[field];
        const problem = protectedProblem(p, c.host.policy);
        if (problem && !room.ownsSecret(p)) c.refuse('project-path', `TLS ${field} ${p}: ${problem}`, `/spec/domains/${i}/tls/${field}`, 'paths');
        else if (!problem && !room.ownsPath(p) && !room.ownsSecret(p))
          c.refuse(
            'project-path',
            `TLS ${field} ${p} is neither in project ${room.project}'s own paths nor its secrets`,
            `/spec/domains/${i}/tls/${field}`,
            'paths',
          );
      }
    }
  });
  if (spec.database) {
    if (spec.database.name) c.pgName(spec.database.name, '/spec/database/name', 'database');
    if (spec.database.role) c.pgName(spec.database.role, '/spec/database/role', 'role');
    c.extensions(spec.database.extensions, '/spec/database/extensions');
  }
  (spec.firewall ?? []).forEach((o, i) => c.sshPort(o.port, `/spec/firewall/${i}/port`));
  if (room) checkProjectPackages(c, room.project, spec);
}

// A package's scripts run as root and may start services for the whole host: a project-level
// Project installs only the names the Host grants it (its node major needs none), and purges none.
function checkProjectPackages(c: Checker, project: string, spec: ProjectManifest['spec']): void {
  const granted = new Set(c.host.policy.grants[project]?.packages ?? []);
  (spec.packages ?? []).forEach((p, i) => {
    const e = typeof p === 'string' ? { name: p } : p;
    const pointer = typeof p === 'string' ? `/spec/packages/${i}` : `/spec/packages/${i}/name`;
    if (e.remove) c.refuse('package-remove', `purging ${e.name} removes it for the whole host`, `/spec/packages/${i}/remove`);
    else if (!granted.has(e.name)) c.refuse('project-package', `package ${e.name} is not granted to project ${project}`, pointer, 'packages');
  });
  const runtime = spec.runtime;
  if (typeof runtime === 'object' && typeof runtime.node === 'object' && !granted.has(runtime.node.package)) {
    c.refuse('project-package', `package ${runtime.node.package} is not granted to project ${project}`, '/spec/runtime/node/package', 'packages');
  }
}

// A primitive's own checks are its driver folder's (drivers/NAME/manifest.ts).
function checkPrimitive(c: Checker, m: Manifest<PrimitiveManifest>): void {
  primitive(m.kind).policy?.(m, c);
}

/**
 * Policy diagnostics of every manifest on every host it is placed on. `secretRefs`
 * lists a manifest's secret references (shared with the other semantic checks).
 */
export function checkPolicy(
  manifests: readonly Manifest[],
  hosts: readonly HostSettings[],
  secretRefs: (m: Manifest) => { ref: SecretRef; pointer: string }[],
): Diagnostic[] {
  const index = buildIndex(manifests);
  const out: Diagnostic[] = [];
  for (const host of hosts) {
    const m = host.manifest;
    if (!isHostLevel(m.source.file, host.policy)) {
      out.push(
        error(
          POLICY_SUMMARY,
          `rule host-level-path: the Host manifest ${m.name} sits in ${m.source.file}, outside its own host-level paths (${host.policy.hostLevelPaths.join(', ')}). Move it there or change spec.policy.hostLevelPaths.`,
          m.source.locate('/metadata/name'),
        ),
      );
    }
    const c = new Checker(m, host, undefined, index);
    for (const { ref, pointer } of secretRefs(m)) c.secret(ref, pointer);
    out.push(...c.out);
  }
  for (const m of manifests) {
    if (m.kind === 'Host') continue;
    const v = m.value as ProjectManifest | PrimitiveManifest;
    const refs = secretRefs(m);
    for (const host of hosts) {
      if (!placedOn(v.spec.placement, host)) continue;
      let project: string | undefined;
      if (!isHostLevel(m.source.file, host.policy)) {
        project = m.kind === 'Project' ? m.name : (v as PrimitiveManifest).metadata.project;
        if (project === undefined) {
          const paths = host.policy.hostLevelPaths.join(', ');
          out.push(
            error(
              POLICY_SUMMARY,
              `rule primitive-owner: ${m.kind}/${m.name} names no project. Set metadata.project to the project it belongs to, or declare it in a host-level path (${paths}).`,
              m.source.locate('/metadata/name'),
            ),
          );
          continue;
        }
      }
      const c = new Checker(m, host, project, index);
      if (m.kind === 'Project') checkProject(c, m as Manifest<ProjectManifest>, index);
      else checkPrimitive(c, m as Manifest<PrimitiveManifest>);
      for (const { ref, pointer } of refs) c.secret(ref, pointer);
      out.push(...c.out);
    }
  }
  return out;
}
