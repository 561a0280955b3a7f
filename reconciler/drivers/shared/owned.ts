import { createHash } from 'node:crypto';
import type { Inventory } from '../../apply/inventory.js';
import { error, type Diagnostic, type Location } from '../../core/diagnostics.js';
import type { Resource } from '../../core/resource.js';
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

/**
 * Declared by a project, not at the host level: such a resource may not take over what
 * exists on the host and HostKit did not create. Host-level manifests carry `hostLevel`
 * (set by expand); a resource of no project is host-level too, since the policy refuses
 * a primitive without `metadata.project` outside the host-level paths.
 */
export function isProjectLevel(resource: Resource): boolean {
  return resource.project !== undefined && (resource as Resource & { hostLevel?: boolean }).hostLevel !== true;
}

/** HostKit created it for the same project (or the host level): its inventory lists the resource as that project's. */
export function inInventory(inventory: Inventory, resource: Resource): boolean {
  const entry = inventory.resources[resource.id];
  return entry !== undefined && entry.project === resource.project;
}

/** The plan error for a project-level resource that would take over (or drop) what is not its own on the host. */
export function notOwnRefusal(rule: string, what: string, origin: Location): Diagnostic {
  return error(
    'not allowed in a project manifest',
    `rule ${rule}: ${what}. Declare it in a host-level path (hosts/) or grant it in the Host's spec.policy.`,
    origin,
  );
}
