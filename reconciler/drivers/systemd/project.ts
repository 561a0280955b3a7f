import { stringEnv, UNIT_PREFIX, workingDirectory } from '../../manifests/primitive.js';
import { scheduleError, toOnCalendar } from '../../manifests/schedule.js';
import type { ProjectExpansion, ProjectPart } from '../manifest-types.js';
import { blueGreen, expandDeploy } from './deploy/project.js';
import type { TimerSpec, UnitSpec } from './spec.js';

// The service, the workers and the timers: units run as the project's user in its
// working directory with its env file, started after everything before them.
export const projectUnits: ProjectPart = {
  name: 'units',
  expand(x) {
    const spec = x.project.spec;
    const name = x.name;
    const dependsOn = [...x.startsAfter(), ...x.ids.beforeStart];
    if (spec.service?.command) {
      const unit = `${UNIT_PREFIX}${name}.service`;
      const service = unitBase(x, unit, `HostKit project ${name}`, spec.service.command, 'simple');
      // blue-green: two instances of the service behind nginx (drivers/systemd/deploy), not one unit restarted in place.
      const id = blueGreen(x)
        ? expandDeploy(x, service, [...dependsOn])
        : x.add<UnitSpec>('unit', unit, service, x.at('/spec/service'), { dependsOn: [...dependsOn] });
      if (id) x.ids.units.push(id);
      if (spec.service.port !== undefined) x.claimPort(spec.service.port, spec.service.bind ?? '127.0.0.1', x.at('/spec/service/port'));
    }
    (spec.workers ?? []).forEach((w, i) => {
      const unit = `${UNIT_PREFIX}${name}-${w.name}.service`;
      const u = unitBase(x, unit, `HostKit project ${name}, worker ${w.name}`, w.command, 'simple');
      u.environment = stringEnv(w.environment);
      u.restart = w.restart ?? u.restart;
      u.limits = w.limits ?? u.limits;
      x.ids.units.push(x.add<UnitSpec>('unit', unit, u, x.at(`/spec/workers/${i}`), { dependsOn: [...dependsOn] }));
    });
    (spec.timers ?? []).forEach((t, i) => {
      const service = `${UNIT_PREFIX}${name}-${t.name}.service`;
      const timer = `${UNIT_PREFIX}${name}-${t.name}.timer`;
      const u = unitBase(x, service, `HostKit project ${name}, timer ${t.name}`, t.command, 'oneshot');
      u.restart = 'no';
      u.limits = t.limits ?? u.limits;
      const serviceId = x.add<UnitSpec>('unit', service, u, x.at(`/spec/timers/${i}`), { dependsOn: [...dependsOn] });
      const converted = toOnCalendar(t.schedule);
      if ('error' in converted) {
        x.report(scheduleError(`timers[${i}].schedule`, t.schedule, converted.error, x.at(`/spec/timers/${i}/schedule`)));
        return;
      }
      x.add<TimerSpec>(
        'timer',
        timer,
        { unit: timer, service, onCalendar: converted.onCalendar, schedule: t.schedule, persistent: t.persistent ?? true },
        x.at(`/spec/timers/${i}`),
        { dependsOn: [serviceId] },
      );
    });
  },
};

function unitBase(x: ProjectExpansion, unit: string, description: string, command: string[], type: UnitSpec['type']): UnitSpec {
  const service = x.project.spec.service;
  return {
    unit,
    description,
    command,
    user: x.user,
    group: x.user,
    workingDirectory: x.workingDirectory,
    ...(x.environmentFile ? { environmentFile: x.environmentFile } : {}),
    environment: {},
    restart: service?.restart ?? 'on-failure',
    type,
    limits: service?.limits ?? {},
    isolation: {
      profile: service?.isolation?.profile ?? 'web-service',
      // The project's directory, also when the units run in a release inside it (its shared paths are there).
      writablePaths: service?.isolation?.writablePaths ?? [workingDirectory(x.project)],
      network: service?.isolation?.network ?? 'any',
    },
    reads: x.reads,
  };
}
