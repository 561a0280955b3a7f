import { ownerOrigins, ownership, parseMode } from '../../manifests/primitive.js';
import type { Ownership } from '../../manifests/types.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { DirectorySpec } from './spec.js';

/** A Directory manifest's spec as written. */
export interface DirectoryManifestSpec extends Ownership {
  path: string;
}

// A directory with owner, group and mode (root:root 0755 unless given).
export const directoryPrimitive: PrimitiveDefinition<'Directory', DirectoryManifestSpec> = {
  kind: 'Directory',
  schema: {
    title: 'A directory with owner, group and mode',
    required: ['path'],
    properties: {
      path: { $ref: 'common.schema.json#/$defs/absolutePath' },
      owner: { $ref: 'common.schema.json#/$defs/userName' },
      group: { $ref: 'common.schema.json#/$defs/userName' },
      mode: { $ref: 'common.schema.json#/$defs/mode' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    x.checkPath(s.path, x.at('/spec/path'));
    x.add<DirectorySpec>('directory', s.path, { path: s.path, ...ownership(s, 0o755) }, x.origin, { fieldOrigins: ownerOrigins(x.at, s) });
  },

  policy(m, c) {
    const s = m.value.spec;
    c.path(s.path, '/spec/path', 'directory');
    c.directory(s.path, s.owner ?? 'root', s.group ?? s.owner ?? 'root', parseMode(s.mode, 0o755), '/spec/path');
    c.ownership(s.owner, s.group, '/spec');
  },
};
