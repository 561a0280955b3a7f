import { ownerOrigins, ownership, stringEnv } from '../../manifests/primitive.js';
import type { Environment, Ownership, SecretRef } from '../../manifests/types.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { EnvFileSpec } from './spec.js';

/** An EnvFile manifest's spec as written. */
export interface EnvFileManifestSpec extends Ownership {
  path: string;
  environment?: Environment;
  secrets?: Record<string, SecretRef>;
}

// An environment file of plain values and secret references (root:root 0640 unless given).
export const envFilePrimitive: PrimitiveDefinition<'EnvFile', EnvFileManifestSpec> = {
  kind: 'EnvFile',
  schema: {
    title: 'An environment file (KEY=value lines) with values and secret references',
    required: ['path'],
    properties: {
      path: { $ref: 'common.schema.json#/$defs/absolutePath' },
      environment: { $ref: 'common.schema.json#/$defs/environment' },
      secrets: { $ref: 'common.schema.json#/$defs/secrets' },
      owner: { $ref: 'common.schema.json#/$defs/userName' },
      group: { $ref: 'common.schema.json#/$defs/userName' },
      mode: { $ref: 'common.schema.json#/$defs/mode' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    x.checkPath(s.path, x.at('/spec/path'));
    x.add<EnvFileSpec>('envfile', s.path, { path: s.path, ...ownership(s, 0o640), environment: stringEnv(s.environment), secrets: s.secrets ?? {} }, x.origin, {
      fieldOrigins: ownerOrigins(x.at, s),
    });
  },

  policy(m, c) {
    c.path(m.value.spec.path, '/spec/path', 'env file');
    c.ownership(m.value.spec.owner, m.value.spec.group, '/spec');
  },
};
