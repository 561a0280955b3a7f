import type { ResourceKind } from '../../reconciler/core/resource.js';
import { sudoersDriver } from '../../reconciler/drivers/account/index.js';
import { drivers as registered } from '../../reconciler/drivers/registry.js';
import type { AnyDriver } from '../../reconciler/drivers/types.js';

/** A line visudo refuses (an unclosed Runas list) that no schema-valid `sudo` rule can produce. */
export const BROKEN_SUDOERS_LINE = 'nobody ALL=(root /usr/bin/true\n';

/**
 * The registered drivers, but the sudoers driver adds `line` to every file it renders.
 * The schema leaves nothing in a rule that visudo refuses (user names, plain absolute
 * paths and ALL only), so a test of visudo's refusal breaks the text past it, here.
 */
export function driversWithBrokenSudoers(line = BROKEN_SUDOERS_LINE): ReadonlyMap<ResourceKind, AnyDriver> {
  const base = sudoersDriver as unknown as AnyDriver;
  const broken: AnyDriver = {
    ...base,
    desire: async (resources, ctx, state) => {
      const out = await base.desire(resources, ctx, state);
      for (const d of out.values()) (d.desired as { content: string }).content += line;
      return out;
    },
  };
  return new Map([...registered, ['sudoers', broken]]);
}
