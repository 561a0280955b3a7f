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

export const authorizedKeysDefinition = {
  kind: 'authorizedkeys',
  // After accounts and directories: the account's home may be a Directory of the same run.
  rank: 1.2,
  orphans: 'delete',
} as const satisfies KindDefinition<string>;

export const sudoersDefinition = {
  kind: 'sudoers',
  // After accounts (the rules name them); nothing else reads the rules.
  rank: 1.7,
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
