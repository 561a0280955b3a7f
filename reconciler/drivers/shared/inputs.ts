import { createHash } from 'node:crypto';
import type { DriverContext } from '../types.js';

/**
 * One digest of the files a rendered configuration depends on without naming
 * their bytes (a service's env file, a site's certificate). It goes into
 * the rendered file as a comment, so a new input is a new file: the unit is
 * restarted, nginx reloaded. A file HostKit writes this run counts with the
 * bytes it will have; any other is read from the host ("missing" if absent).
 */
export async function inputsDigest(ctx: DriverContext, paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map(async (p) => {
      const known = ctx.fileDigests.get(p);
      if (known) return `${p}:${known}`;
      const live = await ctx.host.readFile(p);
      return `${p}:${live ? createHash('sha256').update(live).digest('hex') : 'missing'}`;
    }),
  );
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}
