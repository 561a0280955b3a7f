// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a project's lifecycle command.

export interface CommandSpec {
  project: string;
  name: string;
  phase: 'before-start' | 'after-start';
  command: string[];
  down?: string[];
  irreversible: boolean;
  user: string;
  workingDirectory: string;
  /** From the manifest's `timeout`; absent: COMMAND_TIMEOUT_MS. Not part of what the command does (its digest). */
  timeoutMs?: number;
}
