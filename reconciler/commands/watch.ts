// `hostkit reconcile --watch --dry-run` (and `hostkit plan --watch`): plan,
// then plan again each time a file in the config repository changes, for
// editing manifests locally. It only ever plans: applying on every save would
// put half-edited manifests on a host. Plans never overlap; changes that
// arrive during one are coalesced into the next.
import path from 'node:path';
import { HostKitError } from '../core/errors.js';
import { describeFailure } from './failure.js';
import { note } from './quiet.js';
import { reconcile, type ReconcileCommandOptions } from './reconcile.js';
import { assertRepository } from './validate.js';

export const WATCH_DEBOUNCE_MS = 200;

// Git's own files and editors' swap, backup and temporary files are not manifests.
export function ignoredPath(file: string): boolean {
  const parts = file.split(path.sep);
  if (parts.includes('.git') || parts.includes('node_modules')) return true;
  const base = parts.at(-1) ?? '';
  return base.startsWith('.#') || base.endsWith('~') || /\.(swp|swx|swo|tmp)$/.test(base) || /^\d+$/.test(base);
}

export async function watchPlans(opts: ReconcileCommandOptions, debounceMs = WATCH_DEBOUNCE_MS): Promise<number> {
  if (!opts.dryRun) {
    throw new HostKitError(
      'WATCH_NEEDS_DRY_RUN',
      '--watch only plans, it never applies: run `hostkit reconcile --watch --dry-run` (or `hostkit plan --watch`)',
    );
  }
  const dir = await assertRepository(opts.repo);
  const { watch } = await import('chokidar');

  const planOnce = async () => {
    try {
      await reconcile({ ...opts, exitCode: false });
    } catch (cause) {
      process.stderr.write(describeFailure(cause));
    }
  };

  let running: Promise<void> | undefined;
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const run = async () => {
    while (pending.size > 0 && !stopped) {
      const changed = [...pending].map((f) => path.relative(dir, f)).sort();
      pending = new Set();
      note(`${changed.join(', ')} changed; planning again`);
      await planOnce();
    }
    running = undefined;
  };
  const schedule = (file: string) => {
    if (ignoredPath(path.relative(dir, file))) return;
    pending.add(file);
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!running) running = run();
    }, debounceMs);
  };

  await planOnce();
  const watcher = watch(dir, { ignoreInitial: true, ignored: (file) => ignoredPath(path.relative(dir, file)) });
  for (const event of ['add', 'change', 'unlink'] as const) watcher.on(event, schedule);
  watcher.on('error', (error) => note(`watch error: ${error instanceof Error ? error.message : String(error)}`));
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  note(`watching ${opts.repo} for changes (Ctrl-C to stop)`);

  await new Promise<void>((resolve) => {
    const stop = () => {
      stopped = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  clearTimeout(timer);
  await watcher.close();
  await running;
  note('stopped watching');
  return 0;
}
