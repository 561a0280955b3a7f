// What one run has done to nginx, shared by the site and certificate drivers
// through ctx.run.nginx (drivers/run.ts NginxReload): config files written but not
// yet live, the sites to probe, whether nginx was reloaded (the reload-owed marker
// says so, and a restore of the run then reloads again: nginx/restore.ts).
import path from 'node:path';
import type { Logger } from 'pino';
import { HostKitError } from '../../core/errors.js';
import type { Host } from '../../hosts/types.js';
import type { NginxReload } from '../run.js';
import { awaitGenerations, blamedFile, errorLogSince, errorLogSize, nginxActive, reload, testConfig } from './nginx.js';
import { siteFile } from './paths.js';
import { writeRootFile } from '../../hosts/root-files.js';

// A reload is owed from before the first write of a run until nginx has taken
// the files: a run killed in between leaves this marker, and the next run
// reloads even though every file already has its desired bytes (the same idea
// as systemd's pending restarts; ansible/ansible#4766 is the bug it prevents).
export const RELOAD_OWED = 'nginx-reload-owed';
/** In the marker: the run that wrote it had reloaded nginx at least once. */
export const RELOADED = 'reloaded';

export function reloadOwedPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, RELOAD_OWED);
}

export async function reloadOwed(host: Host, stateDirectory: string): Promise<boolean> {
  return (await host.stat(reloadOwedPath(stateDirectory))) !== undefined;
}

export class NginxRun implements NginxReload {
  private readonly host: Host;
  private readonly stateDirectory: string;
  private readonly log: Logger;
  /** The reload-owed marker is on disk for this run's writes. */
  private marked = false;
  /** Files changed since nginx last loaded its config in this run. */
  private dirty = false;
  /** This run reloaded nginx at least once. */
  private reloaded = false;
  /** Domain -> generation the site must answer with once its config is live. */
  private readonly probes = new Map<string, { generation: string; resourceId: string }>();
  /** Config file -> the resource that wrote it, to name the culprit of a failed test. */
  private readonly files = new Map<string, string>();

  constructor(options: { host: Host; stateDirectory: string; log: Logger }) {
    this.host = options.host;
    this.stateDirectory = options.stateDirectory;
    this.log = options.log;
  }

  async changing(file?: { path: string; resourceId: string }): Promise<void> {
    if (file) this.files.set(file.path, file.resourceId);
    this.dirty = true;
    if (this.marked) return;
    await this.writeReloadOwed();
    this.marked = true;
  }

  expect(domain: string, generation: string, resourceId: string): void {
    this.probes.set(domain, { generation, resourceId });
  }

  restored(): void {
    this.dirty = true;
  }

  async flush(fallbackId: string): Promise<void> {
    if (!this.dirty) return;
    // The log's size is taken while nginx -t runs (one round trip less over SSH): what a passing test adds is
    // a warning at most, and errorLogSince keeps only errors.
    const [test, offset] = await Promise.all([testConfig(this.host), errorLogSize(this.host)]);
    if (!test.ok) {
      const file = blamedFile(test.message);
      throw new HostKitError('NGINX_CONFIG_INVALID', `nginx -t rejected the configuration; nginx was not reloaded:\n${test.message}`, {
        data: { resourceId: (file && this.files.get(file)) ?? fallbackId, file },
      });
    }
    // From now on a restore of this run must reload: nginx may serve what it wrote (nginx/restore.ts). Said
    // before the reload, not after: a restore that reloads when the reload never happened costs a reload, and
    // the marker goes out with the reload command (over SSH, no round trip of its own before the probes).
    this.reloaded = true;
    if (this.marked) await this.writeReloadOwed();
    await reload(this.host);
    this.dirty = false;
    this.log.info({ sites: this.probes.size }, 'nginx reloaded');
    const missing = await awaitGenerations(
      this.host,
      [...this.probes].map(([domain, p]) => ({ domain, generation: p.generation })),
    );
    if (missing.length > 0) {
      const log = await errorLogSince(this.host, offset);
      const first = this.probes.get(missing[0]!.domain)!;
      throw new HostKitError(
        'NGINX_RELOAD_REJECTED',
        `nginx did not take the new configuration (${missing.map((m) => `${m.domain} answered: ${m.seen || 'nothing'}`).join('; ')})${log ? `; error.log:\n${log}` : ''}`,
        { data: { resourceId: first.resourceId }, retryable: true },
      );
    }
    this.probes.clear();
    await this.clearReloadOwed();
  }

  async serves(site: string): Promise<boolean> {
    return (await nginxActive(this.host)) && (await this.host.stat(siteFile(site))) !== undefined;
  }

  // The marker says whether this run reloaded nginx already: a restore reloads unless it never did.
  private async writeReloadOwed(): Promise<void> {
    await writeRootFile(this.host, reloadOwedPath(this.stateDirectory), `${new Date().toISOString()}${this.reloaded ? ` ${RELOADED}` : ''}\n`);
  }

  private async clearReloadOwed(): Promise<void> {
    if (!this.marked) return;
    await this.host.remove(reloadOwedPath(this.stateDirectory));
    this.marked = false;
  }
}
