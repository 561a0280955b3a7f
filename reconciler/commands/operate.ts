import os from 'node:os';
import { HostKitError } from '../core/errors.js';
import type { Resource } from '../core/resource.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { expandForHost, hostSettings, UNIT_PREFIX } from '../manifests/expand.js';
import { validateRepository, type Repository } from '../manifests/index.js';
import { defaultCacheDir } from '../manifests/parse-cache.js';
import type { HostManifest, Manifest, ProjectManifest } from '../manifests/types.js';
import type { OnHost } from './run-input.js';
import { assertRepository } from './validate.js';

// What `hostkit status`, `logs` and `health` share: which projects the
// repository places on this host, and which units each of them runs, read
// from the expanded manifests (never guessed from unit names on the host).

export interface HostTargetOptions {
  repo: string;
  host?: string;
  stateDir?: string;
  root?: string;
  cache?: boolean;
  logLevel?: string;
  /** A --target's host (commands/targets.ts); this machine when absent. */
  on?: OnHost;
}

/** The repository as it applies to one host: its manifests and the resources they expand into there. */
export interface Declared {
  repoDir: string;
  hostName: string;
  manifests: readonly Manifest[];
  resources: readonly Resource[];
  stateDirectory: string;
}

export function hostNameOf(opts: Pick<HostTargetOptions, 'host' | 'on'>): string {
  return opts.on?.hostName ?? opts.host ?? os.hostname().split('.')[0]!;
}

/** Print why the manifests are invalid (stderr) and return the exit code, as `reconcile` does. */
export function reportInvalid(repo: Repository, repoOption: string): number {
  const style = useColor(process.stderr) ? COLOR : PLAIN;
  for (const d of repo.diagnostics) process.stderr.write(renderDiagnostic(d, style) + '\n');
  process.stderr.write(`hostkit: error: the manifests in ${repoOption} are invalid. Run \`hostkit validate --repo ${repoOption}\` after fixing them.\n`);
  return 1;
}

/** Load and expand the repository for the host, or the exit code after reporting invalid manifests. */
export async function loadDeclared(opts: HostTargetOptions): Promise<Declared | number> {
  const repoDir = await assertRepository(opts.repo);
  const repo = await validateRepository(repoDir, opts.cache !== false ? { cacheDir: defaultCacheDir() } : {});
  if (!repo.valid) return reportInvalid(repo, opts.repo);
  const hostName = hostNameOf(opts);
  const hostManifest = repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host' && m.name === hostName);
  if (!hostManifest) {
    const known = repo.manifests.filter((m) => m.kind === 'Host').map((m) => m.name);
    throw new HostKitError(
      'UNKNOWN_HOST',
      `No Host manifest named "${hostName}" in ${opts.repo}; known hosts: ${known.join(', ') || '(none)'}. Pass --host NAME.`,
      {
        data: { host: hostName, known },
      },
    );
  }
  const settings = hostSettings(hostManifest);
  return {
    repoDir,
    hostName,
    manifests: repo.manifests,
    resources: expandForHost(repo.manifests, settings).resources,
    stateDirectory: opts.stateDir ?? settings.stateDirectory,
  };
}

/** The projects with resources on the host, sorted. */
export function projectsOn(resources: readonly Resource[]): string[] {
  return [...new Set(resources.map((r) => r.project).filter((p): p is string => p !== undefined))].sort();
}

/** Throws UNKNOWN_PROJECT, naming the projects the host has, unless `name` is one of them. */
export function requireProject(name: string, projects: readonly string[], hostName: string): void {
  if (projects.includes(name)) return;
  throw new HostKitError('UNKNOWN_PROJECT', `No project "${name}" is placed on host ${hostName}; projects there: ${projects.join(', ') || '(none)'}`, {
    data: { project: name, host: hostName, known: [...projects] },
  });
}

export type UnitRole = 'service' | 'worker' | 'timer' | 'unit' | 'lifecycle';

/** A part of a project that runs, as `--unit` names it (service, worker/NAME, timer/NAME, unit/NAME, lifecycle), and its systemd units. */
export interface UnitChoice {
  choice: string;
  role: UnitRole;
  units: string[];
}

/**
 * What a project runs on the host, from its expanded resources: its service,
 * each worker, each timer (its .timer and .service), each Unit primitive it
 * owns, and `lifecycle` when it declares lifecycle commands (transient units,
 * found in the journal by the HOSTKIT_PROJECT field their unit adds).
 */
export function unitChoices(manifests: readonly Manifest[], resources: readonly Resource[], project: string): UnitChoice[] {
  const declared = new Set(resources.filter((r) => r.project === project && (r.kind === 'unit' || r.kind === 'timer')).map((r) => r.name));
  const spec = manifests.find((m): m is Manifest<ProjectManifest> => m.kind === 'Project' && m.name === project)?.value.spec;
  const out: UnitChoice[] = [];
  const take = (choice: string, role: UnitRole, names: string[]) => {
    const units = names.filter((u) => declared.delete(u));
    if (units.length > 0) out.push({ choice, role, units });
  };
  const base = `${UNIT_PREFIX}${project}`;
  if (spec?.service?.command && spec.deploy?.strategy === 'blue-green') {
    // Blue-green (drivers/systemd/deploy): the service is two instances, one serving, the other idle.
    if (resources.some((r) => r.project === project && r.kind === 'deploy'))
      out.push({ choice: 'service', role: 'service', units: [`${base}@blue.service`, `${base}@green.service`] });
  } else if (spec?.service?.command) take('service', 'service', [`${base}.service`]);
  for (const w of spec?.workers ?? []) take(`worker/${w.name}`, 'worker', [`${base}-${w.name}.service`]);
  for (const t of spec?.timers ?? []) take(`timer/${t.name}`, 'timer', [`${base}-${t.name}.timer`, `${base}-${t.name}.service`]);
  // What is left are Unit primitives: hk-NAME.service, with hk-NAME.timer when scheduled.
  for (const unit of [...declared].sort()) {
    const name = unit.slice(UNIT_PREFIX.length).replace(/\.(service|timer)$/, '');
    take(`unit/${name}`, 'unit', [`${UNIT_PREFIX}${name}.service`, `${UNIT_PREFIX}${name}.timer`]);
  }
  if ((spec?.lifecycle ?? []).length > 0) out.push({ choice: 'lifecycle', role: 'lifecycle', units: [] });
  return out;
}
