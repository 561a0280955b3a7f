// The driver conformance kit, in the spirit of terraform-plugin-testing's
// empty-plan check after apply: one suite that every registered driver runs,
// on the fake host (test/conformance.spec.ts) and on a booted one
// (test/host/conformance.test.ts). Each driver folder's conformance.ts gives a
// small fixture; the kit drives it through the engine's own entry points
// (planHost, applyPlan, the restore `hostkit rollback` runs, crash recovery),
// never through driver methods, and checks:
//   1. apply, then a second plan is empty;
//   2. apply, then rollback, and the host is as before; the same for an update;
//   3. a kill between any two steps of an apply, then recovery and a new apply converge;
//   4. observe costs as many processes for 20 resources as for one;
//   5. a saved plan (hostkit plan --out) is current when nothing changed, and stale once an apply did.
// What a driver does not do by design is declared in its fixture with the
// reason, and the kit asserts that behaviour instead: nothing is skipped.
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { applyPlan, type ApplyResult } from '../../reconciler/apply/executor.js';
import { listRuns, RunJournal } from '../../reconciler/apply/journal.js';
import { recoverInterruptedRun } from '../../reconciler/apply/restore.js';
import { rollbackRun } from '../../reconciler/apply/rollback.js';
import { silentLogger } from '../../reconciler/core/log.js';
import type { ResourceKind } from '../../reconciler/core/resource.js';
import { planHost, type PlannedHost } from '../../reconciler/diff/plan.js';
import { describeStaleness, savePlan, staleness } from '../../reconciler/diff/saved-plan.js';
import { drivers as registered, type RegisteredKind } from '../../reconciler/drivers/registry.js';
import type { AnyDriver } from '../../reconciler/drivers/types.js';
import type { FakeHost } from '../../reconciler/hosts/fake.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { validateFiles } from '../../reconciler/manifests/index.js';
import { manifestYaml, type ManifestInput } from './manifests.js';

/** A manifest as a fixture writes it; the kit places it on the host under test. */
export interface ManifestDoc {
  kind: string;
  name: string;
  /** A primitive a project declares (metadata.project): written under projects/, it may not take over what is not its own. */
  project?: string;
  spec: Record<string, unknown>;
}

/** `count` documents, the first one `changed` (fixtures' declare). */
export function many(count: number, changed: boolean | undefined, doc: (i: number, changed: boolean) => ManifestDoc): ManifestDoc[] {
  return Array.from({ length: count }, (_, i) => doc(i + 1, changed === true && i === 0));
}

/** A directory (root, 0755) that exists before the resources put in it; check 2 walks it. */
export function directoryFor(set: string, label: string): { path: string; needs: () => ManifestDoc[] } {
  const name = `ck-${set}-${label}`;
  const p = `/srv/${name}`;
  return { path: p, needs: () => [{ kind: 'Directory', name, spec: { path: p, owner: 'root', group: 'root', mode: '0755' } }] };
}

/** `count` resource ids, "kind/name" from each index. */
export function idsOf(kind: string, count: number, name: (i: number) => string): string[] {
  return Array.from({ length: count }, (_, i) => `${kind}/${name(i + 1).replace(/^\//, '')}`);
}

/** What a run that may be killed tells before each thing it does outside itself. */
export interface Guard {
  /** A change: throws Killed at the step the run dies at, and at every later one. */
  step(what: string): void;
  /** A read: throws Killed once the run died. */
  alive(what: string): void;
  /** What the other side does when the run dies (a server aborts the transactions it had open). */
  onDeath(abort: () => void): void;
}

/** What a fixture's fake host needs besides the FakeHost itself (fake services, fake servers). */
export interface FakeWorld {
  /** Drivers to plan and apply with instead of the registered ones (e.g. PostgreSQL over a fake server); their side effects pass `guard`. */
  drivers?: (guard: Guard) => AnyDriver[];
  /** Costs of observing besides processes (e.g. database sessions), by name, counted since the world was made. */
  costs?: () => Record<string, number>;
  close?: () => Promise<void>;
}

