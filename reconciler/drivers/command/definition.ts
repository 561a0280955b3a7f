import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const commandDefinition = {
  kind: 'command',
  rank: 5,
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
