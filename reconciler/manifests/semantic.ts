import { isIP } from 'node:net';
import { error, warning, type Diagnostic } from '../core/diagnostics.js';
import type { Resource } from '../core/resource.js';
import {
  expandForHost,
  hostSettings,
  pathProblem,
  placedOn,
  projectUser,
  RESERVED_PG_NAMES,
  RESERVED_USERS,
  SYSTEM_USERS,
  pgName,
  type HostSettings,
} from './expand.js';
import { PRIVILEGED_GROUPS } from '../drivers/account/manifest.js';
import { runtimeName } from '../drivers/package/host.js';
import { checkPolicy } from './policy.js';
import { scheduleError, toOnCalendar } from './schedule.js';
import type { AnyManifest, HostManifest, Manifest, PrimitiveManifest, ProjectManifest, SecretRef } from './types.js';

// Checks JSON Schema cannot express: names unique, references that resolve,
// no cycles, and per host no claim made twice.
export function checkManifests(manifests: readonly Manifest[]): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const byKey = new Map<string, Manifest>();
  for (const m of manifests) {
    const key = `${m.kind}/${m.name}`;
    const first = byKey.get(key);
    if (first) {
      diagnostics.push(
        error(
          'duplicate name',
          `${key} is already declared at ${first.source.file}:${first.source.locate('/metadata/name').line ?? 0}`,
          m.source.locate('/metadata/name'),
        ),
      );
    } else byKey.set(key, m);
  }
  // Later duplicates are reported above and left out of the per-host checks (no echo of the same problem).
  const unique = [...byKey.values()];
  const hosts = unique.filter((m): m is Manifest<HostManifest> => m.kind === 'Host').map(hostSettings);
  const hostNames = new Set(hosts.map((h) => h.name));
  // Each manifest's secret references, found once for the checks here and the policy's.
  const refs = new Map<Manifest, ReturnType<typeof secretRefs>>();
  const refsOf = (m: Manifest) => {
    let found = refs.get(m);
    if (!found) refs.set(m, (found = secretRefs(m.value)));
    return found;
  };

  for (const m of manifests) {
    if (m.kind === 'Host') continue;
    const v = m.value as ProjectManifest | PrimitiveManifest;
    const placement = v.spec.placement;
    (placement.hosts ?? []).forEach((h, i) => {
      if (!hostNames.has(h)) {
        diagnostics.push(
          error('unknown host', `no Host manifest named "${h}"; add hosts/${h}.yaml or fix the name`, m.source.locate(`/spec/placement/hosts/${i}`)),
        );
      }
    });
    if (!placement.selector && (placement.hosts ?? []).length === 0) {
      diagnostics.push(
        warning('placement matches no host', 'placement names no host and no selector, so this runs nowhere', m.source.locate('/spec/placement')),
      );
    }
    if (placement.selector && !hosts.some((h) => placedOn({ selector: placement.selector! }, h))) {
      diagnostics.push(
        warning(
          'placement matches no host',
          `no host has labels ${JSON.stringify(placement.selector.matchLabels)}`,
          m.source.locate('/spec/placement/selector'),
        ),
      );
    }
    (v.metadata.dependsOn ?? []).forEach((ref, i) => {
      if (!byKey.has(ref))
        diagnostics.push(error('unknown reference', `dependsOn names ${ref}, which is not declared`, m.source.locate(`/metadata/dependsOn/${i}`)));
    });
    const placedHosts = hosts.filter((h) => placedOn(placement, h));
    for (const { ref, pointer } of refsOf(m)) {
      for (const h of placedHosts) {
        if ('age' in ref && !h.manifest.value.spec?.age) {
          diagnostics.push(error('missing age identity', `an age-encrypted secret needs spec.age.identityFile on host ${h.name}`, m.source.locate(pointer)));
        }
        // A secret file is read by the agent as root: keep manifests from pointing it at /etc/shadow or the age key.
        if ('file' in ref) {
          const problem = pathProblem(ref.file, h, m.source.locate(`${pointer}/file`));
          if (problem) diagnostics.push(problem);
          else if (ref.file === h.manifest.value.spec?.age?.identityFile) {
            diagnostics.push(
              error('secret file not allowed', `${ref.file} is host ${h.name}'s age identity; it cannot be a secret value`, m.source.locate(`${pointer}/file`)),
            );
          }
        }
      }
    }
    if (m.kind === 'Account') {
      const spec = (v as PrimitiveManifest<'Account'>).spec;
      const user = spec.user ?? m.name;
      if (RESERVED_USERS.has(user)) {
        diagnostics.push(
          error(
            'reserved name',
            `"${user}" is a system account; HostKit manages only accounts of its own`,
            m.source.locate(spec.user ? '/spec/user' : '/metadata/name'),
          ),
        );
      }
      (spec.groups ?? []).forEach((g, i) => {
        if (PRIVILEGED_GROUPS.has(g)) {
          diagnostics.push(
            warning(
              'privileged group',
              `membership of "${g}" gives ${user} root-equivalent power; make sure it is meant`,
              m.source.locate(`/spec/groups/${i}`),
            ),
          );
        }
      });
    }
    if (m.kind === 'Project') diagnostics.push(...checkProject(m as Manifest<ProjectManifest>));
    diagnostics.push(...checkSchedules(m));
    if (m.kind === 'PostgresRole' || m.kind === 'PostgresDatabase') {
      const s = v.spec as { role?: string; database?: string };
      const name = s.role ?? s.database ?? pgName(m.name);
      if (RESERVED_PG_NAMES.has(name) || name.startsWith('pg_')) {
        diagnostics.push(
          error(
            'reserved name',
            `${name} is reserved by PostgreSQL`,
            m.source.locate(s.role ? '/spec/role' : s.database ? '/spec/database' : '/metadata/name'),
          ),
        );
      }
    }
  }
  diagnostics.push(...checkPolicy(unique, hosts, refsOf));
  diagnostics.push(...checkNetworks(unique));
  const cycles = manifestCycles(unique, byKey);
  diagnostics.push(...cycles);

  for (const host of hosts) {
    const expansion = expandForHost(unique, host);
    diagnostics.push(...expansion.diagnostics);
    // Resource cycles follow from manifest cycles; report only the cause.
    diagnostics.push(...checkResources(expansion.resources, host, cycles.length === 0));
  }
  return dedupe(diagnostics);
}

