import type { PrimitiveDefinition } from '../manifest-types.js';
import type { CertificateSpec } from './spec.js';

/** A Certificate manifest's spec as written. */
export interface CertificateManifestSpec {
  domains: string[];
  issuer?: 'acme' | 'self-signed';
}

// A TLS certificate for its domains (ACME unless given); from a project, only for the project's own domains.
export const certificatePrimitive: PrimitiveDefinition<'Certificate', CertificateManifestSpec> = {
  kind: 'Certificate',
  schema: {
    title: 'A TLS certificate',
    required: ['domains'],
    properties: {
      domains: { type: 'array', maxItems: 100, minItems: 1, items: { type: 'string', $ref: 'common.schema.json#/$defs/domain' }, uniqueItems: true },
      issuer: { enum: ['acme', 'self-signed'] },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    x.add<CertificateSpec>(
      'certificate',
      m.name,
      { name: m.name, domains: s.domains, issuer: s.issuer ?? 'acme' },
      x.at(s.issuer ? '/spec/issuer' : '/spec/domains'),
    );
  },

  policy(m, c) {
    const room = c.project;
    m.value.spec.domains.forEach((d, i) => {
      if (room && !room.ownsDomain(d))
        c.refuse(
          'certificate-domain',
          `${d} is not a domain of project ${room.project} (its Project's domains and aliases, or its Sites)`,
          `/spec/domains/${i}`,
        );
    });
  },
};
