import type { KindDefinition } from '../../types.js';

// What validation, schema generation and ordering need of this kind, without loading the driver's code.
export const deployDefinition = {
  kind: 'deploy',
  // After the release and the before-start commands (the new instance starts on them), before the
  // project's other units (workers and timers restart in place after the switch) and its sites.
  rank: 5.5,
  orphans: 'delete',
} as const satisfies KindDefinition<string>;
