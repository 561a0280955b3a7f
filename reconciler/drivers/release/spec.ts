// What a Project with `spec.source` expands into, defaults applied (a plan compares it with the host): one release resource.
import type { SecretRef } from '../../manifests/types.js';
import type { UnitSpec } from '../systemd/spec.js';

export type ReleaseSource =
  { git: { url: string; ref: string; subdirectory?: string; sshKey?: SecretRef; token?: SecretRef } } | { archive: { url: string; sha256: string } };

export interface BuildStep {
  command: string[];
  environment: Record<string, string>;
  /** How long the step may run before its unit is stopped. */
  timeoutMs: number;
}

export interface ReleaseSpec {
  project: string;
  /** The project's user and group: releases are theirs, builds run as them. */
  user: string;
  group: string;
  source: ReleaseSource;
  build: BuildStep[];
  /** Releases kept on the host; the current one and the one before it are never removed. */
  keep: number;
  /** Paths relative to a release, kept in ROOT/shared and linked into each release. */
  shared: string[];
  /** The service's isolation profile: builds run under it (with the network allowed). */
  isolation: UnitSpec['isolation'];
  /** nginx serves files from inside the release (a static site): releases are traversable by others. */
  webReadable: boolean;
  /** The project's long-running units, which a new release restarts (shown in plans). */
  restarts: string[];
  /** blue-green: `current` switches when nginx does (drivers/systemd/deploy makes the switch this driver defers). */
  switchWithNginx?: true;
}
