import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import type { TimerSpec, UnitSpec } from '../../core/specs.js';
import { changeBase, findOp, hasOp, type Change, type FieldChange } from '../../diff/model.js';
import { describeExec } from '../../hosts/types.js';
import { run } from '../shared/exec.js';
import { inputsDigest } from '../shared/inputs.js';
import { recordWritten, shownLive } from '../shared/owned.js';
import { unifiedDiff } from '../shared/text-diff.js';
import type { Driver, DriverContext } from '../types.js';
import { analyzeUnits, verifyUnitFile } from '../shared/unit-files.js';
import { unitRestore } from './restore.js';
import { readPending, writePending } from './pending.js';
import { redactUnitText, renderService, renderTimer, UNIT_DIR } from './render.js';
import { journalTail, listUnits, RESTART_GRACE_MS, showUnits, type UnitState } from './systemctl.js';
import { timerDefinition, unitDefinition } from './definition.js';

export interface DesiredUnit {
  unit: string;
  path: string;
  content: string;
  /** The content as a plan may show it (plain credentials redacted: render.ts redactUnitText). */
  display: string;
  /** Should be running (services) or waiting (timers) and enabled at boot. */
  active: boolean;
  /** The target whose .wants/ holds the unit when enabled. */
  wantedBy?: string;
}

export interface ObservedUnit {
  content?: Buffer;
  /** HostKit's own content as a plan may show it (plain credentials redacted). */
  shown?: string;
  /** What a plan says of a unit file HostKit did not write (or that was edited since): size and fingerprint, never its text. */
  unowned?: string;
  /** systemd's view; absent where systemd could not be asked (a dry run on a machine without systemd). */
  state?: { load: string; active: string; sub: string; enabled: boolean };
  /** A restart owed by an earlier run that stopped before making it. */
  pending: boolean;
  /** Drop-in files found in UNIT.d/: HostKit owns the unit, so these are drift. */
  dropIns: string[];
}

export interface UnitUndo {
  previous?: Buffer;
  wrote: boolean;
  /** Drop-ins apply removed, with their bytes, for rollback. */
  removedDropIns?: { name: string; content: Buffer; mode: number; uid: number; gid: number }[];
}

/**
 * What apply and settle do to a unit (service or timer), in order: write its file (checked
 * by systemd-analyze first), remove hand-made drop-ins, enable it, daemon-reload, restart
 * it; or stop, disable and remove it. Enable, daemon-reload and restart happen in settle,
 * one call each for all the run's units.
 */
export type UnitOp =
  | { op: 'write' }
  | { op: 'remove-drop-ins'; dropIns: string[] }
  | { op: 'enable' }
  | { op: 'daemon-reload' }
  | { op: 'restart' }
  | { op: 'stop' }
  | { op: 'disable' }
  | { op: 'remove' };

type Spec = UnitSpec | TimerSpec;

export { RESTART_GRACE_MS } from './systemctl.js';

/**
 * What one run of one driver resolved and saw, by unit name, so that apply can do
 * for every changed unit at once what it would otherwise do once per unit: one
 * `systemd-analyze verify` for all new unit files, one write of the pending list.
 */
export interface UnitRun {
  desired: Map<string, DesiredUnit>;
  observed: Map<string, ObservedUnit>;
  /** Messages per unit from one verify of every changed unit file; undefined when that verify failed. */
  verified?: Promise<Map<string, { content: string; messages: string[] }> | undefined>;
  /** Units added to the pending list in one write, before the first unit file changed. */
  pendingBatch?: Promise<Set<string>>;
  /**
   * Unit states seen after settle, for verify (one systemctl call per run, not per unit).
   * They are asked after the restart grace, which runs while the drivers after this one
   * settle (nginx reloads meanwhile); verify awaits them. Services and timers are two
   * drivers, each with its own.
   */
  settled?: Promise<Map<string, UnitState>>;
}

function unitName(spec: Spec): string {
  return spec.unit;
}

