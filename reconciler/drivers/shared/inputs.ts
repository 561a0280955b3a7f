import { createHash, createHmac } from 'node:crypto';
import type { DriverContext } from '../types.js';

/** A file's bytes as digests of them appear in rendered files and plans: keyed (DriverContext.digestKey). */
export function fileDigest(ctx: Pick<DriverContext, 'digestKey'>, bytes: Buffer | string): string {
  return createHmac('sha256', ctx.digestKey).update(bytes).digest('hex');
}

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
      return `${p}:${live ? fileDigest(ctx, live) : 'missing'}`;
    }),
  );
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}
