import { sysctlPrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const sysctlDefinition = {
  kind: 'sysctl',
  // After accounts and directories, before anything that runs: services start with their kernel settings.
  rank: 1.5,
  orphans: 'delete',
  manifests: [sysctlPrimitive],
} as const satisfies KindDefinition<string>;
