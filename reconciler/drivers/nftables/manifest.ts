import type { PrimitiveDefinition } from '../manifest-types.js';

/** A FirewallRules manifest's spec as written. */
export interface FirewallRulesManifestSpec {
  openings: { port: number; protocol?: 'tcp' | 'udp'; from?: string[] }[];
}

// Extra openings in the host's one firewall table, which the Host's spec.firewall
// declares (expand.ts builds it once every manifest is expanded). Never the SSH port.
export const firewallRulesPrimitive: PrimitiveDefinition<'FirewallRules', FirewallRulesManifestSpec> = {
  kind: 'FirewallRules',
  schema: {
    title: 'Extra firewall openings on the host',
    required: ['openings'],
    properties: {
      openings: {
        type: 'array',
        maxItems: 1024,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            port: { $ref: 'common.schema.json#/$defs/port' },
            protocol: { enum: ['tcp', 'udp'] },
            from: { type: 'array', maxItems: 256, minItems: 1, items: { $ref: 'common.schema.json#/$defs/cidr' } },
          },
        },
      },
    },
  },

  expand(m, x) {
    for (const o of m.value.spec.openings) x.openFirewall({ port: o.port, protocol: o.protocol ?? 'tcp', from: o.from ?? [] });
  },

  policy(m, c) {
    m.value.spec.openings.forEach((o, i) => c.sshPort(o.port, `/spec/openings/${i}/port`));
  },
};