/** Where a fixture's resources are: the names, the state directory and how many. */
export interface Sizes {
  set: string;
  count: number;
  stateDirectory: string;
}

/** Something a driver does not do, on purpose: why (the README's words), and where it holds. */
export interface Exception {
  reason: string;
  /** The host kinds it holds on (default both). */
  on?: readonly Where[];
}

/** What `hostkit rollback` (or crash recovery) does not put back, by design. */
export interface RollbackException extends Exception {
  /** Resource ids whose observed state is not put back. */
  resources(s: Sizes): string[];
  /** Managed paths that are not put back. */
  paths(s: Sizes): string[];
  /** They stay as the apply left them (kept); otherwise they are neither as before nor as applied (the reason says how). */
  asApplied: boolean;
  /** Resources the restore reports an error for. */
  errors?(s: Sizes): string[];
}

/** Observe costs that grow with the number of resources, by design: per resource, by cost name. */
export interface CostException extends Exception {
  perResource: Record<string, number>;
}

export type Where = 'fake' | 'real';

export interface ConformanceFixture {
  kind: RegisteredKind;
  /** What the resources need that is not theirs (an account, a role, a directory): applied before them. */
  needs?(set: string): ManifestDoc[];
  /** The manifests of `count` resources of the kind, `needs` included; `changed`: the first resource changed. A `Host` document adds its spec to the Host manifest's. */
  declare(set: string, count: number, changed?: boolean): ManifestDoc[];
  /** Puts the host where the checks start, beyond what a manifest may declare (e.g. HostKit's own TLS directory). */
  prepare?(host: Host, set: string): Promise<void>;
  /** The host paths those resources manage (directories are walked): compared byte for byte, with mode and owner. */
  paths(s: Sizes): string[];
  /** Added to the Host manifest's spec (a firewall, an ACME account); a function of the target's set where it names the resources (a grant). */
  host?: Record<string, unknown> | ((set: string) => Record<string, unknown>);
  /** Environment variables secret references read. */
  env?: Record<string, string>;
  /** Makes the fake services the driver talks to on a FakeHost. */
  fake(host: FakeHost): FakeWorld;
  /** Only one resource of the kind exists on a host (the firewall table): `count` sizes what it holds. */
  single?: Exception;
  rollback?: { create?: RollbackException; update?: RollbackException };
  observeCost?: CostException;
}

/** One place to run a fixture: a host, its state directory, and the names to use there. */
export interface Target {
  where: Where;
  host: Host;
  hostName: string;
  stateDirectory: string;
  /** Names this target's resources (distinct per target where targets share a host). */
  set: string;
  /** Drivers replacing registered ones for a run whose side effects pass `guard`. */
  drivers?: (guard: Guard) => AnyDriver[];
  /** Processes started on the host (`processes`), and the world's other costs, so far. */
  costs(): Record<string, number>;
  close?(): Promise<void>;
}

/** A fresh target each call: a new FakeHost, or a new state directory and names on the booted host. */
export type Targets = () => Promise<Target>;

/** How many resources checks 1 to 3 use (2-3: enough to see batching, few enough to kill at every step). */
export const COUNT = 3;
const KILL_COUNT = 2;
const OBSERVE_COUNTS = [1, 20] as const;
const REPOSITORY = 'conformance';

export class ConformanceError extends Error {}

function fail(fixture: ConformanceFixture, check: string, detail: string): never {
  throw new ConformanceError(`${fixture.kind}: ${check}: ${detail}`);
}

