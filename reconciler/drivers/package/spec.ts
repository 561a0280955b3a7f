// What manifests write for this kind (Host and Project spec.packages, Host spec.implicitPackages,
// a Project's versioned runtime), and what they expand into, defaults applied (a plan compares it with the host).

/** A package as a manifest writes it: a name, or a name with a version (apt's `name=version`; "1.6.*" a prefix) or `remove: true`. */
export type PackageEntry = string | { name: string; version?: string; remove?: boolean };

/** Which package each of HostKit's own needs is (false: none, the operator installs it). */
export interface ImplicitPackages {
  sites?: string | false;
  databases?: string | false;
  firewall?: string | false;
  python?: string | false;
  sudo?: string | false;
  backups?: string | false;
}

/** A Project's runtime: a label, or node at a major version (the package nodejs at MAJOR.*) or from a named package. */
export type Runtime = 'node' | 'python' | 'binary' | 'static' | { node: string | { package: string } };

/** One OS package on one host (resource `package/NAME`): present (optionally at a version), or purged. */
export interface PackageSpec {
  /** The name apt installs; present when an installed package is it, provides it, or is its versioned flavour (NAME-15). */
  name: string;
  /** apt's version string, or a prefix glob ending in "*" ("22.*"). */
  version?: string;
  /** Purged (apt-get purge) instead of installed: the manifest's explicit opt-in. */
  remove?: boolean;
  /** Who needs it, for plans and errors: "Host spec.packages", "Project/api", "sites (implied)". */
  neededBy: string[];
}
