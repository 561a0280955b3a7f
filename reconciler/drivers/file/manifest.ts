import { ownerOrigins, ownership } from '../../manifests/primitive.js';
import type { Ownership } from '../../manifests/types.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { FileSpec } from './spec.js';

/** A File manifest's spec as written. */
export interface FileManifestSpec extends Ownership {
  path: string;
  content: string;
}

// A file with fixed content (root:root 0644 unless given).
export const filePrimitive: PrimitiveDefinition<'File', FileManifestSpec> = {
  kind: 'File',
  schema: {
    title: 'A file with fixed content, owner, group and mode',
    required: ['path', 'content'],
    properties: {
      path: { $ref: 'common.schema.json#/$defs/absolutePath' },
      content: { type: 'string', maxLength: 1048576, description: "The file's bytes as text. Secrets belong in an EnvFile's secret references, not here." },
      owner: { $ref: 'common.schema.json#/$defs/userName' },
      group: { $ref: 'common.schema.json#/$defs/userName' },
      mode: { $ref: 'common.schema.json#/$defs/mode' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    x.checkPath(s.path, x.at('/spec/path'));
    x.add<FileSpec>('file', s.path, { path: s.path, content: s.content, ...ownership(s, 0o644) }, x.origin, { fieldOrigins: ownerOrigins(x.at, s) });
  },

  policy(m, c) {
    c.path(m.value.spec.path, '/spec/path', 'file');
    c.ownership(m.value.spec.owner, m.value.spec.group, '/spec');
  },
};
