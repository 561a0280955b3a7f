import type { HostKitError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { Host } from '../../../hosts/types.js';

export interface GitSourceSpec {
  url: string;
  /** A full commit id (40 or 64 hex digits), a tag or a branch. */
  ref: string;
  /** A directory of the repository that is the release (relative, no `..`). */
  subdirectory?: string;
  /** Secret reference to a deploy key; its value comes in SourceAccess.credentials. */
  sshKey?: string;
  /** Secret reference to an https token; its value comes in SourceAccess.credentials. */
  token?: string;
}

export interface ArchiveSourceSpec {
  url: string;
  /** 64 hex digits: the archive's bytes, checked before anything is unpacked. */
  sha256: string;
}

export interface SourceAccess {
  host: Host;
  project: string;
  user: string;
  stateDirectory: string;
  allowedRoots: readonly string[];
  /** Resolved secret values, never logged. */
  credentials?: { sshKey?: string; token?: string };
  log: Logger;
}

export type ResolvedRef = { commit: string } | { error: HostKitError };
