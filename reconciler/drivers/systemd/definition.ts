import { unitPrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const unitDefinition = {
  kind: 'unit',
  // Services after the files they read, timers after the services they start.
  rank: 6,
  orphans: 'delete',
  manifests: [unitPrimitive],
} as const satisfies KindDefinition<string>;

export const timerDefinition = {
  kind: 'timer',
  rank: 7,
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
