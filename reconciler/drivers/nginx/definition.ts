import { sitePrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const siteDefinition = {
  kind: 'site',
  rank: 9,
  orphans: 'delete',
  manifests: [sitePrimitive],
} as const satisfies KindDefinition<string>;
