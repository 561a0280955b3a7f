import type { Diagnostic } from '../../core/diagnostics.js';
import type { FileSpec } from '../../core/specs.js';
import type { Driver, WithManifests } from '../types.js';
import {
  applyFile,
  observeFileResources,
  planFile,
  publishDigest,
  verifyFile,
  type DesiredFile,
  type FileUndo,
  type ManagedFileOp,
  type ObservedFile,
} from '../shared/managed-file.js';
import { fileRestore } from '../shared/undo.js';
import type { filePrimitive } from './manifest.js';
import { fileDefinition } from './definition.js';

/** What apply does to a plain file: write it (bytes with ownership), chown or chmod it, or remove it. */
export type FileOp = ManagedFileOp;

// Plain files with fixed content. Orphans (files HostKit wrote whose manifest
// is gone) are deleted; the previous bytes are kept for rollback.
export const fileDriver: Driver<FileSpec, DesiredFile, ObservedFile, FileUndo, 'file', void, FileOp> & WithManifests<typeof filePrimitive> = {
  ...fileDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredFile; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const desired = { ...r.spec };
      publishDigest(ctx, desired, r.id);
      out.set(r.id, { desired, diagnostics: [] });
    }
    return out;
  },

  observe: (resources, ctx) => observeFileResources(ctx, resources),

  plan({ resource, desired, observed, orphan }) {
    return planFile(resource, desired, observed, { orphan });
  },

  // If this throws, the file still has its previous bytes (atomic rename).
  apply: (change, ctx) => applyFile(ctx.host, change, ctx),
  verify: (change, ctx) => verifyFile(ctx, change),
  // The previous bytes come back from the run journal; directories made for the file go again once empty.
  restore: fileRestore((change) => change.resource?.spec.path),
};
