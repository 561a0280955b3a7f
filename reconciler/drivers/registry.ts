import type { ResourceKind } from '../core/resource.js';
import { accountDriver } from './account/index.js';
import { commandDriver } from './command/index.js';
import { certificateDriver } from './certificate/index.js';
import { directoryDriver } from './directory/index.js';
import { envFileDriver } from './envfile/index.js';
import { fileDriver } from './file/index.js';
import { nginxSiteDriver } from './nginx/index.js';
import { nftablesDriver } from './nftables/index.js';
import { pgDatabaseDriver, pgRoleDriver } from './postgresql/index.js';
import { releaseDriver } from './release/index.js';
import { sysctlDriver } from './sysctl/index.js';
import { timerDriver, unitDriver } from './systemd/driver.js';
import type { AnyDriver, WithManifests } from './types.js';

// Every driver. The engine looks drivers up here and nowhere else: a kind is
// its driver's `kind`, ordered by its `rank`; adding a kind is adding its folder
// and one line here. A kind without a driver is planned as "not yet supported".
export const DRIVERS = [
  accountDriver,
  directoryDriver,
  sysctlDriver,
  fileDriver,
  envFileDriver,
  releaseDriver,
  unitDriver,
  timerDriver,
  certificateDriver,
  nginxSiteDriver,
  nftablesDriver,
  pgRoleDriver,
  pgDatabaseDriver,
  commandDriver,
] as const;

/** The kinds of host state HostKit manages: one per registered driver. */
export type RegisteredKind = (typeof DRIVERS)[number]['kind'];

/** The manifest kinds the drivers expand besides Host and Project (drivers/NAME/manifest.ts). */
export type RegisteredPrimitive = Extract<(typeof DRIVERS)[number], WithManifests>['manifests'][number];

export const drivers: ReadonlyMap<ResourceKind, AnyDriver> = new Map<ResourceKind, AnyDriver>(DRIVERS.map((d) => [d.kind, d]));

/** Which driver will handle the kinds that have none yet (shown in plans). */
export const PLANNED_DRIVERS: Partial<Record<ResourceKind, string>> = {};