/** Every fixture under reconciler/drivers/NAME/conformance.ts, by kind (a folder may hold several drivers). */
export async function loadFixtures(): Promise<Map<string, ConformanceFixture>> {
  const root = fileURLToPath(new URL('../../reconciler/drivers/', import.meta.url));
  const out = new Map<string, ConformanceFixture>();
  for (const entry of (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const names = await readdir(path.join(root, entry.name));
    const file = names.find((n) => /^conformance\.(ts|js)$/.test(n));
    if (!file) continue;
    const module = (await import(pathToFileURL(path.join(root, entry.name, file)).href)) as { fixtures?: ConformanceFixture[] };
    for (const f of module.fixtures ?? []) {
      if (out.has(f.kind)) throw new ConformanceError(`two conformance fixtures for kind ${f.kind} (one in reconciler/drivers/${entry.name})`);
      out.set(f.kind, f);
    }
  }
  return out;
}

/** The registered kinds without a fixture, and fixtures of no registered kind. */
export function coverage(kinds: readonly string[], fixtures: ReadonlyMap<string, ConformanceFixture>): { missing: string[]; unknown: string[] } {
  return { missing: kinds.filter((k) => !fixtures.has(k)), unknown: [...fixtures.keys()].filter((k) => !kinds.includes(k)) };
}

// The Host manifest for a target (the fixture's secrets listed), then the fixture's documents: primitives in
// hosts/ (host-level), a Project and what a project declares in projects/ (it may not take over what is not its own).
async function manifests(fixture: ConformanceFixture, target: Target, all: readonly ManifestDoc[]) {
  // A document of kind Host is what the fixture's resources add to the Host manifest's spec (apt sources).
  const docs = all.filter((d) => d.kind !== 'Host');
  const host: ManifestInput = {
    kind: 'Host',
    name: target.hostName,
    spec: {
      stateDirectory: target.stateDirectory,
      ...(fixture.env ? { secrets: { env: Object.keys(fixture.env) } } : {}),
      // The packages a kind implies (nginx for sites) are the package fixture's to check, not every kind's.
      implicitPackages: false,
      ...(typeof fixture.host === 'function' ? fixture.host(target.set) : fixture.host),
      ...Object.assign({}, ...all.filter((d) => d.kind === 'Host').map((d) => d.spec)),
    },
  };
  const place = (d: ManifestDoc): ManifestInput => ({ ...d, on: [target.hostName] });
  const text = (values: ManifestInput[]) => new TextEncoder().encode(manifestYaml(...values));
  // What the resources need in a file of its own: the resources under test are the others.
  const needed = new Set((fixture.needs?.(target.set) ?? []).map((d) => JSON.stringify(d)));
  const needs = (d: ManifestDoc) => needed.has(JSON.stringify(d));
  const project = (d: ManifestDoc) => (d.kind === 'Project' ? d.name : d.project);
  const hostLevel = docs.filter((d) => project(d) === undefined);
  const files = [
    { file: 'hosts/host.yaml', values: [host] },
    { file: NEEDS_FILE, values: hostLevel.filter(needs).map(place) },
    { file: `hosts/${fixture.kind}.yaml`, values: hostLevel.filter((d) => !needs(d)).map(place) },
    ...[...new Set(docs.map(project).filter((p) => p !== undefined))].map((p) => ({
      file: `projects/${p}.yaml`,
      values: docs.filter((d) => project(d) === p).map(place),
    })),
  ];
  const repo = await validateFiles(files.filter((f) => f.values.length > 0).map((f) => ({ file: f.file, bytes: text(f.values) })));
  if (!repo.valid) {
    const errors = repo.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.summary}: ${d.detail}`);
    fail(fixture, 'fixture', `its manifests are not valid: ${errors.join('; ')}`);
  }
  return repo.manifests;
}

const NEEDS_FILE = 'hosts/needs.yaml';

function registry(target: Target, guard: Guard): ReadonlyMap<ResourceKind, AnyDriver> | undefined {
  const replaced = target.drivers?.(guard);
  if (!replaced) return undefined;
  return new Map(replaced.map((d) => [d.kind, d]));
}

// The drivers a restore asks: the registered ones, with the target's in their place (a fake server's PostgreSQL drivers).
function restoreDrivers(target: Target): ReadonlyMap<ResourceKind, AnyDriver> {
  return new Map([...registered, ...(registry(target, NO_KILL) ?? [])]);
}

async function plan(
  fixture: ConformanceFixture,
  target: Target,
  docs: readonly ManifestDoc[],
  mode: 'plan' | 'apply',
  run: { host: Host; guard: Guard } = { host: target.host, guard: NO_KILL },
): Promise<PlannedHost> {
  const drivers = registry(target, run.guard);
  return planHost({
    manifests: await manifests(fixture, target, docs),
    hostName: target.hostName,
    host: run.host,
    mode,
    log: silentLogger(),
    repository: REPOSITORY,
    stateDirectory: target.stateDirectory,
    env: fixture.env ?? {},
    ...(drivers ? { drivers } : {}),
  });
}

async function apply(fixture: ConformanceFixture, target: Target, docs: readonly ManifestDoc[], check: string): Promise<ApplyResult> {
  const planned = await plan(fixture, target, docs, 'apply');
  problems(fixture, check, planned);
  const result = await applyPlan(planned);
  if (result.status === 'rolled-back') fail(fixture, check, `the apply rolled back at ${result.failed.id}: ${result.failed.error}`);
  return result;
}

/**
 * Applies nothing in the target's state directory: what its drivers delete as orphans
 * (files, units, sites, the firewall table) goes, what they keep (accounts, roles) stays.
 */
export async function clear(fixture: ConformanceFixture, target: Target): Promise<void> {
  const { host: _host, ...plain } = fixture;
  await apply(plain, target, [], 'clean-up');
}

function problems(fixture: ConformanceFixture, check: string, planned: PlannedHost): void {
  const errors = planned.plan.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) fail(fixture, check, `the plan has errors: ${errors.map((d) => `${d.summary}: ${d.detail}`).join('; ')}`);
}

/** The changes a plan would make, one line each ("update file/x: /content"). */
function pending(planned: PlannedHost): string[] {
  return planned.plan.changes
    .filter((c) => c.action !== 'noop')
    .map((c) => `${c.action} ${c.id}: ${c.fields.map((f) => f.field).join(', ') || c.reason || 'no fields'}`);
}

async function expectEmptyPlan(fixture: ConformanceFixture, target: Target, docs: readonly ManifestDoc[], check: string): Promise<void> {
  const again = await plan(fixture, target, docs, 'plan');
  problems(fixture, check, again);
  const left = pending(again);
  if (left.length > 0) fail(fixture, check, `the plan after the apply is not empty:\n  ${left.join('\n  ')}`);
}

function sizes(target: Target, count: number): Sizes {
  return { set: target.set, count, stateDirectory: target.stateDirectory };
}

function holds(e: Exception | undefined, target: Target): boolean {
  return e !== undefined && (e.on ?? ['fake', 'real']).includes(target.where);
}

// The resources of the fixture's kind in a plan: 2-3 of them, or the one table a host has.
function expectSubjects(fixture: ConformanceFixture, target: Target, planned: PlannedHost, count: number, check: string): void {
  const single = holds(fixture.single, target);
  const ids = planned.plan.changes.filter((c) => c.kind === fixture.kind && (single || c.origin?.file !== NEEDS_FILE)).map((c) => c.id);
  const want = single ? 1 : count;
  if (ids.length !== want) fail(fixture, check, `expected ${want} ${fixture.kind} resource(s) from the fixture, got ${ids.length}: ${ids.join(', ')}`);
}

async function prepare(fixture: ConformanceFixture, target: Target, check: string): Promise<void> {
  await fixture.prepare?.(target.host, target.set);
  const needs = fixture.needs?.(target.set) ?? [];
  if (needs.length > 0) await apply(fixture, target, needs, check);
}

// Check 1: apply, then a second plan is empty.
export async function checkIdempotent(fixture: ConformanceFixture, targets: Targets): Promise<void> {
  const check = 'apply, then a second plan is empty';
  const target = await targets();
  try {
    await prepare(fixture, target, check);
    const docs = fixture.declare(target.set, COUNT);
    const first = await plan(fixture, target, docs, 'plan');
    expectSubjects(fixture, target, first, COUNT, check);
    if (pending(first).length === 0) fail(fixture, check, 'the fixture plans no change on a host without its resources');
    const result = await apply(fixture, target, docs, check);
    if (result.status !== 'applied') fail(fixture, check, `the first apply was ${result.status}`);
    await expectEmptyPlan(fixture, target, docs, check);
  } finally {
    await target.close?.();
  }
}

/** What a check compares: each managed path ("file 0640 0:0 <sha256>"), and each resource's plan (action, fields, observed). */
export type HostState = Record<string, string>;

async function walk(host: Host, p: string, out: HostState): Promise<void> {
  const st = await host.stat(p);
  if (!st) {
    out[p] = 'absent';
    return;
  }
  const who = `${st.mode.toString(8).padStart(4, '0')} ${st.uid}:${st.gid}`;
  if (st.type === 'file')
    out[p] = `file ${who} ${createHash('sha256')
      .update((await host.readFile(p)) ?? Buffer.alloc(0))
      .digest('hex')}`;
  else if (st.type === 'directory') {
    out[p] = `directory ${who}`;
    for (const name of ((await host.readdir(p)) ?? []).sort()) await walk(host, path.posix.join(p, name), out);
  } else out[p] = `${st.type} ${who}`;
}

async function state(fixture: ConformanceFixture, target: Target, docs: readonly ManifestDoc[], s: Sizes): Promise<HostState> {
  const out: HostState = {};
  for (const p of fixture.paths(s)) await walk(target.host, p, out);
  const planned = await plan(fixture, target, docs, 'plan');
  // What observe saw by its digest: it may hold secret values (an env file's bytes), which a failure must not print.
  const digest = (value: unknown) => (value === undefined ? undefined : createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16));
  for (const c of planned.plan.changes) out[c.id] = JSON.stringify({ action: c.action, fields: c.fields, observed: digest(c.observed) });
  return out;
}

// The managed paths without their bytes (two applies make different keys), named the same on every target.
async function layout(fixture: ConformanceFixture, target: Target, count: number): Promise<HostState> {
  const out: HostState = {};
  const s = sizes(target, count);
  for (const p of fixture.paths(s)) await walk(target.host, p, out);
  const named = (p: string) => p.split(`ck-${target.set}-`).join('ck-SET-').split(target.stateDirectory).join('STATE');
  return Object.fromEntries(Object.entries(out).map(([p, v]) => [named(p), v.replace(/ [0-9a-f]{64}$/, '')]));
}

function differing(a: HostState, b: HostState): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

async function rollbackOf(fixture: ConformanceFixture, target: Target, run: string | undefined, check: string) {
  if (!run) fail(fixture, check, 'the apply left no run journal to roll back');
  const journal = await RunJournal.load(target.host, target.stateDirectory, run);
  if (!journal) fail(fixture, check, `run ${run} is not in ${target.stateDirectory}/runs`);
  const done = await rollbackRun(journal, { dryRun: false, log: silentLogger(), drivers: restoreDrivers(target) });
  return done.result!;
}

// Rolls back the run that went from `before` to `docs`, and compares the host with how it was.
async function expectRolledBack(
  fixture: ConformanceFixture,
  target: Target,
  docs: { after: readonly ManifestDoc[] },
  exception: RollbackException | undefined,
  check: string,
): Promise<void> {
  const s = sizes(target, COUNT);
  // Observed through the plan of what the run applied: its changes' actions, fields and observed states.
  const before = await state(fixture, target, docs.after, s);
  const result = await apply(fixture, target, docs.after, check);
  if (result.status !== 'applied') fail(fixture, check, `the apply was ${result.status}`);
  const applied = await state(fixture, target, docs.after, s);
  if (differing(before, applied).length === 0) fail(fixture, check, 'the apply changed nothing the fixture compares (paths and observed state)');
  const restored = await rollbackOf(fixture, target, result.run, check);
  const after = await state(fixture, target, docs.after, s);
  const kept = holds(exception, target) ? exception! : undefined;
  const errors = restored.errors.map((e) => e.resource).sort();
  const allowed = (kept?.errors?.(s) ?? []).sort();
  if (JSON.stringify(errors) !== JSON.stringify(allowed)) {
    fail(fixture, check, `the restore reported errors for [${errors.join(', ')}], expected [${allowed.join(', ')}]: ${JSON.stringify(restored.errors)}`);
  }
  const changed = differing(before, after);
  const declared = kept ? [...kept.resources(s), ...kept.paths(s)].sort() : [];
  if (JSON.stringify(changed) !== JSON.stringify(declared)) {
    const detail = (k: string) => `  ${k}\n    before:   ${before[k] ?? '(none)'}\n    restored: ${after[k] ?? '(none)'}`;
    fail(
      fixture,
      check,
      `not as before: [${changed.join(', ')}]${kept ? `; the fixture declares [${declared.join(', ')}] (${kept.reason})` : ''}\n${changed.map(detail).join('\n')}`,
    );
  }
  if (kept?.asApplied) {
    // Kept as applied: its paths, its plan and what observe sees of it (whether HostKit created it, too).
    const moved = declared.filter((k) => after[k] !== applied[k]);
    if (moved.length > 0) fail(fixture, check, `declared kept (${kept.reason}), but not as applied: ${moved.join(', ')}`);
  }
}

// Check 2: apply, then `hostkit rollback` of that run, and the host is as before; then an update, rolled back the same way.
export async function checkRollback(fixture: ConformanceFixture, targets: Targets): Promise<void> {
  const target = await targets();
  try {
    await prepare(fixture, target, 'rollback');
    const docs = fixture.declare(target.set, COUNT);
    await expectRolledBack(fixture, target, { after: docs }, fixture.rollback?.create, 'apply, then rollback');
    await apply(fixture, target, docs, 'update, then rollback');
    await expectRolledBack(fixture, target, { after: fixture.declare(target.set, COUNT, true) }, fixture.rollback?.update, 'update, then rollback');
  } finally {
    await target.close?.();
  }
}

/** What a killed process throws at every step from its death on. */
export class Killed extends Error {
  constructor(step: string) {
    super(`killed at ${step}`);
  }
}

/** Counts steps; with `at`, the run dies at that step (SIGKILL: nothing after it reaches the host). */
export class KillSwitch implements Guard {
  count = 0;
  dead = false;
  /** The steps so far, by what they did. */
  readonly steps: string[] = [];
  readonly at: number | undefined;
  private readonly aborts: (() => void)[] = [];
  constructor(at?: number) {
    this.at = at;
  }
  step(what: string): void {
    this.alive(what);
    this.count++;
    this.steps.push(what);
    if (this.count === this.at) {
      this.dead = true;
      for (const abort of this.aborts.splice(0)) abort();
      throw new Killed(what);
    }
  }
  alive(what: string): void {
    if (this.dead) throw new Killed(what);
  }
  onDeath(abort: () => void): void {
    this.aborts.push(abort);
  }
}

const NO_KILL: Guard = { step: () => undefined, alive: () => undefined, onDeath: () => undefined };

// Commands that only read: not a step a kill is tried before.
const READ_ONLY: Record<string, RegExp> = {
  systemctl: /^(show|list-units|is-active|is-enabled|status|cat) /,
  'systemd-analyze': /^/,
  journalctl: /^/,
  nginx: /^-t/,
  nft: /^(-c |-j list |list )/,
  uname: /^/,
  'dpkg-query': /^/,
  'apt-cache': /^/,
};
const MUTATING = new Set(['writeFile', 'appendFile', 'mkdir', 'setOwnership', 'remove']);

/** The host as a process that can be killed sees it: each change (file operation or command that is not a read) is a step of `guard`. */
export function killable(host: Host, guard: KillSwitch): Host {
  return new Proxy(host, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const name = String(prop);
      return (...args: unknown[]) => {
        if (name === 'exec') {
          const [file, argv] = args as [string, string[]];
          const what = [file, ...argv].join(' ');
          if (READ_ONLY[file]?.test(`${argv.join(' ')} `)) guard.alive(what);
          else guard.step(what);
        } else if (MUTATING.has(name)) guard.step(`${name} ${String(args[0])}`);
        else guard.alive(`${name} ${String(args[0])}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Counts the processes started on `host`. */
export function counted(host: Host): { host: Host; processes: () => number } {
  let processes = 0;
  const wrapped = new Proxy(host, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'exec') return (...args: unknown[]) => (processes++, (value as (...a: unknown[]) => unknown).apply(target, args));
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { host: wrapped, processes: () => processes };
}

// An apply that may be killed: planned and applied as one process would, every host call and side effect through `guard`.
async function killableApply(fixture: ConformanceFixture, target: Target, docs: readonly ManifestDoc[], guard: KillSwitch): Promise<void> {
  const host = killable(target.host, guard);
  try {
    const planned = await plan(fixture, target, docs, 'apply', { host, guard });
    await applyPlan(planned);
  } catch (cause) {
    if (!(cause instanceof Killed) && !guard.dead) throw cause;
  }
}

/**
 * Check 3: for each step N of an apply (of the resources, and of an update to
 * them), a run killed at N, abandoned without its rollback, then crash recovery
 * and a new apply; the plan after it is empty and no run is left open.
 * `every` tries every Nth step only (a real host is slower).
 */
export async function checkKill(
  fixture: ConformanceFixture,
  targets: Targets,
  options: { every?: number } = {},
): Promise<{ steps: number; kills: number; trail: string[] }> {
  let steps = 0;
  let kills = 0;
  const trail: string[] = [];
  for (const stage of ['create', 'update'] as const) {
    const check = `a kill during the ${stage === 'create' ? 'apply' : 'update'}, then recovery`;
    const docs = (t: Target) => fixture.declare(t.set, KILL_COUNT, stage === 'update');
    const ready = async (t: Target) => {
      await prepare(fixture, t, check);
      if (stage === 'update') await apply(fixture, t, fixture.declare(t.set, KILL_COUNT), check);
    };
    const probe = await targets();
    let total: number;
    let clean: HostState;
    try {
      await ready(probe);
      const counter = new KillSwitch();
      await killableApply(fixture, probe, docs(probe), counter);
      total = counter.count;
      trail.push(...counter.steps.map((step) => `${stage}: ${step}`));
      await expectEmptyPlan(fixture, probe, docs(probe), check);
      clean = await layout(fixture, probe, KILL_COUNT);
    } finally {
      await probe.close?.();
    }
    steps += total;
    for (let at = 1; at <= total; at += options.every ?? 1) {
      const target = await targets();
      try {
        await ready(target);
        const killer = new KillSwitch(at);
        await killableApply(fixture, target, docs(target), killer);
        if (!killer.dead) fail(fixture, check, `the apply took fewer than ${at} steps this time (${killer.count} of ${total})`);
        kills++;
        const where = `${check} at step ${at} of ${total} (${killer.steps.at(-1)})`;
        const recovered = await recoverInterruptedRun(target.host, target.stateDirectory, silentLogger(), restoreDrivers(target));
        const s = sizes(target, KILL_COUNT);
        const allowed = holds(fixture.rollback?.[stage], target) ? (fixture.rollback![stage]!.errors?.(s) ?? []) : [];
        const errors = (recovered?.result.errors ?? []).filter((e) => !allowed.includes(e.resource));
        if (errors.length > 0) fail(fixture, where, `the recovery failed: ${JSON.stringify(errors)}`);
        await apply(fixture, target, docs(target), where);
        await expectEmptyPlan(fixture, target, docs(target), where);
        const open = (await listRuns(target.host, target.stateDirectory)).filter((r) => r.status === 'open');
        if (open.length > 0) fail(fixture, where, `run ${open.map((r) => r.record.id).join(', ')} is still open`);
        // Nothing left over or missing where the resources live (their bytes the empty plan vouches for).
        const now = await layout(fixture, target, KILL_COUNT);
        const odd = differing(clean, now);
        if (odd.length > 0)
          fail(
            fixture,
            where,
            `the managed paths differ from an apply that was not killed:\n${odd.map((k) => `  ${k}: ${now[k] ?? '(none)'}, not ${clean[k] ?? '(none)'}`).join('\n')}`,
          );
      } finally {
        await target.close?.();
      }
    }
  }
  return { steps, kills, trail };
}

/** Check 4: observing 20 resources costs as many processes (and other counted costs) as observing one. */
export async function checkObserveCost(fixture: ConformanceFixture, targets: Targets): Promise<Record<number, Record<string, number>>> {
  const check = 'observe costs the same for 1 and for 20 resources';
  const seen: Record<number, Record<string, number>> = {};
  let exception: CostException | undefined;
  for (const count of OBSERVE_COUNTS) {
    const target = await targets();
    try {
      if (holds(fixture.observeCost, target)) exception = fixture.observeCost;
      await prepare(fixture, target, check);
      const docs = fixture.declare(target.set, count);
      await apply(fixture, target, docs, check);
      const before = target.costs();
      const planned = await plan(fixture, target, docs, 'plan');
      const after = target.costs();
      expectSubjects(fixture, target, planned, count, check);
      seen[count] = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
    } finally {
      await target.close?.();
    }
  }
  const [one, many] = OBSERVE_COUNTS;
  for (const name of Object.keys(seen[one]!)) {
    const per = exception?.perResource[name] ?? 0;
    const want = seen[one]![name]! + per * (many - one);
    if (seen[many]![name] !== want) {
      fail(
        fixture,
        check,
        `${name}: ${seen[one]![name]} for ${one}, ${seen[many]![name]} for ${many}${per ? ` (the fixture declares ${per} per resource: ${exception!.reason})` : ''}`,
      );
    }
  }
  return seen;
}

/**
 * Check 5: a plan saved as `hostkit plan --out` saves it (apply mode), planned again on the unchanged
 * host, is current (every fingerprint and change reads the same: nothing in them depends on when or
 * how often the host is read); once an apply changed the host it is stale, naming what it observed
 * changed; saved again, the empty plan is current.
 */
export async function checkSavedPlan(fixture: ConformanceFixture, targets: Targets): Promise<void> {
  const check = 'a saved plan is current until the host changes';
  const target = await targets();
  try {
    await prepare(fixture, target, check);
    const docs = fixture.declare(target.set, COUNT);
    const repo = await manifests(fixture, target, docs);
    const planned = async () => {
      const p = await plan(fixture, target, docs, 'apply');
      problems(fixture, check, p);
      p.plan.commit = 'c'.repeat(40);
      return p;
    };
    const save = async () => savePlan(await planned(), repo, { hostkitVersion: 'test', createdAt: new Date() });
    const expectCurrent = async (saved: Awaited<ReturnType<typeof save>>, when: string) => {
      const stale = staleness(saved, await planned(), repo);
      if (stale) fail(fixture, check, `${when}: planned again on the unchanged host, the saved plan is stale: ${describeStaleness(stale, REPOSITORY)}`);
    };
    const before = await save();
    await expectCurrent(before, 'before the apply');
    await apply(fixture, target, docs, check);
    // A kind that observes nothing (a checkpoint) is stale through what it guards.
    const stale = staleness(before, await planned(), repo);
    if (!stale?.resources.some((r) => r.why.includes('observed state')))
      fail(fixture, check, 'after the apply, the saved plan names no observed state as changed');
    await expectCurrent(await save(), 'after the apply');
  } finally {
    await target.close?.();
  }
}