function checkProject(m: Manifest<ProjectManifest>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const spec = m.value.spec;
  const user = projectUser(m.value);
  if (RESERVED_USERS.has(user)) {
    out.push(error('reserved name', `a project may not run as "${user}"; pick its own user`, m.source.locate(spec.user ? '/spec/user' : '/metadata/name')));
  }
  // A project may be only workers or timers; but a declared service needs its command, and a
  // non-static project needs something to run.
  const runsSomething = (spec.workers ?? []).length > 0 || (spec.timers ?? []).length > 0;
  if (spec.runtime !== 'static' && !spec.service?.command && (spec.service !== undefined || !runsSomething)) {
    out.push(
      error(
        'missing service command',
        `runtime ${runtimeName(spec.runtime)} needs spec.service.command (or workers or timers to run)`,
        m.source.locate(spec.service ? '/spec/service' : '/spec'),
      ),
    );
  }
  if (spec.runtime !== 'static' && (spec.domains ?? []).length > 0 && spec.service?.port === undefined) {
    out.push(error('missing service port', 'domains proxy to the service, so spec.service.port is required', m.source.locate('/spec/domains')));
  }
  // Releases (drivers/release): what only means something with a source.
  if (!spec.source) {
    if (spec.static?.root !== undefined && !spec.static.root.startsWith('/')) {
      out.push(
        error(
          'needs a source',
          `static.root ${spec.static.root} is relative: it resolves inside the current release, so spec.source is required`,
          m.source.locate('/spec/static/root'),
        ),
      );
    }
    for (const field of ['build', 'releases', 'shared'] as const) {
      if (spec[field] !== undefined)
        out.push(error('needs a source', `spec.${field} applies to releases of spec.source, which is not set`, m.source.locate(`/spec/${field}`)));
    }
  }
  if (spec.database) {
    for (const [field, value] of [
      ['role', spec.database.role ?? pgName(m.name)],
      ['name', spec.database.name ?? pgName(m.name)],
    ] as const) {
      if (RESERVED_PG_NAMES.has(value) || value.startsWith('pg_')) {
        out.push(
          error('reserved name', `${value} is reserved by PostgreSQL`, m.source.locate(spec.database[field] ? `/spec/database/${field}` : '/spec/database')),
        );
      }
    }
  }
  return out;
}

// Every schedule, placed on a host or not, by the rules expand applies (schedule.ts): nothing that validates fails in a plan.
function checkSchedules(m: Manifest): Diagnostic[] {
  const schedules =
    m.kind === 'Project'
      ? ((m.value as ProjectManifest).spec.timers ?? []).map((t, i) => ({
          field: `timers[${i}].schedule`,
          schedule: t.schedule,
          pointer: `/spec/timers/${i}/schedule`,
        }))
      : m.kind === 'Unit' && (m.value as PrimitiveManifest<'Unit'>).spec.schedule !== undefined
        ? [{ field: 'schedule', schedule: (m.value as PrimitiveManifest<'Unit'>).spec.schedule!, pointer: '/spec/schedule' }]
        : [];
  const out: Diagnostic[] = [];
  for (const { field, schedule, pointer } of schedules) {
    const converted = toOnCalendar(schedule);
    if ('error' in converted) out.push(scheduleError(field, schedule, converted.error, m.source.locate(pointer)));
  }
  return out;
}

