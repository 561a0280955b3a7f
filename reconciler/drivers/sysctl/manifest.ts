import type { Location } from '../../core/diagnostics.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { SysctlSpec } from './spec.js';

export const SYSCTL_DIR = '/etc/sysctl.d';

/** A Sysctl manifest's spec as written. */
export interface SysctlManifestSpec {
  parameters: Record<string, string | number>;
  file?: string;
}

/** Where a parameter was written, by its key (a resource's fieldOrigins). */
export function parameterField(key: string): string {
  return `parameters/${key}`;
}

// Kernel parameters of the whole host, in /etc/sysctl.d/90-hostkit-NAME.conf
// unless `file` names another file there. Host-level only: one project's
// manifest must not change the kernel every other project runs on.
export const sysctlPrimitive: PrimitiveDefinition<'Sysctl', SysctlManifestSpec> = {
  kind: 'Sysctl',
  schema: {
    title: 'Kernel parameters in /etc/sysctl.d, applied with sysctl --load',
    required: ['parameters'],
    properties: {
      parameters: {
        type: 'object',
        description: 'Kernel parameter (as sysctl names it, e.g. net.ipv4.ip_forward) -> value.',
        minProperties: 1,
        maxProperties: 256,
        propertyNames: { type: 'string', maxLength: 200, pattern: '^[a-z][a-z0-9_]*(?:\\.[A-Za-z0-9_-]+)+$' },
        additionalProperties: {
          anyOf: [
            { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
            {
              type: 'string',
              maxLength: 1024,
              description: 'One line, no leading or trailing space (numbers larger than 2^53 as text).',
              pattern: '^[^\\s\\u0000-\\u001f\\u007f](?:[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f])?$',
            },
          ],
        },
      },
      file: {
        type: 'string',
        description: 'The file in /etc/sysctl.d (default 90-hostkit-NAME.conf); later names win at boot.',
        pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\\.conf$',
      },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const path = `${SYSCTL_DIR}/${s.file ?? `90-hostkit-${m.name}.conf`}`;
    if (!x.claim('sysctl file', path, x.at(s.file ? '/spec/file' : '/metadata/name'))) return;
    const parameters: Record<string, string> = {};
    const fieldOrigins: Record<string, Location> = {};
    for (const [key, value] of Object.entries(s.parameters)) {
      const at = x.at(`/spec/parameters/${key}`);
      // Two files setting one key: which wins depends on their names, at every boot.
      if (!x.claim('sysctl parameter', key, at)) continue;
      parameters[key] = String(value);
      fieldOrigins[parameterField(key)] = at;
    }
    x.add<SysctlSpec>('sysctl', m.name, { path, parameters }, x.origin, { fieldOrigins });
  },

  policy(m, c) {
    if (c.project) {
      c.refuse('host-level-kind', `Sysctl/${m.name} sets kernel parameters for the whole host, which project ${c.project.project} does not own`, '/kind');
    }
  },
};
