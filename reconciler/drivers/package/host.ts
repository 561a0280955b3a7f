// The package folder's part of expanding a host, after every manifest placed on it:
// Host `spec.packages`, each Project's `spec.packages` and versioned runtime
// (`{node: "22"}`), and the packages HostKit's own kinds need on this host (sites
// nginx, databases postgresql, a firewall nftables, a python runtime python3, sudo rules
// sudo, backups restic) unless
// the Host's `implicitPackages` renames or drops them. One resource per package name.
import { error, type Location } from '../../core/diagnostics.js';
import type { HostExpansion, HostPart } from '../manifest-types.js';
import type { ImplicitPackages, PackageEntry, PackageSpec, Runtime } from './spec.js';

export const DEFAULT_IMPLICIT: Required<ImplicitPackages> = {
  sites: 'nginx',
  databases: 'postgresql',
  firewall: 'nftables',
  python: 'python3',
  sudo: 'sudo',
  backups: 'restic',
};

/** The runtime's name ("node" for `{node: "22"}`). */
export function runtimeName(runtime: Runtime): string {
  return typeof runtime === 'string' ? runtime : 'node';
}

/** The package a versioned runtime names: `{node: "22"}` is nodejs at 22.*, `{node: {package: X}}` is X; a label names none. */
export function runtimePackage(runtime: Runtime): { name: string; version?: string } | undefined {
  if (typeof runtime === 'string') return undefined;
  return typeof runtime.node === 'string' ? { name: 'nodejs', version: `${runtime.node}.*` } : { name: runtime.node.package };
}

interface Wanted {
  spec: PackageSpec;
  origin: Location;
  /** The projects that asked for it ('' for the host). */
  owners: Set<string>;
  /** Who pinned its version ('' for the host), and where. */
  pin?: { owner: string; origin: Location };
}

const label = (e: { name: string; version?: string; remove?: boolean }) => (e.remove ? `${e.name} (remove)` : e.version ? `${e.name}=${e.version}` : e.name);

export const hostPackages: HostPart = {
  name: 'packages',
  expand(x: HostExpansion) {
    const wanted = new Map<string, Wanted>();
    const want = (owner: string, neededBy: string, entry: PackageEntry, origin: Location) => {
      const e = typeof entry === 'string' ? { name: entry } : entry;
      const prior = wanted.get(e.name);
      if (!prior) {
        const spec: PackageSpec = { name: e.name, ...(e.version ? { version: e.version } : {}), ...(e.remove ? { remove: true } : {}), neededBy: [neededBy] };
        wanted.set(e.name, { spec, origin, owners: new Set([owner]), ...(e.version ? { pin: { owner, origin } } : {}) });
        return;
      }
      // One host has one version of a package: two pins, or a pin and a removal, cannot both hold.
      if ((e.version && prior.spec.version && e.version !== prior.spec.version) || Boolean(e.remove) !== Boolean(prior.spec.remove)) {
        const at = prior.pin?.origin ?? prior.origin;
        const where = `${at.file}:${at.line ?? 0}`;
        x.report(error('package declared twice', `${label(e)} on host ${x.host.name} conflicts with ${label(prior.spec)} at ${where}`, origin));
        return;
      }
      if (e.version && !prior.spec.version) {
        prior.spec.version = e.version;
        prior.pin = { owner, origin };
      }
      if (!prior.spec.neededBy.includes(neededBy)) prior.spec.neededBy.push(neededBy);
      prior.owners.add(owner);
    };

    (x.host.spec.packages ?? []).forEach((p, i) => want('', 'Host spec.packages', p, x.host.at(`/spec/packages/${i}`)));
    for (const p of x.projects) {
      (p.spec.packages ?? []).forEach((e, i) => want(p.name, `Project/${p.name}`, e, p.at(`/spec/packages/${i}`)));
      const runtime = runtimePackage(p.spec.runtime);
      if (runtime) want(p.name, `Project/${p.name} runtime`, runtime, p.at('/spec/runtime'));
    }
    const implicit = x.host.spec.implicitPackages ?? true;
    if (implicit !== false) {
      const names = { ...DEFAULT_IMPLICIT, ...(implicit === true ? {} : implicit) };
      const at = x.host.at(implicit === true ? '/metadata/name' : '/spec/implicitPackages');
      const needs: [keyof ImplicitPackages, boolean][] = [
        ['sites', x.kinds.has('site')],
        ['databases', x.kinds.has('pgrole') || x.kinds.has('pgdatabase')],
        ['firewall', x.kinds.has('firewall')],
        ['python', x.projects.some((p) => p.spec.runtime === 'python')],
        // visudo checks the rules before they are written; restic stores the backups.
        ['sudo', x.kinds.has('sudoers')],
        ['backups', x.host.spec.backup !== undefined || x.projects.some((p) => p.spec.backup !== undefined || p.spec.database?.backup !== undefined)],
      ];
      for (const [need, needed] of needs) {
        const name = names[need];
        if (needed && name !== false) want('', `${need} (implied)`, name, at);
      }
    }
    for (const w of wanted.values()) {
      // A project pins only a package it alone needs: the version of one the host or another project needs is the Host's to choose.
      if (w.pin && w.pin.owner !== '' && w.owners.size > 1) {
        const others = [...w.owners].filter((o) => o !== w.pin!.owner).map((o) => (o === '' ? 'the host' : `Project/${o}`));
        x.report(
          error(
            'package pinned by a project',
            `Project/${w.pin.owner} pins ${label(w.spec)}, also needed by ${others.join(' and ')}; only the Host's spec.packages may pin a shared package`,
            w.pin.origin,
          ),
        );
        continue;
      }
      // One project alone asked for it: it is that project's (holds and tenancy follow it).
      const only = w.owners.size === 1 ? [...w.owners][0]! : '';
      x.add<PackageSpec>('package', w.spec.name, w.spec, w.origin, only ? { project: only } : {});
    }
  },
};
