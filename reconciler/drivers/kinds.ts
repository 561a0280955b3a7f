import { projectAccount } from './account/project.js';
import { afterStartCommands, lifecycleCommands } from './command/project.js';
import { projectDirectory } from './directory/project.js';
import { projectEnvFile } from './envfile/project.js';
import { projectFiles } from './file/project.js';
import type { ProjectPart } from './manifest-types.js';
import { projectDomains } from './nginx/project.js';
import { projectDatabase } from './postgresql/project.js';
import { projectUnits } from './systemd/project.js';

// How a Project is expanded, part by part (drivers/NAME/project.ts), in this order:
// each part sees the ids the parts before it added (ProjectExpansion.ids).
export const PROJECT_PARTS: readonly ProjectPart[] = [
  projectAccount,
  projectDirectory,
  projectFiles,
  projectEnvFile,
  projectDatabase,
  // Slot: the release (drivers/release/project.ts, #19): after the directory, files, env file and
  // database, before anything runs in the working directory, which it may move (/srv/NAME/current).
  lifecycleCommands,
  projectUnits,
  afterStartCommands,
  projectDomains,
];
