// One step of `bench:converge --target ssh` (converge.ts), as one process on
// this machine, the way `hostkit reconcile --target ssh://...` runs: open an
// SshHost to the booted test host (its ssh_config from sshInto), run the
// engine on it (reconcileHost, as the CLI does, the parse cache here), close.
// Prints one JSON line: the changes, the wall time of each part, and
// SshHost.stats() of each part (open, plan, the apply's changes, each
// driver's settle, the apply's bookkeeping, close). With --trace FILE, every
// Host call also goes to FILE as a JSON line (op, first argument, phase, ms).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ApplyEvent } from '../../reconciler/apply/progress.js';
import { createLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { pendingChanges } from '../../reconciler/diff/model.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { openSshHost, parseSshTarget, type SshHost } from '../../reconciler/hosts/ssh.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { headCommit } from '../../reconciler/sources/git.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    target: { type: 'string' },
    repo: { type: 'string' },
    host: { type: 'string' },
    cache: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    trace: { type: 'string' },
  },
});
for (const name of ['config', 'target', 'repo', 'host', 'cache'] as const)
  if (!values[name]) throw new Error(`Expected --${name}, got nothing (usage: ssh-step --config F --target T --repo R --host H --cache D [--dry-run])`);

type Stats = ReturnType<SshHost['stats']>;
export interface PhaseFigures extends Stats {
  ms: number;
}
export interface StepFigures {
  /** planned (a dry run), no-changes, applied or rolled-back (then `failed` says why). */
  status: string;
  failed?: string;
  changes: number;
  /** Wall ms and SshHost.stats() of each part, in order. */
  phases: Record<string, PhaseFigures>;
}

const started = performance.now();
const phases: Record<string, PhaseFigures> = {};
const trace: string[] = [];
let phase = 'open';
let mark = { at: started, stats: { requests: 0, roundTrips: 0, processes: 0 } };

// Adds what happened since the last mark to `name` (a phase may be entered more than once).
function account(ssh: SshHost | undefined, name: string): void {
  const now = performance.now();
  const stats = ssh?.stats() ?? { requests: 0, roundTrips: 0, processes: 0 };
  const into = (phases[name] ??= { ms: 0, requests: 0, roundTrips: 0, processes: 0 });
  into.ms += now - mark.at;
  into.requests += stats.requests - mark.stats.requests;
  into.roundTrips += stats.roundTrips - mark.stats.roundTrips;
  into.processes += stats.processes - mark.stats.processes;
  mark = { at: now, stats };
}

// The SshHost, every call recorded with the phase it fell in (only with --trace).
function traced(ssh: SshHost): Host {
  if (!values.trace) return ssh;
  return new Proxy(ssh, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'stats' || prop === 'close') return value;
      return async (...args: unknown[]) => {
        const at = performance.now();
        const p = phase;
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          trace.push(
            JSON.stringify({
              op: String(prop),
              arg: typeof args[0] === 'string' ? args[0] : args[0],
              phase: p,
              at: Math.round(at - started),
              ms: Math.round(performance.now() - at),
            }),
          );
        }
      };
    },
  });
}

// A settle is attributed to its driver, a change to the apply's changes, a health check to health; the rest is bookkeeping.
function stepPhase(event: ApplyEvent): string | undefined {
  if (event.type !== 'step-start' && event.type !== 'step-end') return undefined;
  return event.action === 'settle' ? `settle ${event.id}` : event.action === 'health' ? 'health' : 'apply changes';
}

const redactor = new Redactor();
const log = createLogger({ redactor, level: 'warn' });
const ssh = await openSshHost({ target: parseSshTarget(values.target!), configFile: values.config! });
account(ssh, 'open');
phase = 'plan';
const dryRun = values['dry-run'];
const commit = await headCommit(values.repo!);
let result: Omit<StepFigures, 'phases'>;
try {
  const outcome = await reconcileHost({
    repoDir: values.repo!,
    hostName: values.host!,
    host: traced(ssh),
    dryRun,
    log,
    redactor,
    cacheDir: values.cache!,
    ...(commit ? { commit } : {}),
    onPlanned: () => {
      account(ssh, 'plan');
      phase = 'apply bookkeeping';
    },
    progress: (event) => {
      const step = stepPhase(event);
      if (!step) return;
      account(ssh, phase);
      phase = event.type === 'step-start' ? step : 'apply bookkeeping';
    },
  });
  account(ssh, phase);
  if (outcome.stage === 'invalid') throw new Error(`the bench repository is invalid: ${JSON.stringify(outcome.repo.diagnostics).slice(0, 2000)}`);
  if (outcome.stage === 'planned')
    result = dryRun
      ? { status: 'planned', changes: pendingChanges(outcome.planned.plan).length }
      : { status: `plan has errors: ${JSON.stringify(outcome.planned.plan.diagnostics).slice(0, 2000)}`, changes: Number.NaN };
  else if (outcome.stage === 'held') result = { status: 'held', changes: Number.NaN };
  else if (outcome.result.status === 'rolled-back')
    result = { status: 'rolled-back', changes: outcome.result.steps.length, failed: `${outcome.result.failed.id}: ${outcome.result.failed.error}` };
  else result = { status: outcome.result.status, changes: outcome.result.steps.length };
} finally {
  phase = 'close';
  await ssh.close();
  account(ssh, 'close');
}
if (values.trace) await writeFile(values.trace, trace.join('\n') + '\n');
const figures: StepFigures = { ...result, phases };
process.stdout.write(JSON.stringify(figures) + '\n');
