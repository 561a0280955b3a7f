import { accountPrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const accountDefinition = {
  kind: 'account',
  rank: 0,
  orphans: 'report',
  manifests: [accountPrimitive],
} as const satisfies KindDefinition<string>;
