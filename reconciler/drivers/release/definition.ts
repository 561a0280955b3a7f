import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const releaseDefinition = {
  kind: 'release',
  // After the account, directory and env file, before lifecycle commands and units, whose desire reads the release's input digest.
  rank: 4.5,
  // Releases are the project's code: removing the project's manifest leaves them (as directories are left).
  orphans: 'report',
} as const satisfies KindDefinition<string>;
