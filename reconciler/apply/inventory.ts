import path from 'node:path';
import type { Resource } from '../core/resource.js';
import { HostKitError } from '../core/errors.js';
import type { Host } from '../hosts/types.js';
import { writeRootFile } from '../hosts/root-files.js';

// What HostKit has applied on a host. It is how HostKit knows which files,
// units and roles it owns, so it prunes only its own and never foreign state.
export interface Inventory {
  version: 1;
  host: string;
  commit?: string;
  appliedAt?: string;
  resources: Record<string, InventoryEntry>;
}

export type InventoryEntry = Pick<Resource, 'id' | 'kind' | 'name' | 'spec' | 'project' | 'origin' | 'dependsOn'> & {
  /**
   * sha256 (hex) of the bytes HostKit last wrote at each path of the resource (file
   * content, unit file, site file): a plan shows the live text of a path only when it
   * still holds these very bytes (drivers/shared/owned.ts).
   */
  written?: Record<string, string>;
};

export function inventoryPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'inventory.json');
}

export async function readInventory(host: Host, stateDirectory: string, hostName: string): Promise<Inventory> {
  const p = inventoryPath(stateDirectory);
  const bytes = await host.readFile(p);
  if (!bytes) return { version: 1, host: hostName, resources: {} };
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Inventory;
    if (parsed.version !== 1 || typeof parsed.resources !== 'object') throw new Error('unknown format');
    return parsed;
  } catch (cause) {
    throw new HostKitError(
      'INVENTORY_UNREADABLE',
      `The inventory ${p} on ${host.name} cannot be read; restore it from the last run's backup or remove it to start over`,
      {
        cause,
        data: { path: p },
      },
    );
  }
}

export async function writeInventory(host: Host, stateDirectory: string, inventory: Inventory): Promise<void> {
  await writeRootFile(host, inventoryPath(stateDirectory), JSON.stringify(inventory, null, 1) + '\n');
}

export function toInventoryEntry(r: Resource, written?: Record<string, string>): InventoryEntry {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    spec: r.spec,
    dependsOn: r.dependsOn,
    origin: r.origin,
    ...(r.project ? { project: r.project } : {}),
    ...(written && Object.keys(written).length > 0 ? { written } : {}),
  };
}
