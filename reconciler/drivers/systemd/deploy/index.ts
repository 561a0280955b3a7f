// Blue-green deploys (kind `deploy`): a project's service as two instances,
// hk-NAME@blue.service and hk-NAME@green.service, and an nginx upstream pointing at
// one of them. A new version starts on the idle instance, is health-checked on its
// own port, then nginx switches to it, and after a drain period the old one stops.
// See README.md in this folder.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { error, type Diagnostic } from '../../../core/diagnostics.js';
import { HostKitError } from '../../../core/errors.js';
import { changeBase, type Change, type FieldChange } from '../../../diff/model.js';
import { describeExec } from '../../../hosts/types.js';
import { run } from '../../shared/exec.js';
import { inputsDigest } from '../../shared/inputs.js';
import { verifyUnitFile } from '../../shared/unit-files.js';
import type { Driver, DriverContext } from '../../types.js';
import { HEADER, renderService, UNIT_DIR } from '../render.js';
import { journalTail, listUnits, showUnits } from '../systemctl.js';
import { deployDefinition } from './definition.js';
import { awaitHealthy } from './health.js';
import { COLORS, instanceUnit, otherColor, renderUpstream, upstreamColor, upstreamFile } from './layout.js';
import { deployRestore } from './restore.js';
import type { Color, DeploySpec } from './spec.js';

export interface DesiredDeploy {
  /** sha256 (16 hex) of the service as the restart strategy would render it, its inputs' digest included: a new one is a new version. */
  version: string;
  /** The unit text an instance gets, before its port and directory are filled in (for plans). */
  text: string;
}

export interface ObservedDeploy {
  /** The instance nginx's upstream points at. */
  upstream?: Color;
  /** The version each instance's unit file was written for, by color (absent: no file). */
  versions: Partial<Record<Color, string>>;
  running: Record<Color, boolean>;
}

/**
 * What an apply does, in order: `start` the idle instance on the new version, `check` it on its
 * own port, `switch` nginx's upstream to it (nginx -t, graceful reload), `drain`, then `stop` the
 * other one. `stop` alone: an idle instance left running. `remove`: both instances and the upstream (an orphan).
 */
export type DeployOp =
  | { op: 'start'; instance: string; port: number }
  | { op: 'check'; instance: string; port: number }
  | { op: 'switch'; instance: string }
  | { op: 'drain'; ms: number }
  | { op: 'stop'; instance: string }
  | { op: 'remove' };

type DeployChange = Change<DesiredDeploy, ObservedDeploy, DeploySpec, DeployOp>;

/** What the run switched to, by change id, for verify. */
export interface DeployRun {
  switched: Map<string, Color>;
}

const VERSION_LINE = /^# HostKit deploy version: ([0-9a-f]{16})$/m;

function versionOf(text: string | undefined): string | undefined {
  return VERSION_LINE.exec(text ?? '')?.[1];
}

function colorOf(instance: string): Color {
  return instance.endsWith('@blue.service') ? 'blue' : 'green';
}

/** One instance's unit file: the service with its own port (PORT) and directory, marked with the version it runs. */
export function renderInstance(spec: DeploySpec, desired: DesiredDeploy, color: Color, workingDirectory: string | undefined): string {
  const service = {
    ...spec.service,
    unit: instanceUnit(spec.project, color),
    description: `${spec.service.description} (${color})`,
    ...(workingDirectory ? { workingDirectory } : {}),
    environment: { ...spec.service.environment, PORT: String(spec.ports[color]) },
  };
  const text = renderService(service, undefined, false);
  const inputs = /^# HostKit inputs: .*$/m.exec(desired.text)?.[0];
  return text.replace(HEADER.trimEnd(), [HEADER.trimEnd(), `# HostKit deploy version: ${desired.version}`, ...(inputs ? [inputs] : [])].join('\n'));
}

// With releases each instance runs from its own release (the one this run switches to, else what `current` points to), never through `current`.
async function instanceDirectory(spec: DeploySpec, ctx: DriverContext): Promise<string | undefined> {
  const dir = spec.service.workingDirectory;
  if (!spec.releases || !dir) return dir;
  const switching = ctx.run.switches.of(spec.project);
  if (switching) return switching.directory;
  const target = await ctx.host.readlink(dir);
  if (!target)
    throw new HostKitError('DEPLOY_NO_RELEASE', `project ${spec.project}: ${dir} points to no release, so no instance can start`, {
      data: { project: spec.project },
    });
  return path.posix.resolve(path.posix.dirname(dir), target);
}