// Owners and database owners must be declared on the host (or be a system user).
function checkResources(resources: readonly Resource[], host: HostSettings, cycles: boolean): Diagnostic[] {
  const out: Diagnostic[] = [];
  const ids = new Set(resources.map((r) => r.id));
  for (const r of resources) {
    const s = r.spec as { owner?: string; group?: string; user?: string };
    if (r.kind === 'file' || r.kind === 'envfile' || r.kind === 'directory' || r.kind === 'unit') {
      const fields = r.kind === 'unit' ? (['user', 'group'] as const) : (['owner', 'group'] as const);
      const seen = new Set<string>();
      for (const field of fields) {
        const u = s[field];
        if (!u || seen.has(u) || SYSTEM_USERS.has(u) || u === 'nogroup' || ids.has(`account/${u}`)) continue;
        seen.add(u);
        out.push(
          error(
            'unknown user',
            `${r.id} uses "${u}", which is neither declared (Account or a project's user) on host ${host.name} nor a system user`,
            r.fieldOrigins?.[field] ?? r.origin,
          ),
        );
      }
    }
    if (r.kind === 'pgdatabase' && !(r.spec as { drop?: boolean }).drop) {
      const owner = (r.spec as { owner: string }).owner;
      const ownerRole = resources.find((o) => o.id === `pgrole/${owner}`);
      if (ownerRole && (ownerRole.spec as { drop?: boolean }).drop) {
        out.push(
          error(
            'owner is dropped',
            `database ${(r.spec as { database: string }).database} is kept, but its owner role "${owner}" is declared with drop: true`,
            r.fieldOrigins?.owner ?? r.origin,
          ),
        );
      }
      if (!ownerRole) {
        out.push(error('unknown reference', `database owner role "${owner}" is not declared on host ${host.name}`, r.fieldOrigins?.owner ?? r.origin));
      }
    }
    if (r.kind === 'certificate' && (r.spec as { issuer: string }).issuer === 'acme' && !host.manifest.value.spec?.acme) {
      out.push(
        error(
          'missing ACME settings',
          `${r.id} is issued with ACME, but host ${host.name} has no spec.acme (account email); add it or use tls: self-signed`,
          r.origin,
        ),
      );
    }
  }
  if (cycles) out.push(...resourceCycles(resources));
  return out;
}

// CIDRs that match the pattern but are not addresses (999.1.1.1, ::::).
function checkNetworks(manifests: readonly Manifest[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const m of manifests) {
    const walk = (node: unknown, pointer: string, key: string) => {
      if (Array.isArray(node)) {
        node.forEach((item, i) => {
          if ((key === 'from' || key === 'allow') && typeof item === 'string' && !validCidr(item)) {
            out.push(error('invalid CIDR', `${item} is not an IPv4 or IPv6 address or network`, m.source.locate(`${pointer}/${i}`)));
          } else walk(item, `${pointer}/${i}`, '');
        });
      } else if (node !== null && typeof node === 'object') {
        for (const [k, child] of Object.entries(node)) walk(child, `${pointer}/${k}`, k);
      }
    };
    walk(m.value.spec, '/spec', '');
  }
  return out;
}

export function validCidr(text: string): boolean {
  const [address, prefix, extra] = text.split('/');
  if (extra !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  const n = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && n <= (family === 4 ? 32 : 128);
}

// Objects that may look like a secret reference and are none: a Host's spec.ssh (read on the operator's
// machine: commands/targets.ts) and a placement's labels (`matchLabels: { env: prod }`).
const NOT_SECRETS = new Set(['/spec/ssh', '/spec/placement']);

function secretRefs(v: AnyManifest): { ref: SecretRef; pointer: string }[] {
  const found: { ref: SecretRef; pointer: string }[] = [];
  const walk = (node: unknown, pointer: string) => {
    if (node === null || typeof node !== 'object' || NOT_SECRETS.has(pointer)) return;
    const keys = Object.keys(node);
    if (
      !Array.isArray(node) &&
      keys.length === 1 &&
      ['file', 'env', 'age'].includes(keys[0]!) &&
      typeof (node as Record<string, unknown>)[keys[0]!] === 'string'
    ) {
      found.push({ ref: node as SecretRef, pointer });
      return;
    }
    for (const [k, child] of Object.entries(node)) walk(child, `${pointer}/${k}`);
  };
  walk(v.spec, '/spec');
  return found;
}

function manifestCycles(manifests: readonly Manifest[], byKey: Map<string, Manifest>): Diagnostic[] {
  const edges = new Map<string, string[]>();
  for (const m of manifests)
    edges.set(
      `${m.kind}/${m.name}`,
      [...(m.value.metadata.dependsOn ?? [])].filter((r) => byKey.has(r)),
    );
  return findCycles(edges).map((cycle) => {
    const m = byKey.get(cycle[0]!)!;
    return error('dependency cycle', `${cycle.join(' -> ')} -> ${cycle[0]}`, m.source.locate('/metadata/dependsOn'));
  });
}

function resourceCycles(resources: readonly Resource[]): Diagnostic[] {
  const byId = new Map(resources.map((r) => [r.id, r]));
  const edges = new Map(resources.map((r) => [r.id, r.dependsOn.filter((d) => byId.has(d))]));
  return findCycles(edges).map((cycle) => error('dependency cycle', `${cycle.join(' -> ')} -> ${cycle[0]}`, byId.get(cycle[0]!)!.origin));
}

/** Each elementary cycle found by depth-first search, reported once. */
export function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (node: string) => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'visiting') {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join('|');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

// The same problem found for several hosts is reported once.
function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.summary}|${d.detail}|${d.location?.file}|${d.location?.line}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