/** A unit file without its comment lines (systemd.syntax(7): `#` and `;` start one). */
function directives(content: string): string {
  return content
    .split('\n')
    .filter((l) => !/^\s*[#;]/.test(l))
    .join('\n');
}

/** The installed file differs from `content` in comments only, and systemd has loaded it. */
export function sameDirectivesLoaded(observed: ObservedUnit | undefined, content: string): boolean {
  return observed?.content !== undefined && observed.state?.load === 'loaded' && directives(observed.content.toString('utf8')) === directives(content);
}

/**
 * systemd units HostKit owns (prefix hk-, files in /etc/systemd/system). One
 * factory for both kinds: services ("unit") and timers ("timer").
 */
function makeDriver<K extends 'unit' | 'timer'>(kind: K): Driver<Spec, DesiredUnit, ObservedUnit, UnitUndo, K, UnitRun, UnitOp> {
  // Units this run will write a new file for, with that file.
  const changedFiles = (state: UnitRun) => [...state.desired.values()].filter((d) => state.observed.get(d.unit)?.content?.toString('utf8') !== d.content);
  // New files systemd-analyze has to vouch for: not those whose directives are the ones
  // systemd has loaded already, with only comments new (an input file's digest, the
  // usual change: a new environment value).
  const filesToVerify = (state: UnitRun) => changedFiles(state).filter((d) => !sameDirectivesLoaded(state.observed.get(d.unit), d.content));
  // Units this run will restart: live units with a new file, drop-ins to remove or a restart owed.
  const restartCandidates = (state: UnitRun) =>
    [...state.desired.values()]
      .filter((d) => d.active)
      .filter((d) => {
        const o = state.observed.get(d.unit);
        return o?.content?.toString('utf8') !== d.content || (o?.dropIns.length ?? 0) > 0 || o?.pending === true;
      })
      .map((d) => d.unit);

  // Checked by systemd-analyze before it goes live: all of this run's new unit files in one
  // call (the first apply starts it); a unit that call did not vouch for is checked alone.
  async function checkUnitFile(ctx: DriverContext, state: UnitRun, unit: string, content: string): Promise<void> {
    if (sameDirectivesLoaded(state.observed.get(unit), content)) return;
    state.verified ??= verifyUnitFiles(
      ctx,
      filesToVerify(state).map((d) => ({ unit: d.unit, content: d.content })),
    );
    const seen = (await state.verified)?.get(unit);
    if (seen && seen.content === content) {
      for (const message of seen.messages) ctx.warnings.push(warning('unit warning', `systemd-analyze verify ${unit}: ${message}`));
      return;
    }
    await verifyUnitFile(ctx, unit, content);
  }

  // The restart is recorded as owed before the unit file changes: for every unit this run
  // will restart in one write (the first apply makes it), for any other unit on its own.
  async function markPending(ctx: DriverContext, state: UnitRun, unit: string): Promise<void> {
    state.pendingBatch ??= (async () => {
      const batch = new Set(restartCandidates(state));
      const pending = await readPending(ctx.host, ctx.stateDirectory);
      for (const u of batch) pending.add(u);
      await writePending(ctx.host, ctx.stateDirectory, pending);
      return batch;
    })();
    if ((await state.pendingBatch).has(unit)) return;
    const pending = await readPending(ctx.host, ctx.stateDirectory);
    pending.add(unit);
    await writePending(ctx.host, ctx.stateDirectory, pending);
  }

  const driver: Driver<Spec, DesiredUnit, ObservedUnit, UnitUndo, K, UnitRun, UnitOp> = {
    ...(kind === 'unit' ? unitDefinition : timerDefinition),
    kind,

    createRun: () => ({ desired: new Map(), observed: new Map() }),

    async desire(resources, ctx, state) {
      const out = new Map<string, { desired: DesiredUnit; diagnostics: Diagnostic[] }>();
      const calendarProblems = kind === 'timer' ? await checkCalendars(resources as Resource<TimerSpec>[], ctx) : new Map<string, Diagnostic>();
      for (const r of resources) {
        const diagnostics: Diagnostic[] = [];
        let content: string;
        let active: boolean;
        if (kind === 'timer') {
          const spec = r.spec as TimerSpec;
          content = renderTimer(spec);
          active = true;
          const problem = calendarProblems.get(r.id);
          if (problem) diagnostics.push(problem);
        } else {
          const spec = r.spec as UnitSpec;
          const timerDriven = spec.type === 'oneshot';
          content = renderService(spec, spec.reads.length > 0 ? await inputsDigest(ctx, spec.reads) : undefined, timerDriven);
          active = !timerDriven;
        }
        const wantedBy = kind === 'timer' ? 'timers.target' : active ? 'multi-user.target' : undefined;
        const desired: DesiredUnit = {
          unit: unitName(r.spec),
          path: `${UNIT_DIR}/${unitName(r.spec)}`,
          content,
          display: redactUnitText(content, ctx.secrets.fingerprint),
          active,
          ...(wantedBy ? { wantedBy } : {}),
        };
        state.desired.set(desired.unit, desired);
        recordWritten(ctx, r.id, desired.path, content);
        out.set(r.id, { desired, diagnostics });
      }
      return out;
    },

    // Unit files and .wants/ links are read directly; states come from one `systemctl list-units`.
    async observe(resources, ctx, run) {
      const units = resources.map((r) => unitName(r.spec));
      const target = kind === 'timer' ? 'timers.target' : 'multi-user.target';
      const [files, dropIns, links, listed, pending] = await Promise.all([
        Promise.all(units.map((u) => ctx.host.readFile(`${UNIT_DIR}/${u}`))),
        Promise.all(units.map(async (u) => ((await ctx.host.readdir(`${UNIT_DIR}/${u}.d`)) ?? []).filter((n) => n.endsWith('.conf')).sort())),
        Promise.all(units.map((u) => ctx.host.stat(`${UNIT_DIR}/${target}.wants/${u}`))),
        listUnits(ctx.host, units).catch((cause: unknown) => {
          if (ctx.mode === 'plan') return undefined; // e.g. a laptop without systemd: plan from files alone
          throw cause;
        }),
        readPending(ctx.host, ctx.stateDirectory),
      ]);
      const out = new Map<string, ObservedUnit>();
      resources.forEach((r, i) => {
        const unit = units[i]!;
        const content = files[i];
        if (content === undefined && !pending.has(unit)) return;
        const l = listed?.get(unit);
        const state = listed
          ? { load: l?.load ?? 'not-found', active: l?.active ?? 'inactive', sub: l?.sub ?? 'dead', enabled: links[i] !== undefined }
          : undefined;
        const observed: ObservedUnit = { ...(content ? { content } : {}), ...(state ? { state } : {}), pending: pending.has(unit), dropIns: dropIns[i] ?? [] };
        if (content) {
          const shown = shownLive(ctx, r.id, `${UNIT_DIR}/${unit}`, content);
          if (shown.owned) observed.shown = redactUnitText(shown.text, ctx.secrets.fingerprint);
          else observed.unowned = shown.summary;
        }
        run.observed.set(unit, observed);
        out.set(r.id, observed);
      });
      return out;
    },

    plan({ resource, desired, observed, orphan }) {
      const base = changeBase(resource);
      if (orphan || !desired) {
        if (!observed?.content) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already removed' };
        return {
          ...base,
          action: 'delete',
          fields: [],
          ops: [{ op: 'stop' }, { op: 'disable' }, { op: 'remove' }],
          disruptive: true,
          reason: 'no manifest declares it any more: stopped, disabled and removed',
          observed,
        };
      }
      const fields: FieldChange[] = [];
      const ops: UnitOp[] = [];
      const before = observed?.content?.toString('utf8');
      const rewrite = before !== desired.content;
      if (rewrite) ops.push({ op: 'write' });
      if (rewrite && observed?.unowned !== undefined) {
        // Not HostKit's bytes: their size and fingerprint, never their text.
        fields.push({ field: '/content', before: observed.unowned, after: 'unit file' });
      } else if (rewrite) {
        fields.push({
          field: '/content',
          ...(before !== undefined ? { before: 'unit file' } : {}),
          after: 'unit file',
          diff: unifiedDiff(observed?.shown ?? '', desired.display),
        });
      }
      const state = observed?.state;
      // Settle's work besides the new file's (one written is loaded, and restarted if it runs).
      let reload = false;
      let restart = rewrite;
      if (observed?.content && state && !rewrite) {
        // A current file that systemd has not loaded (e.g. a run killed before its daemon-reload).
        if (state.load !== 'loaded') {
          fields.push({ field: '/daemonReload', before: `LoadState ${state.load}`, after: 'loaded' });
          reload = true;
        }
      }
      // Enabled with its new file, or again where its link went missing.
      const enable = desired.wantedBy !== undefined && (!observed?.content || (state !== undefined && !state.enabled));
      if (observed?.content && state) {
        if (desired.active && state.active !== 'active') {
          fields.push({ field: '/state', before: `${state.active} (${state.sub})`, after: 'active' });
          restart = true;
        }
        if (desired.wantedBy && !state.enabled) fields.push({ field: '/enabled', before: 'disabled', after: 'enabled' });
      }
      if (observed && observed.dropIns.length > 0) {
        // Hand-made overrides change what the unit does behind the manifest's back.
        fields.push({ field: '/dropIns', before: observed.dropIns.map((n) => `${desired.unit}.d/${n}`), after: [] });
        ops.push({ op: 'remove-drop-ins', dropIns: [...observed.dropIns] });
        restart = true;
      }
      if (observed?.pending && desired.active) {
        fields.push({ field: '/restart', before: 'owed by an interrupted run', after: 'restarted' });
        reload = restart = true;
      }
      if (enable) ops.push({ op: 'enable' });
      if (reload) ops.push({ op: 'daemon-reload' });
      if (restart && desired.active) ops.push({ op: 'restart' });
      const action = !observed?.content ? 'create' : fields.length > 0 ? 'update' : 'noop';
      return { ...base, action, fields, ops, disruptive: action !== 'noop' && desired.active, desired, ...(observed ? { observed } : {}) } as Change<
        DesiredUnit,
        ObservedUnit,
        Spec,
        UnitOp
      >;
    },

    // If this throws before the rename, the live unit file is unchanged; the unit may be
    // listed as pending, which only costs one extra restart on the next run.
    async apply(change, ctx, state) {
      const unit = unitName(change.resource!.spec);
      const path = `${UNIT_DIR}/${unit}`;
      const dropIns = findOp(change, 'remove-drop-ins')?.dropIns ?? [];
      // Owed before its file or drop-ins change (a restart owed by an earlier run is listed already).
      const owed = hasOp(change, 'restart') && (hasOp(change, 'write') || dropIns.length > 0);
      const stops = hasOp(change, 'disable') || hasOp(change, 'stop');
      // The restart is noted while the live file is read (one round trip over SSH) unless the unit is stopped first.
      const [previous] = await Promise.all([ctx.host.readFile(path), owed && !stops ? markPending(ctx, state, unit) : undefined]);
      const undo: UnitUndo = { wrote: false, ...(previous ? { previous } : {}) };
      // One call stops and disables it (best effort: it may already be stopped).
      if (hasOp(change, 'disable')) await ctx.host.exec('systemctl', ['disable', ...(hasOp(change, 'stop') ? ['--now'] : []), unit]);
      else if (hasOp(change, 'stop')) await ctx.host.exec('systemctl', ['stop', unit]);
      if (hasOp(change, 'remove')) {
        await ctx.host.remove(path);
        undo.wrote = true;
        return undo;
      }
      const desired = change.desired!;
      if (owed && stops) await markPending(ctx, state, unit);
      if (hasOp(change, 'write')) {
        await checkUnitFile(ctx, state, unit, desired.content);
        await ctx.host.writeFile(path, desired.content, { uid: 0, gid: 0, mode: 0o644 });
        undo.wrote = true;
      }
      for (const name of dropIns) {
        const file = `${path}.d/${name}`;
        const [bytes, st] = await Promise.all([ctx.host.readFile(file), ctx.host.stat(file)]);
        if (!bytes || !st) continue;
        undo.removedDropIns = [...(undo.removedDropIns ?? []), { name, content: bytes, mode: st.mode, uid: st.uid, gid: st.gid }];
        await ctx.host.remove(file);
        undo.wrote = true;
      }
      return undo;
    },

    // One daemon-reload, one enable call and one restart call for the whole run.
    async settle(items, ctx, phase, state) {
      if (items.length === 0) return;
      const enable = phase === 'apply' ? items.filter((i) => hasOp(i.change, 'enable')).map((i) => i.change.desired!.unit) : [];
      const started = performance.now();
      // Links only (--no-reload): the one daemon-reload below loads them with the new files.
      if (enable.length > 0) await run(ctx.host, 'systemctl', ['enable', '--no-reload', '--', ...enable]);
      const enabled = performance.now();
      const reload = enable.length > 0 || items.some((i) => i.undo.wrote || hasOp(i.change, 'daemon-reload'));
      // The pending list is read meanwhile (over SSH, no round trip of its own).
      const [, pending] = await Promise.all([reload ? run(ctx.host, 'systemctl', ['daemon-reload']) : undefined, readPending(ctx.host, ctx.stateDirectory)]);
      const reloaded = performance.now();
      const restart = items.filter((i) => hasOp(i.change, 'restart')).map((i) => i.change.desired!.unit);
      if (restart.length > 0) {
        const result = await ctx.host.exec('systemctl', ['restart', '--', ...restart]);
        ctx.log.debug(
          {
            enable: enable.length,
            enableMs: Math.round(enabled - started),
            reloadMs: Math.round(reloaded - enabled),
            restart: restart.length,
            restartMs: Math.round(performance.now() - reloaded),
          },
          'systemd settle',
        );
        if (result.exitCode !== 0) {
          // Name the unit that failed, with its journal: that is what the operator needs.
          const states = await showUnits(ctx.host, restart);
          const failed = restart.find((u) => states.get(u)?.ActiveState !== 'active') ?? restart[0]!;
          throw new HostKitError(
            'UNIT_START_FAILED',
            `${failed} failed to start: ${describeExec('systemctl', ['restart', failed], result)}\n${await journalTail(ctx.host, failed, states.get(failed)?.InvocationID)}`,
            {
              data: { unit: failed, resourceId: items.find((i) => i.change.desired?.unit === failed)?.change.id },
            },
          );
        }
      }
      for (const u of restart) pending.delete(u);
      await writePending(ctx.host, ctx.stateDirectory, pending);
      const units = items.map((i) => unitName(i.change.resource!.spec));
      const fresh = (restart.length > 0 ? new Promise((resolve) => setTimeout(resolve, RESTART_GRACE_MS)) : Promise.resolve()).then(() =>
        showUnits(ctx.host, units),
      );
      // An earlier settle of this run (before an after-start command) keeps its units' states.
      const earlier = state.settled?.catch(() => new Map<string, UnitState>());
      const states = Promise.all([earlier ?? new Map<string, UnitState>(), fresh]).then(([a, b]) => new Map([...a, ...b]));
      states.catch(() => undefined); // a failure is verify's to report; a rollback may never ask
      state.settled = states;
      // An after-start command waits for them: it runs against services that started and stayed up.
      if (restart.length > 0) ctx.run.restarts.restarted(states);
    },

    async verify(change, ctx, run) {
      if (hasOp(change, 'remove')) return [];
      const unit = change.desired!.unit;
      const state = (await run.settled)?.get(unit) ?? (await showUnits(ctx.host, [unit])).get(unit);
      const problems: string[] = [];
      if (!state || state.LoadState !== 'loaded') problems.push(`${unit} is not loaded (LoadState=${state?.LoadState ?? 'unknown'})`);
      if (state?.NeedDaemonReload === 'yes') problems.push(`${unit} still needs a daemon-reload`);
      if (change.desired!.active && state?.ActiveState !== 'active')
        problems.push(`${unit} is ${state?.ActiveState ?? 'unknown'} (${state?.SubState ?? ''}), not active`);
      if (problems.length === 0) return [];
      const journal = await journalTail(ctx.host, unit, state?.InvocationID);
      return [error('unit not running', `${problems.join('; ')}${journal ? `\njournal:\n${journal}` : ''}`, change.origin)];
    },

    // Its file, drop-ins and the owed restarts come back from the run journal; the services and
    // timers of the run's units restart once, whichever driver's files they are (restore.ts).
    restore: unitRestore((change) => (change.resource ? unitName(change.resource.spec as Spec) : undefined), { after: kind === 'unit' }),
  };
  return driver;
}

// Many candidate unit files in one `systemd-analyze verify` (one process, not one
// per unit). Undefined when it rejects any of them: each is then checked alone, so
// the error names the unit at fault.
async function verifyUnitFiles(
  ctx: DriverContext,
  files: readonly { unit: string; content: string }[],
): Promise<Map<string, { content: string; messages: string[] }> | undefined> {
  if (files.length === 0) return new Map();
  const { ok, messages } = await analyzeUnits(ctx.host, files);
  return ok ? new Map(files.map((f) => [f.unit, { content: f.content, messages: messages.get(f.unit)! }])) : undefined;
}

// Every timer schedule checked by the host's own systemd in one call; only on a
// failure is each checked alone, to say which one is wrong.
async function checkCalendars(resources: readonly Resource<TimerSpec>[], ctx: DriverContext): Promise<Map<string, Diagnostic>> {
  const out = new Map<string, Diagnostic>();
  if (resources.length === 0) return out;
  const check = (exprs: string[]) => ctx.host.exec('systemd-analyze', ['calendar', '--', ...exprs]);
  let all;
  try {
    all = await check(resources.flatMap((r) => r.spec.onCalendar));
  } catch {
    for (const r of resources)
      out.set(
        r.id,
        warning(
          'schedule not checked',
          `systemd-analyze is not available on ${ctx.host.name}; ${r.spec.onCalendar.join(' and ')} is checked when applied`,
          r.origin,
        ),
      );
    return out;
  }
  if (all.exitCode === 0) return out;
  for (const r of resources) {
    const one = await check(r.spec.onCalendar);
    if (one.exitCode !== 0) {
      out.set(
        r.id,
        error(
          'invalid schedule',
          `systemd does not accept OnCalendar=${r.spec.onCalendar.join(' / ')} (from "${r.spec.schedule}"): ${one.stderr.trim()}`,
          r.origin,
        ),
      );
    }
  }
  return out;
}

export const unitDriver = makeDriver('unit');
export const timerDriver = makeDriver('timer');
