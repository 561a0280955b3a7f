import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const checkpointDefinition = {
  kind: 'checkpoint',
  // After the database it dumps and restic's environment file, before the release and the lifecycle commands it guards.
  rank: 4.2,
  // Nothing of it stays on the host but snapshots, which go with their runs' journals.
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
