import type { DriverContext } from '../types.js';

/**
 * State a driver keeps for one run (one DriverContext): what desire and observe
 * saw, so apply can do for every changed resource at once what it would do once
 * per resource. Made on first use; gone with the run.
 */
export function perRun<T extends object>(init: () => T): (ctx: DriverContext) => T {
  const states = new WeakMap<DriverContext, T>();
  return (ctx) => {
    let state = states.get(ctx);
    if (!state) {
      state = init();
      states.set(ctx, state);
    }
    return state;
  };
}
