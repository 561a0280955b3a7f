import { error, warning, type Diagnostic } from '../core/diagnostics.js';
import type { Resource } from '../core/resource.js';
import { expandForHost, hostSettings, placedOn, projectUser, RESERVED_PG_NAMES, RESERVED_USERS, SYSTEM_USERS, pgName, type HostSettings } from './expand.js';
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
  const hosts = manifests.filter((m): m is Manifest<HostManifest> => m.kind === 'Host').map(hostSettings);
  const hostNames = new Set(hosts.map((h) => h.name));

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
    for (const { ref, pointer } of secretRefs(v)) {
      if ('age' in ref) {
        for (const h of placedHosts) {
          if (!h.manifest.value.spec?.age) {
            diagnostics.push(error('missing age identity', `an age-encrypted secret needs spec.age.identityFile on host ${h.name}`, m.source.locate(pointer)));
          }
        }
      }
    }
    if (m.kind === 'Project') diagnostics.push(...checkProject(m as Manifest<ProjectManifest>, placedHosts));
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
  diagnostics.push(...manifestCycles(manifests, byKey));

  for (const host of hosts) {
    const expansion = expandForHost(manifests, host);
    diagnostics.push(...expansion.diagnostics);
    diagnostics.push(...checkResources(expansion.resources, host));
  }
  return dedupe(diagnostics);
}

function checkProject(m: Manifest<ProjectManifest>, hosts: HostSettings[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const spec = m.value.spec;
  const user = projectUser(m.value);
  if (RESERVED_USERS.has(user)) {
    out.push(error('reserved name', `a project may not run as "${user}"; pick its own user`, m.source.locate(spec.user ? '/spec/user' : '/metadata/name')));
  }
  if (spec.runtime !== 'static' && !spec.service?.command) {
    out.push(error('missing service command', `runtime ${spec.runtime} needs spec.service.command`, m.source.locate(spec.service ? '/spec/service' : '/spec')));
  }
  if (spec.runtime !== 'static' && (spec.domains ?? []).length > 0 && spec.service?.port === undefined) {
    out.push(error('missing service port', 'domains proxy to the service, so spec.service.port is required', m.source.locate('/spec/domains')));
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
  (spec.domains ?? []).forEach((d, i) => {
    if ((d.tls ?? 'acme') === 'acme') {
      for (const h of hosts) {
        if (!h.manifest.value.spec?.acme) {
          out.push(
            error(
              'missing ACME settings',
              `domain ${d.name} uses tls: acme, but host ${h.name} has no spec.acme (email)`,
              m.source.locate(`/spec/domains/${i}`),
            ),
          );
        }
      }
    }
  });
  return out;
}

// Owners and database owners must be declared on the host (or be a system user).
function checkResources(resources: readonly Resource[], host: HostSettings): Diagnostic[] {
  const out: Diagnostic[] = [];
  const ids = new Set(resources.map((r) => r.id));
  for (const r of resources) {
    const s = r.spec as { owner?: string; group?: string; user?: string };
    if (r.kind === 'file' || r.kind === 'envfile' || r.kind === 'directory' || r.kind === 'unit') {
      for (const u of [s.owner, s.group, r.kind === 'unit' ? s.user : undefined]) {
        if (u && !SYSTEM_USERS.has(u) && u !== 'nogroup' && !ids.has(`account/${u}`)) {
          out.push(
            error(
              'unknown user',
              `${r.id} uses "${u}", which is neither declared (Account or a project's user) on host ${host.name} nor a system user`,
              r.origin,
            ),
          );
        }
      }
    }
    if (r.kind === 'pgdatabase') {
      const owner = (r.spec as { owner: string }).owner;
      if (!ids.has(`pgrole/${owner}`)) out.push(error('unknown reference', `database owner role "${owner}" is not declared on host ${host.name}`, r.origin));
    }
  }
  out.push(...resourceCycles(resources));
  return out;
}

function secretRefs(v: AnyManifest): { ref: SecretRef; pointer: string }[] {
  const found: { ref: SecretRef; pointer: string }[] = [];
  const walk = (node: unknown, pointer: string) => {
    if (node === null || typeof node !== 'object') return;
    if (!Array.isArray(node) && 'age' in node && Object.keys(node).length === 1) {
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
