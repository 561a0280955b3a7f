import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kind, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const packageDefinition = {
  kind: 'package',
  // Before everything that needs a package (after the apt sources they come from).
  rank: -1,
  // A package no manifest declares any more stays installed (purging takes data and services with it).
  orphans: 'report',
} as const satisfies KindDefinition<string>;
