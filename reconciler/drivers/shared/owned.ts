import { createHash } from 'node:crypto';
import type { Inventory } from '../../apply/inventory.js';
import type { Fingerprint } from '../../core/secrets.js';
import type { DriverContext } from '../types.js';

// A plan is posted on pull requests: whoever opens one may read it. So a plan shows
// the live text of a file only when those bytes are HostKit's own (it wrote them and
// nobody changed them since): anything else on the host (a key, another project's
// env file, a hand edit that pasted a password) is shown by size and keyed
// fingerprint only.

/** Whose the live bytes at a path are: HostKit's last write, a hand edit of it, or not HostKit's at all. */
export type Provenance = 'hostkit' | 'hand' | 'foreign';

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Note the bytes a resource writes at a path; the inventory keeps their digest once the run applied. */
export function recordWritten(ctx: DriverContext, resourceId: string, path: string, content: Buffer | string): void {
  ctx.written.set(resourceId, { ...ctx.written.get(resourceId), [path]: sha256(content) }); // a new record: an inventory may hold the old one
}

/**
 * HostKit's own bytes: the inventory lists the resource and the live bytes are the
 * ones it recorded writing at that path. Inventories from before digests were kept
 * recognise a `File`'s bytes by the content its last applied spec held.
 */
export function provenance(inventory: Inventory, resourceId: string, path: string, live: Buffer): Provenance {
  const entry = inventory.resources[resourceId];
  if (!entry) return 'foreign';
  const digest = entry.written?.[path];
  if (digest !== undefined) return digest === sha256(live) ? 'hostkit' : 'hand';
  const spec = entry.spec as { path?: unknown; content?: unknown };
  if (entry.kind === 'file' && spec.path === path && typeof spec.content === 'string') return live.equals(Buffer.from(spec.content)) ? 'hostkit' : 'hand';
  return 'foreign';
}

/** What a plan says of bytes that are not HostKit's own: never a byte of them. */
export function describeUnowned(p: Exclude<Provenance, 'hostkit'>, live: Buffer, fingerprint: Fingerprint): string {
  return `${p === 'hand' ? 'changed by hand' : 'exists'}, ${live.length} bytes, fingerprint ${fingerprint(live)}`;
}

/** The live text of a path as a plan may show it: the text itself when HostKit's own, else a description. */
export function shownLive(
  ctx: DriverContext,
  resourceId: string,
  path: string,
  live: Buffer,
): { owned: true; text: string } | { owned: false; summary: string } {
  const p = provenance(ctx.inventory, resourceId, path, live);
  return p === 'hostkit' ? { owned: true, text: live.toString('utf8') } : { owned: false, summary: describeUnowned(p, live, ctx.secrets.fingerprint) };
}