async function systemctl(ctx: DriverContext, args: string[]): Promise<void> {
  await run(ctx.host, 'systemctl', args);
}

/** Blue-green deploys (kind `deploy`): see README.md in this folder. Rank 5.5: after the release and before-start commands, before the units and sites. */
export const deployDriver: Driver<DeploySpec, DesiredDeploy, ObservedDeploy, void, 'deploy', DeployRun, DeployOp> = {
  ...deployDefinition,
  restore: deployRestore,

  createRun: () => ({ switched: new Map() }),

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredDeploy; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const spec = r.spec;
      const text = renderService(spec.service, spec.service.reads.length > 0 ? await inputsDigest(ctx, spec.service.reads) : undefined, false);
      const version = createHash('sha256').update(text).digest('hex').slice(0, 16);
      out.set(r.id, { desired: { version, text }, diagnostics: [] });
    }
    return out;
  },

  // Files read directly; the instances' states from one `systemctl list-units` for every project.
  async observe(resources, ctx) {
    const units = resources.flatMap((r) => COLORS.map((c) => instanceUnit(r.spec.project, c)));
    const [files, upstreams, listed] = await Promise.all([
      Promise.all(units.map((u) => ctx.host.readFile(`${UNIT_DIR}/${u}`))),
      Promise.all(resources.map((r) => ctx.host.readFile(upstreamFile(r.spec.project)))),
      listUnits(ctx.host, units).catch((cause: unknown) => {
        if (ctx.mode === 'plan') return new Map<string, { active: string }>();
        throw cause;
      }),
    ]);
    const out = new Map<string, ObservedDeploy>();
    resources.forEach((r, i) => {
      const observed: ObservedDeploy = { versions: {}, running: { blue: false, green: false } };
      const upstream = upstreamColor(upstreams[i]?.toString('utf8'));
      if (upstream) observed.upstream = upstream;
      COLORS.forEach((c, j) => {
        const k = i * COLORS.length + j;
        const version = files[k] ? (versionOf(files[k]!.toString('utf8')) ?? 'unknown') : undefined;
        if (version) observed.versions[c] = version;
        observed.running[c] = listed.get(units[k]!)?.active === 'active';
      });
      if (observed.upstream || Object.keys(observed.versions).length > 0) out.set(r.id, observed);
    });
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = changeBase(resource);
    const spec = resource.spec;
    if (orphan || !desired) {
      if (!observed) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already removed' };
      return {
        ...base,
        action: 'delete',
        fields: [],
        ops: [{ op: 'remove' }],
        disruptive: true,
        reason: 'no manifest declares it any more: both instances stopped and removed',
        observed,
      } as DeployChange;
    }
    const active = observed?.upstream;
    const fields: FieldChange[] = [];
    const ops: DeployOp[] = [];
    if (active && observed.versions[active] === desired.version && observed.running[active]) {
      const idle = otherColor(active);
      if (observed.running[idle]) {
        fields.push({ field: `/instances/${idle}`, before: 'running', after: 'stopped (idle)' });
        ops.push({ op: 'stop', instance: instanceUnit(spec.project, idle) });
      }
    } else {
      // The idle instance takes the new version; a first deploy starts green, on the second port (the declared one may still be held by `hk-NAME.service`).
      const to: Color = active ? otherColor(active) : 'green';
      const instance = instanceUnit(spec.project, to);
      const before = active ? observed.versions[active] : undefined;
      if (before) fields.push({ field: '/version', before, after: desired.version });
      fields.push({ field: '/serving', ...(active ? { before: instanceUnit(spec.project, active) } : {}), after: instance });
      ops.push({ op: 'start', instance, port: spec.ports[to] }, { op: 'check', instance, port: spec.ports[to] }, { op: 'switch', instance });
      const from = otherColor(to);
      if (observed?.versions[from] !== undefined || observed?.running[from]) {
        if (observed?.running[from]) ops.push({ op: 'drain', ms: spec.drainMs });
        ops.push({ op: 'stop', instance: instanceUnit(spec.project, from) });
      }
    }
    const action = ops.length === 0 ? 'noop' : !observed ? 'create' : 'update';
    // Nothing serving is lost on the way: the old instance serves until nginx has switched.
    return { ...base, action, fields, ops, disruptive: false, desired, ...(observed ? { observed } : {}) } as DeployChange;
  },

  // If it throws before `switch`, nginx still points at the old instance, which runs as before; the new one
  // is stopped (a failed check) or left to the run's restore, which stops it. After `switch`, the restore
  // starts the old one if it was stopped, points nginx back at it, then stops the new one.
  async apply(change, ctx, state) {
    const spec = change.resource!.spec;
    for (const op of change.ops) {
      switch (op.op) {
        case 'start': {
          const color = colorOf(op.instance);
          const text = renderInstance(spec, change.desired!, color, await instanceDirectory(spec, ctx));
          await verifyUnitFile(ctx, op.instance, text);
          await ctx.host.writeFile(`${UNIT_DIR}/${op.instance}`, text, { uid: 0, gid: 0, mode: 0o644 });
          await systemctl(ctx, ['daemon-reload']);
          const started = await ctx.host.exec('systemctl', ['restart', op.instance]);
          if (started.exitCode !== 0) {
            const tail = await journalTail(ctx.host, op.instance);
            await ctx.host.exec('systemctl', ['stop', op.instance]);
            throw new HostKitError(
              'UNIT_START_FAILED',
              `${op.instance} failed to start: ${describeExec('systemctl', ['restart', op.instance], started)}\n${tail}`,
              {
                data: { unit: op.instance, resourceId: change.id },
              },
            );
          }
          break;
        }
        case 'check': {
          const problem = await awaitHealthy(ctx.host, spec, op.port);
          if (problem !== undefined) {
            const tail = await journalTail(ctx.host, op.instance);
            // Never switched to: it stops now, and nginx still points at the instance that served.
            await ctx.host.exec('systemctl', ['stop', op.instance]);
            throw new HostKitError(
              'DEPLOY_UNHEALTHY',
              `project ${spec.project}: the new version on ${op.instance} failed its health check on port ${op.port}, so nginx was not switched: ${problem}${tail ? `\njournal:\n${tail}` : ''}`,
              { data: { project: spec.project, unit: op.instance, resourceId: change.id } },
            );
          }
          break;
        }
        case 'switch': {
          const color = colorOf(op.instance);
          const file = upstreamFile(spec.project);
          await ctx.run.nginx.changing({ path: file, resourceId: change.id });
          await ctx.host.writeFile(file, renderUpstream(spec.project, color, spec.address, spec.ports[color]), { uid: 0, gid: 0, mode: 0o644 });
          // `current` switches together with nginx: the release this instance runs (drivers/release deferred it).
          await ctx.run.switches.make(spec.project);
          // nginx -t, then a graceful reload: old workers finish their requests in flight on the old instance.
          await ctx.run.nginx.flush(change.id);
          await systemctl(ctx, ['enable', '--quiet', op.instance]);
          state.switched.set(change.id, color);
          break;
        }
        case 'drain':
          await new Promise((resolve) => setTimeout(resolve, op.ms));
          break;
        case 'stop':
          await ctx.host.exec('systemctl', ['disable', '--now', '--quiet', op.instance]); // best effort: it may not be loaded
          break;
        case 'remove': {
          const units = COLORS.map((c) => instanceUnit(spec.project, c));
          for (const unit of units) await ctx.host.exec('systemctl', ['disable', '--now', '--quiet', unit]);
          for (const unit of units) await ctx.host.remove(`${UNIT_DIR}/${unit}`);
          await ctx.run.nginx.changing({ path: upstreamFile(spec.project), resourceId: change.id });
          await ctx.host.remove(upstreamFile(spec.project));
          await systemctl(ctx, ['daemon-reload']);
          break;
        }
      }
    }
  },

  async verify(change, ctx, state) {
    const color = state.switched.get(change.id);
    if (!color) return [];
    const spec = change.resource!.spec;
    const unit = instanceUnit(spec.project, color);
    const [upstream, states] = await Promise.all([ctx.host.readFile(upstreamFile(spec.project)), showUnits(ctx.host, [unit])]);
    const problems: string[] = [];
    if (upstreamColor(upstream?.toString('utf8')) !== color) problems.push(`${upstreamFile(spec.project)} does not point at ${unit}`);
    if (states.get(unit)?.ActiveState !== 'active') problems.push(`${unit} is ${states.get(unit)?.ActiveState ?? 'unknown'}, not active`);
    return problems.length === 0 ? [] : [error('deploy not serving', problems.join('; '), change.origin)];
  },
};
