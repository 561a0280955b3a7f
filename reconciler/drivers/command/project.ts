import { durationMs } from '../../core/duration.js';
import type { ProjectPart } from '../manifest-types.js';
import type { CommandSpec } from './spec.js';

// spec.lifecycle: one command each, after everything the project's processes start
// after; a before-start command before the units (they wait for it).
export const lifecycleCommands: ProjectPart = {
  name: 'lifecycle commands',
  expand(x) {
    const startsAfter = x.startsAfter();
    (x.project.spec.lifecycle ?? []).forEach((l, i) => {
      const cmd: CommandSpec = {
        project: x.name,
        name: l.name,
        phase: l.phase,
        command: l.command,
        irreversible: l.irreversible ?? false,
        user: x.user,
        workingDirectory: x.workingDirectory,
        ...(l.down ? { down: l.down } : {}),
        ...(l.timeout ? { timeoutMs: durationMs(l.timeout) } : {}),
      };
      const id = x.add<CommandSpec>('command', `${x.name}-${l.name}`, cmd, x.at(`/spec/lifecycle/${i}`), { dependsOn: startsAfter });
      (l.phase === 'before-start' ? x.ids.beforeStart : x.ids.afterStart).push(id);
    });
  },
};

// An after-start command runs once the project's units started (after the units part).
export const afterStartCommands: ProjectPart = {
  name: 'after-start commands',
  expand(x) {
    for (const id of x.ids.afterStart) x.dependOn(id, x.ids.units);
  },
};
