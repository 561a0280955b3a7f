import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kind, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const aptSourceDefinition = {
  kind: 'aptsource',
  // First of all: the packages installed after it may come from it.
  rank: -2,
  // A source no manifest declares any more is removed (its files are HostKit's, hostkit-NAME).
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
