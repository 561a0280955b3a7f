import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor, SecretResolver } from '../../reconciler/core/secrets.js';
import { toInventoryEntry, type Inventory } from '../../reconciler/apply/inventory.js';
import type { Resource } from '../../reconciler/core/resource.js';
import { createRunServices } from '../../reconciler/drivers/run.js';
import type { DriverContext } from '../../reconciler/drivers/types.js';
import type { Host } from '../../reconciler/hosts/types.js';

/** A driver context for unit tests, one per run: silent logs, secrets from `env` only (and host files). */
export function driverContext(
  host: Host,
  options: { env?: NodeJS.ProcessEnv; mode?: 'plan' | 'apply'; redactor?: Redactor; inventory?: Inventory; fingerprintKey?: Buffer } = {},
): DriverContext {
  const log = silentLogger();
  return {
    run: createRunServices({ host, stateDirectory: '/var/lib/hostkit', log }),
    host,
    hostManifest: { apiVersion: 'hostkit.dev/v1', kind: 'Host', metadata: { name: 'test-1' }, spec: {} },
    stateDirectory: '/var/lib/hostkit',
    mode: options.mode ?? 'apply',
    log,
    fileDigests: new Map(),
    digestKey: options.fingerprintKey ?? Buffer.alloc(32, 1),
    inventory: options.inventory ?? { version: 1, host: 'test-1', resources: {} },
    written: new Map(),
    warnings: [],
    secrets: new SecretResolver({
      host,
      redactor: options.redactor ?? new Redactor(),
      env: options.env ?? {},
      ...(options.fingerprintKey ? { fingerprintKey: options.fingerprintKey } : {}),
    }),
  };
}

/** The inventory an apply of `resources` in `ctx` leaves (what HostKit then owns, with the digests of what it wrote). */
export function inventoryAfter(ctx: DriverContext, resources: readonly Resource[]): Inventory {
  return { version: 1, host: 'test-1', resources: Object.fromEntries(resources.map((r) => [r.id, toInventoryEntry(r, ctx.written.get(r.id))])) };
}
