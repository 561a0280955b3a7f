import { firewallRulesPrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const firewallDefinition = {
  kind: 'firewall',
  rank: 10,
  orphans: 'delete',
  manifests: [firewallRulesPrimitive],
} as const satisfies KindDefinition<string>;
