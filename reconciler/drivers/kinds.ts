// The light registry: every kind's definition (drivers/NAME/definition.ts: kind, rank,
// orphans, manifest kinds) and the parts of a Project's expansion (drivers/NAME/project.ts),
// without the drivers' code. Validation, schema generation and ordering read only this;
// registry.ts pairs each kind here with its driver. Adding a kind is adding its folder,
// its line in KINDS and its line in registry.ts (the compiler checks the two agree).
import { accountDefinition, authorizedKeysDefinition, sudoersDefinition } from './account/definition.js';
import { aptSourceDefinition } from './aptsource/definition.js';
import { hostAptSources } from './aptsource/host.js';
import { checkpointDefinition } from './backup/definition.js';
import { hostBackups } from './backup/host.js';
import { projectBackups } from './backup/project.js';
import { projectAccount } from './account/project.js';
import { certificateDefinition } from './certificate/definition.js';
import { commandDefinition } from './command/definition.js';
import { afterStartCommands, lifecycleCommands } from './command/project.js';
import { directoryDefinition } from './directory/definition.js';
import { projectDirectory } from './directory/project.js';
import { envFileDefinition } from './envfile/definition.js';
import { projectEnvFile } from './envfile/project.js';
import { fileDefinition } from './file/definition.js';
import { projectFiles } from './file/project.js';
import type { HostPart, ProjectPart } from './manifest-types.js';
import { firewallDefinition } from './nftables/definition.js';
import { siteDefinition } from './nginx/definition.js';
import { projectDomains } from './nginx/project.js';
import { packageDefinition } from './package/definition.js';
import { hostPackages } from './package/host.js';
import { pgAccessDefinition, pgDatabaseDefinition, pgRoleDefinition } from './postgresql/definition.js';
import { projectDatabase } from './postgresql/project.js';
import { releaseDefinition } from './release/definition.js';
import { projectRelease } from './release/project.js';
import { sysctlDefinition } from './sysctl/definition.js';
import { deployDefinition } from './systemd/deploy/definition.js';
import { timerDefinition, unitDefinition } from './systemd/definition.js';
import { projectUnits } from './systemd/project.js';
import type { KindDefinition } from './types.js';

// Every kind of host state HostKit manages, in registry order (the order of the
// manifest kinds in the generated schemas). A kind without a driver is planned as
// "not yet supported".
export const KINDS = [
  aptSourceDefinition,
  packageDefinition,
  accountDefinition,
  directoryDefinition,
  authorizedKeysDefinition,
  sysctlDefinition,
  sudoersDefinition,
  fileDefinition,
  envFileDefinition,
  checkpointDefinition,
  releaseDefinition,
  unitDefinition,
  timerDefinition,
  deployDefinition,
  certificateDefinition,
  siteDefinition,
  firewallDefinition,
  pgAccessDefinition,
  pgRoleDefinition,
  pgDatabaseDefinition,
  commandDefinition,
] as const satisfies readonly KindDefinition<string>[];

/** The kinds of host state HostKit manages: one per registered definition. */
export type RegisteredKind = (typeof KINDS)[number]['kind'];

/** The manifest kinds the drivers expand besides Host and Project (drivers/NAME/manifest.ts). */
export type RegisteredPrimitive = Extract<(typeof KINDS)[number], { manifests: readonly unknown[] }>['manifests'][number];

// How a Project is expanded, part by part (drivers/NAME/project.ts), in this order:
// each part sees the ids the parts before it added (ProjectExpansion.ids).
export const PROJECT_PARTS: readonly ProjectPart[] = [
  projectAccount,
  projectDirectory,
  projectFiles,
  projectEnvFile,
  projectDatabase,
  // After the directory, files, env file and database, before anything runs in the working
  // directory, which it moves (/srv/NAME/current).
  projectRelease,
  lifecycleCommands,
  projectUnits,
  afterStartCommands,
  projectDomains,
  // Last: its timers start after the database and the files they back up.
  projectBackups,
];

// What a host gets from its Host manifest and from everything placed on it, once every
// manifest is expanded (drivers/NAME/host.ts), in this order: each part sees the kinds
// the manifests and the parts before it added (the packages HostKit's kinds imply).
export const HOST_PARTS: readonly HostPart[] = [hostAptSources, hostPackages, hostBackups];
