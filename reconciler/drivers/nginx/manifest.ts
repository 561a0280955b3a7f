import type { CertificateSpec } from '../certificate/spec.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { SiteSpec } from './spec.js';

/** A Site manifest's spec as written. */
export interface SiteManifestSpec {
  domains: string[];
  upstreamPort?: number;
  root?: string;
  tls?: 'acme' | 'self-signed' | 'none';
}

// An nginx site named after its first domain, proxying to a local port or serving a directory;
// with TLS (ACME unless given), the certificate for its domains first.
export const sitePrimitive: PrimitiveDefinition<'Site', SiteManifestSpec> = {
  kind: 'Site',
  schema: {
    title: 'An nginx site proxying to a local port or serving a directory',
    required: ['domains'],
    properties: {
      domains: { type: 'array', maxItems: 100, minItems: 1, items: { type: 'string', $ref: 'common.schema.json#/$defs/domain' }, uniqueItems: true },
      upstreamPort: { $ref: 'common.schema.json#/$defs/port' },
      root: { $ref: 'common.schema.json#/$defs/absolutePath' },
      tls: { enum: ['acme', 'self-signed', 'none'] },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    // A domain claimed twice is reported once, as such, not again as a duplicate site.
    if (!s.domains.map((d) => x.claim('domain', d, x.at('/spec/domains'))).every(Boolean)) return;
    const tls = s.tls ?? 'acme';
    const deps: string[] = [];
    if (tls !== 'none') {
      const certificate: CertificateSpec = { name: s.domains[0]!, domains: s.domains, issuer: tls };
      deps.push(x.add<CertificateSpec>('certificate', s.domains[0]!, certificate, x.at(s.tls ? '/spec/tls' : '/spec/domains')));
    }
    if (s.root) x.checkPath(s.root, x.at('/spec/root'));
    x.add<SiteSpec>(
      'site',
      s.domains[0]!,
      {
        site: s.domains[0]!,
        domains: s.domains,
        tls,
        redirectHttp: tls !== 'none',
        locations: [],
        ...(s.upstreamPort ? { upstream: { host: '127.0.0.1', port: s.upstreamPort } } : {}),
        ...(s.root ? { root: s.root } : {}),
      },
      x.origin,
      { dependsOn: deps },
    );
  },

  policy(m, c) {
    const s = m.value.spec;
    if (s.root) c.path(s.root, '/spec/root', 'site root');
    if (s.upstreamPort !== undefined) c.port(s.upstreamPort, '/spec/upstreamPort');
  },
};
