import { stringEnv, UNIT_PREFIX } from '../../manifests/primitive.js';
import { scheduleError, toOnCalendar } from '../../manifests/schedule.js';
import type { Environment, Limits, Restart } from '../../manifests/types.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { TimerSpec, UnitSpec } from './spec.js';

/** A Unit manifest's spec as written. */
export interface UnitManifestSpec {
  command: string[];
  user?: string;
  workingDirectory?: string;
  environment?: Environment;
  restart?: Restart;
  limits?: Limits;
  schedule?: string;
}

// A service hk-NAME.service, run as `nobody` unless a user is given; with a schedule, a oneshot and its timer.
export const unitPrimitive: PrimitiveDefinition<'Unit', UnitManifestSpec> = {
  kind: 'Unit',
  schema: {
    title: 'A systemd service',
    required: ['command'],
    properties: {
      command: { $ref: 'common.schema.json#/$defs/command' },
      user: { $ref: 'common.schema.json#/$defs/userName' },
      workingDirectory: { $ref: 'common.schema.json#/$defs/absolutePath' },
      environment: { $ref: 'common.schema.json#/$defs/environment' },
      restart: { enum: ['always', 'on-failure', 'no'] },
      limits: { $ref: 'common.schema.json#/$defs/limits' },
      schedule: { $ref: 'common.schema.json#/$defs/schedule' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const name = m.name;
    const user = s.user ?? 'nobody';
    const unit = `${UNIT_PREFIX}${name}.service`;
    const u: UnitSpec = {
      unit,
      description: m.value.metadata.description ?? `HostKit unit ${name}`,
      command: s.command,
      user,
      group: user === 'nobody' ? 'nogroup' : user,
      environment: stringEnv(s.environment),
      restart: s.restart ?? 'on-failure',
      type: s.schedule ? 'oneshot' : 'simple',
      limits: s.limits ?? {},
      isolation: { profile: 'web-service', writablePaths: [], network: 'any' },
      reads: [],
      ...(s.workingDirectory ? { workingDirectory: s.workingDirectory } : {}),
    };
    const serviceId = x.add<UnitSpec>('unit', unit, u, x.origin, s.user ? { fieldOrigins: { user: x.at('/spec/user'), group: x.at('/spec/user') } } : {});
    if (!s.schedule) return;
    const converted = toOnCalendar(s.schedule);
    if ('error' in converted) {
      x.report(scheduleError('schedule', s.schedule, converted.error, x.at('/spec/schedule')));
      return;
    }
    const timer = `${UNIT_PREFIX}${name}.timer`;
    x.add<TimerSpec>('timer', timer, { unit: timer, service: unit, onCalendar: converted.onCalendar, schedule: s.schedule, persistent: true }, x.origin, {
      dependsOn: [serviceId],
    });
  },

  policy(m, c) {
    const s = m.value.spec;
    const room = c.project;
    c.user(s.user ?? 'nobody', s.user ? '/spec/user' : '/spec/command', `unit hk-${m.name}.service`);
    if (s.workingDirectory) c.path(s.workingDirectory, '/spec/workingDirectory', 'workingDirectory');
    if (room && !room.ownsUnitName(m.name)) {
      c.refuse(
        'unit-name',
        `unit hk-${m.name}.service is not named after project ${room.project} (hk-${room.project}.service or hk-${room.project}-*)`,
        '/metadata/name',
      );
    }
  },
};
