// The run: what one plan and apply of one host share, made by the engine once per
// run (diff/plan.ts, with the DriverContext) and dropped with it. A driver's own
// state comes from its createRun and is passed to each of its calls (DriverRuns);
// what several drivers share is a named service here, on ctx.run, so that no driver
// reaches into another's internals and nothing is keyed by the context.
import type { Logger } from 'pino';
import type { Host } from '../hosts/types.js';
import { NginxRun } from './nginx/run.js';
import { PostgresRun } from './postgresql/run.js';
import { RunUsers } from './shared/users.js';
import type { AnyDriver, DriverContext } from './types.js';

/**
 * nginx's configuration as this run changes it. Any driver that writes a file nginx
 * reads (a site, a certificate) says so first; settle makes everything live with one
 * `nginx -t` and one reload, however many drivers wrote.
 */
export interface NginxReload {
  /**
   * Call before writing a file nginx reads: a reload is owed from now on, recorded on
   * the host at the first call of the run (a run killed before the reload leaves it, and
   * the next run reloads). `file` names the resource that wrote it, should `nginx -t` blame it.
   */
  changing(file?: { path: string; resourceId: string }): Promise<void>;
  /** Once nginx reloaded, `domain` must answer with this generation (the site file's). */
  expect(domain: string, generation: string, resourceId: string): void;
  /** A rollback put files nginx reads back: they must be loaded again. */
  restored(): void;
  /**
   * Make what this run wrote live: one `nginx -t`, one reload, then a probe of every
   * changed site. No-op when nothing changed since the last call. If it throws, the new
   * files are still on disk (the run's rollback restores them); when the test failed,
   * nginx was not reloaded and still serves the previous configuration.
   */
  flush(fallbackId: string): Promise<void>;
  /** nginx is running and a HostKit site named `site` is on disk: a certificate of that name is served by it. */
  serves(site: string): Promise<boolean>;
}

/** The services this run restarted, and when they count as up (past systemd's restart grace). */
export class Restarts {
  private readonly pending: Promise<unknown>[] = [];

  /** A settle restarted services; `up` resolves once they are past their grace (its failure is the restarting driver's to report). */
  restarted(up: Promise<unknown>): void {
    up.catch(() => undefined);
    this.pending.push(up);
  }

  /** Resolves once every service restarted so far in this run is past its grace; at once when none was. */
  async allUp(): Promise<void> {
    await Promise.all(this.pending.map((p) => p.catch(() => undefined)));
  }
}

/**
 * The apt sources this run changed (drivers/aptsource writes them): the lists apt installs from
 * are out of date from then on, so the next install runs `apt-get update` first (drivers/package).
 */
export class AptSources {
  private readonly changed: string[] = [];

  /** An apt source or its key was written or removed by this resource. */
  changedBy(resourceId: string): void {
    if (!this.changed.includes(resourceId)) this.changed.push(resourceId);
  }

  /** The resources whose changes this run applied so far. */
  get changes(): readonly string[] {
    return this.changed;
  }
}

/**
 * Release switches held back until nginx switches (drivers/release defers the `current` link
 * of a blue-green project; drivers/systemd/deploy starts the new instance in that release and
 * makes the switch together with nginx's).
 */
/** A release switch held back: the release, its directory, and the link (`current`) that will name it. */
export interface DeferredSwitch {
  release: string;
  directory: string;
  link: string;
}

export class DeferredSwitches {
  private readonly pending = new Map<string, DeferredSwitch & { make: () => Promise<void> }>();

  /** `project`'s `current` (`link`) is to point to `release` (in `directory`) once nginx switches: `make` does it. */
  defer(project: string, target: DeferredSwitch, make: () => Promise<void>): void {
    this.pending.set(project, { ...target, make });
  }

  /** The release `project` switches to in this run, if deferred. */
  of(project: string): DeferredSwitch | undefined {
    return this.pending.get(project);
  }

  /** Makes `project`'s deferred switch, once. */
  async make(project: string): Promise<void> {
    const p = this.pending.get(project);
    this.pending.delete(project);
    await p?.make();
  }
}

export interface RunServices {
  /** The host's users and groups as this run last read them (shared/users.ts). */
  readonly users: RunUsers;
  /** The nginx configuration this run changes (nginx/run.ts): sites and certificates write, settle reloads once. */
  readonly nginx: NginxReload;
  /** Services restarted by this run: an after-start command waits until they are up. */
  readonly restarts: Restarts;
  /** The admin connection and catalog reads both PostgreSQL drivers share (postgresql/run.ts). */
  readonly postgresql: PostgresRun;
  /** The apt sources this run changed: an install after them updates the lists first. */
  readonly apt: AptSources;
  /** Release switches of blue-green projects, made when nginx switches. */
  readonly switches: DeferredSwitches;
  /** Ends what the run holds open (PostgreSQL's admin pool). The engine calls it when the run ends; calling it again is harmless. */
  close(): Promise<void>;
}

export function createRunServices(options: { host: Host; stateDirectory: string; log: Logger }): RunServices {
  const postgresql = new PostgresRun();
  return {
    users: new RunUsers(options.host),
    nginx: new NginxRun(options),
    restarts: new Restarts(),
    postgresql,
    apt: new AptSources(),
    switches: new DeferredSwitches(),
    close: () => postgresql.close(),
  };
}

/**
 * Each driver's own state for one run: made by its createRun at the first call, then
 * the same object for desire, observe, apply, settle, verify and rollback of that run.
 */
export class DriverRuns {
  private readonly states = new Map<AnyDriver, unknown>();
  private readonly ctx: DriverContext;

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
  }

  of(driver: AnyDriver): unknown {
    if (!this.states.has(driver)) this.states.set(driver, driver.createRun?.(this.ctx));
    return this.states.get(driver);
  }
}
