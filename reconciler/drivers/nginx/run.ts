// What one run has done to nginx, shared by the site and certificate drivers:
// config files written but not yet live, the sites to probe, whether nginx was
// reloaded (then rollback reloads it again). Keyed by the run's context.
import path from 'node:path';
import { HostKitError } from '../../core/errors.js';
import type { Host } from '../../hosts/types.js';
import type { DriverContext } from '../types.js';
import { awaitGenerations, blamedFile, errorLogSince, errorLogSize, reload, testConfig } from './nginx.js';
import { writeRootFile } from '../../hosts/root-files.js';

export interface NginxRun {
  /** The reload-owed marker is on disk for this run's writes. */
  marked: boolean;
  /** It was already there, left by an interrupted run: only a reload may clear it. */
  inherited: boolean;
  /** Files changed since nginx last loaded its config in this run. */
  dirty: boolean;
  /** This run reloaded nginx at least once. */
  reloaded: boolean;
  /** Domain -> generation the site must answer with once its config is live. */
  probes: Map<string, { generation: string; resourceId: string }>;
  /** Config file -> the resource that wrote it, to name the culprit of a failed test. */
  files: Map<string, string>;
  /** How many times nginx was reloaded by this run (for logs and tests). */
  reloads: number;
}

const runs = new WeakMap<DriverContext, NginxRun>();

export function nginxRun(ctx: DriverContext): NginxRun {
  let run = runs.get(ctx);
  if (!run) {
    run = { marked: false, inherited: false, dirty: false, reloaded: false, probes: new Map(), files: new Map(), reloads: 0 };
    runs.set(ctx, run);
  }
  return run;
}

// A reload is owed from before the first write of a run until nginx has taken
// the files: a run killed in between leaves this marker, and the next run
// reloads even though every file already has its desired bytes (the same idea
// as systemd's pending restarts; ansible/ansible#4766 is the bug it prevents).
export function reloadOwedPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'nginx-reload-owed');
}

export async function reloadOwed(host: Host, stateDirectory: string): Promise<boolean> {
  return (await host.stat(reloadOwedPath(stateDirectory))) !== undefined;
}

/** Call before writing anything nginx reads. */
export async function markReloadOwed(ctx: DriverContext): Promise<void> {
  const run = nginxRun(ctx);
  run.dirty = true;
  if (run.marked) return;
  run.inherited = await reloadOwed(ctx.host, ctx.stateDirectory);
  await writeRootFile(ctx.host, reloadOwedPath(ctx.stateDirectory), `${new Date().toISOString()}\n`);
  run.marked = true;
}

async function clearReloadOwed(ctx: DriverContext): Promise<void> {
  const run = nginxRun(ctx);
  if (!run.marked) return;
  await ctx.host.remove(reloadOwedPath(ctx.stateDirectory));
  run.marked = false;
}

/**
 * Make what this run wrote live: one `nginx -t` of the whole configuration,
 * one reload, then a probe of every changed site for its new generation.
 * No-op when nothing changed since the last call. If it throws, the new files
 * are still on disk (the run's rollback restores them); when the test failed,
 * nginx was not reloaded and still serves the previous configuration.
 */
export async function flushNginx(ctx: DriverContext, fallbackId: string): Promise<void> {
  const run = nginxRun(ctx);
  if (!run.dirty) return;
  const test = await testConfig(ctx.host);
  if (!test.ok) {
    const file = blamedFile(test.message);
    throw new HostKitError('NGINX_CONFIG_INVALID', `nginx -t rejected the configuration; nginx was not reloaded:\n${test.message}`, {
      data: { resourceId: (file && run.files.get(file)) ?? fallbackId, file },
    });
  }
  const offset = await errorLogSize(ctx.host);
  await reload(ctx.host);
  run.dirty = false;
  run.reloaded = true;
  run.reloads++;
  ctx.log.info({ sites: run.probes.size }, 'nginx reloaded');
  const missing = await awaitGenerations(
    ctx.host,
    [...run.probes].map(([domain, p]) => ({ domain, generation: p.generation })),
  );
  if (missing.length > 0) {
    const log = await errorLogSince(ctx.host, offset);
    const first = run.probes.get(missing[0]!.domain)!;
    throw new HostKitError(
      'NGINX_RELOAD_REJECTED',
      `nginx did not take the new configuration (${missing.map((m) => `${m.domain} answered: ${m.seen || 'nothing'}`).join('; ')})${log ? `; error.log:\n${log}` : ''}`,
      { data: { resourceId: first.resourceId }, retryable: true },
    );
  }
  run.probes.clear();
  await clearReloadOwed(ctx);
}

/** After a rollback restored the files: load them again if this run had reloaded nginx. */
export async function restoreNginx(ctx: DriverContext): Promise<void> {
  const run = nginxRun(ctx);
  if (!run.reloaded) {
    // The restored files are what nginx runs: no reload is owed for this run's writes.
    if (!run.inherited) await clearReloadOwed(ctx);
    return;
  }
  const test = await testConfig(ctx.host);
  if (!test.ok) throw new HostKitError('NGINX_CONFIG_INVALID', `after rollback nginx -t still fails; nginx was not reloaded:\n${test.message}`);
  await reload(ctx.host);
  run.reloaded = false;
  run.dirty = false;
  run.probes.clear();
  await clearReloadOwed(ctx);
}
