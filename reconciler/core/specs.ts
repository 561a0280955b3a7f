// Normalized specs of primitive resources, after defaults are applied: each is
// declared by its driver folder (drivers/NAME/spec.ts); re-exported here for the
// code outside the drivers.
export type { AccountSpec, AuthorizedKeysSpec, SudoersSpec, SudoRule } from '../drivers/account/spec.js';
export type { DirectorySpec } from '../drivers/directory/spec.js';
export type { FileSpec } from '../drivers/file/spec.js';
export type { EnvFileSpec } from '../drivers/envfile/spec.js';
export type { UnitSpec, TimerSpec } from '../drivers/systemd/spec.js';
export type { SiteSpec } from '../drivers/nginx/spec.js';
export type { CertificateSpec } from '../drivers/certificate/spec.js';
export type { PgAccessSpec, PgRoleSpec, PgDatabaseSpec } from '../drivers/postgresql/spec.js';
export type { FirewallSpec } from '../drivers/nftables/spec.js';
export type { CommandSpec } from '../drivers/command/spec.js';
