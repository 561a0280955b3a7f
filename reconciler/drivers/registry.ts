import type { ResourceKind } from '../core/resource.js';
import { accountDriver } from './account/index.js';
import { certificateDriver } from './certificate/index.js';
import { directoryDriver } from './directory/index.js';
import { envFileDriver } from './envfile/index.js';
import { fileDriver } from './file/index.js';
import { nginxSiteDriver } from './nginx/index.js';
import { nftablesDriver } from './nftables/index.js';
import { pgDatabaseDriver, pgRoleDriver } from './postgresql/index.js';
import { timerDriver, unitDriver } from './systemd/driver.js';
import type { AnyDriver } from './types.js';

// Every driver, by the resource kind it manages. The engine looks drivers up
// here and nowhere else; a kind without a driver is planned as "not yet supported".
export const drivers: ReadonlyMap<ResourceKind, AnyDriver> = new Map<ResourceKind, AnyDriver>([
  ['account', accountDriver],
  ['directory', directoryDriver],
  ['file', fileDriver],
  ['envfile', envFileDriver],
  ['unit', unitDriver],
  ['timer', timerDriver],
  ['certificate', certificateDriver],
  ['site', nginxSiteDriver],
  ['firewall', nftablesDriver],
  ['pgrole', pgRoleDriver],
  ['pgdatabase', pgDatabaseDriver],
]);

/** Which driver will handle the kinds that have none yet (shown in plans). */
export const PLANNED_DRIVERS: Partial<Record<ResourceKind, string>> = {
  command: 'lifecycle commands',
};
