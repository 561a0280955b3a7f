import type { Change } from '../diff/model.js';
import { hasBackupPaths, type AnyDriver } from '../drivers/types.js';
import { commandStatePath } from '../drivers/command/index.js';
import { certificatePaths, htpasswdFile, siteFile } from '../drivers/nginx/paths.js';
import { BOOT_UNIT_PATH, bootPath } from '../drivers/nftables/boot.js';
import { listTableText } from '../drivers/nftables/nft.js';
import { restoreTransaction } from '../drivers/nftables/index.js';
import { UNIT_DIR } from '../drivers/systemd/render.js';
import type { Host } from '../hosts/types.js';
import type { HostSpec } from '../manifests/types.js';
import type { ObservedRole, RoleSettings, RoleSpec } from '../drivers/postgresql/role.js';
import type { RunJournal } from './journal.js';

/**
 * The files a change may overwrite or remove, backed up before it applies. A
 * driver can name its own (WithBackupPaths); the kinds known here need nothing
 * from their driver.
 */
export function backupPaths(change: Change, driver: AnyDriver | undefined, stateDirectory: string): string[] {
  if (hasBackupPaths(driver)) return driver.backupPaths(change);
  const spec = change.resource?.spec as { path?: string; unit?: string; site?: string; name?: string } | undefined;
  switch (change.kind) {
    case 'file':
    case 'envfile':
      return spec?.path ? [spec.path] : [];
    case 'unit':
    case 'timer':
      return spec?.unit ? [`${UNIT_DIR}/${spec.unit}`] : [];
    case 'site':
      return spec?.site ? [siteFile(spec.site), htpasswdFile(spec.site)] : [];
    case 'certificate': {
      if (!spec?.name) return [];
      const { certificate, key } = certificatePaths(spec.name);
      return [certificate, key];
    }
    case 'command':
      // What ran is recorded there: restoring it makes a rolled-back command run again next time.
      return [commandStatePath(stateDirectory)];
    case 'firewall':
      // The boot copy goes with the table: a restored run boots into the table it restored.
      return [bootPath(stateDirectory), BOOT_UNIT_PATH];
    default:
      return [];
  }
}

/** The role fields a restore puts back (all of them in one ALTER ROLE). */
const ROLE_FIELDS = new Set(['/login', '/connectionLimit', '/password']);

/**
 * Back up everything `change` may overwrite, before it applies. `postgresql` is the
 * Host manifest's admin connection, kept with a role's password so that a restore
 * (`hostkit rollback`, or the recovery of a killed run) can reach the server again.
 */
export async function backupChange(journal: RunJournal, change: Change, driver: AnyDriver | undefined, postgresql?: HostSpec['postgresql']): Promise<void> {
  for (const p of backupPaths(change, driver, journal.stateDirectory)) await journal.backupFile(change.id, p);
  if (change.kind === 'firewall') await journal.backupText(change.id, { type: 'firewall' }, restoreTransaction(await listTableText(journal.host)));
  // A role's settings, before any of them changes. A new password goes with a new env file
  // (DATABASE_URL): restoring the file alone would lock the service out.
  const observed = change.observed as ObservedRole | undefined;
  if (change.kind === 'pgrole' && change.action === 'update' && observed?.exists && change.fields.some((f) => ROLE_FIELDS.has(f.field))) {
    const role = (change.resource!.spec as RoleSpec).role;
    const settings: RoleSettings = { login: observed.login, connectionLimit: observed.connectionLimit, password: observed.password };
    await journal.backupText(change.id, { type: 'pgrole', role, ...(postgresql ? { postgresql } : {}) }, JSON.stringify(settings));
  }
}

export function isUnitPath(p: string): boolean {
  return p.startsWith(`${UNIT_DIR}/`) && !p.slice(UNIT_DIR.length + 1).includes('/');
}

/** Whether a unit, as its file reads, should be running: services that are not timer-driven, and timers. */
/** nginx reads it: a restored one needs `nginx -t` and a reload. */
export function isNginxPath(p: string): boolean {
  return p.startsWith('/etc/nginx/') || p.startsWith('/etc/hostkit/tls/');
}

export function unitRuns(name: string, content: Buffer | undefined): boolean {
  if (!content) return false;
  if (name.endsWith('.timer')) return true;
  return name.endsWith('.service') && !/^Type=oneshot$/m.test(content.toString('utf8'));
}

export async function readHostFile(host: Host, p: string): Promise<Buffer | undefined> {
  return host.readFile(p);
}
