// What the Host manifest writes for this kind (spec.aptSources) and what it expands into.

/** A vendor apt source as the Host manifest writes it (deb822 fields, lower case). */
export interface AptSourceEntry {
  name: string;
  uris: string[];
  suites: string[];
  components?: string[];
  architectures?: string[];
  /** The armored public key (stored as /etc/apt/keyrings/hostkit-NAME.asc), or the path of a keyring on the host. */
  signedBy: { key: string } | { path: string };
}

/** One apt source on one host (resource `aptsource/NAME`): its deb822 file, and its key file when the key is inline. */
export interface AptSourceSpec {
  /** /etc/apt/sources.list.d/hostkit-NAME.sources */
  path: string;
  /** /etc/apt/keyrings/hostkit-NAME.asc: HostKit's key file of this source, written when the key is inline, removed otherwise. */
  keyPath: string;
  uris: string[];
  suites: string[];
  /** Absent for a flat repository (a suite ending in "/"). */
  components?: string[];
  architectures?: string[];
  signedBy: { key: string } | { path: string };
}
