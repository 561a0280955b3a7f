import type { ResourceKind } from '../core/resource.js';
import { accountDriver, authorizedKeysDriver, sudoersDriver } from './account/index.js';
import { aptSourceDriver } from './aptsource/index.js';
import { checkpointDriver } from './backup/index.js';
import { commandDriver } from './command/index.js';
import { certificateDriver } from './certificate/index.js';
import { directoryDriver } from './directory/index.js';
import { envFileDriver } from './envfile/index.js';
import { fileDriver } from './file/index.js';
import { KINDS, type RegisteredKind } from './kinds.js';
import { nginxSiteDriver } from './nginx/index.js';
import { nftablesDriver } from './nftables/index.js';
import { packageDriver } from './package/index.js';
import { pgAccessDriver, pgDatabaseDriver, pgRoleDriver } from './postgresql/index.js';
import { releaseDriver } from './release/index.js';
import { sysctlDriver } from './sysctl/index.js';
import { deployDriver } from './systemd/deploy/index.js';
import { timerDriver, unitDriver } from './systemd/driver.js';
import type { AnyDriver } from './types.js';

export type { RegisteredKind, RegisteredPrimitive } from './kinds.js';

// The driver of every kind in kinds.ts (its code: desire, observe, plan, apply...).
// The engine looks drivers up here and nowhere else. The compiler checks this has
// one driver for each registered kind, of that kind, and nothing else.
const RUNTIME = {
  aptsource: aptSourceDriver,
  package: packageDriver,
  account: accountDriver,
  directory: directoryDriver,
  authorizedkeys: authorizedKeysDriver,
  sysctl: sysctlDriver,
  sudoers: sudoersDriver,
  file: fileDriver,
  envfile: envFileDriver,
  checkpoint: checkpointDriver,
  release: releaseDriver,
  unit: unitDriver,
  timer: timerDriver,
  deploy: deployDriver,
  certificate: certificateDriver,
  site: nginxSiteDriver,
  firewall: nftablesDriver,
  pgaccess: pgAccessDriver,
  pgrole: pgRoleDriver,
  pgdatabase: pgDatabaseDriver,
  command: commandDriver,
} as const satisfies { readonly [K in RegisteredKind]: AnyDriver & { readonly kind: K } };

/** Every driver, in the order of KINDS (kinds.ts). */
export const DRIVERS = KINDS.map((k) => RUNTIME[k.kind]);

export const drivers: ReadonlyMap<ResourceKind, AnyDriver> = new Map<ResourceKind, AnyDriver>(DRIVERS.map((d) => [d.kind, d]));

/** Which driver will handle the kinds that have none yet (shown in plans). */
export const PLANNED_DRIVERS: Partial<Record<ResourceKind, string>> = {};
