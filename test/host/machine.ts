// Boots a throwaway Debian host with systemd-nspawn for one test file: a fresh
// overlay on the cached pristine root file system (rootfs.ts), its own systemd
// as PID 1, and a private network that holds only loopback. See
// test/host/HARNESS.md for the recipe this follows.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, promises as fs, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { HostKitError } from '../../reconciler/core/errors.js';
import { NspawnHost } from '../../reconciler/hosts/nspawn.js';
import { describeExec, type ExecOptions, type ExecResult } from '../../reconciler/hosts/types.js';
import { aptRepoMount, ensureAptRepo } from './apt-repo.js';
import { ensureRootfs, type RootfsVariant } from './rootfs.js';

export interface BindMount {
  /** Path on this machine. */
  hostPath: string;
  /** Path inside the test host; defaults to hostPath. */
  containerPath?: string;
}

export interface BootOptions {
  /**
   * Machine name given to systemd-nspawn, unique among running hosts;
   * defaults to "hk-" and random hex.
   */
  name?: string;
  /**
   * The hostname inside (kernel and /etc/hostname): what an apply checks
   * against the Host manifest, so a test host is named after its Host.
   * Defaults to "test-host", the Host of test/host/reconcile.ts.
   */
  hostname?: string;
  /** Pristine root file system; defaults to ensureRootfs({ variant }). */
  rootfs?: string;
  /**
   * Which image to boot when `rootfs` is not given: `standard` (default; nginx,
   * PostgreSQL, nftables, pebble) or `bare` (a fresh Debian 12 VPS without them).
   */
  variant?: RootfsVariant;
  /**
   * Bind the local signed apt repository (apt-repo.ts, built first if needed)
   * read-only at APT_REPO_MOUNT; serveAptRepo() then serves it inside.
   */
  aptRepo?: boolean;
  /** Give up when `systemctl is-system-running` is not `running` by then. Default 60 s. */
  bootTimeoutMs?: number;
  /** Units allowed to have failed at boot (the host is then `degraded`, not broken). */
  allowFailedUnits?: readonly string[];
  /** Shared read-only into the host (e.g. this repository, to run the agent inside). */
  bindReadOnly?: readonly BindMount[];
  /** Shared read-write into the host. */
  bind?: readonly BindMount[];
  /** Appended to the systemd-nspawn command line. */
  nspawnArgs?: readonly string[];
  /**
   * Seeds the host before it boots: called with the mounted overlay (the
   * host's "/" on this machine) once the hostname is written.
   */
  prepare?: (rootDir: string) => Promise<void>;
  /**
   * Stop with an orderly shutdown (every unit stopped, ~2.5 s) instead of
   * systemd's immediate poweroff (processes killed, ~0.2 s). Nothing of the
   * host survives either way; only a test about shutdown itself needs this.
   */
  gracefulStop?: boolean;
}

/** A booted test host. Call stop() when done (afterAll); stop() is idempotent. */
export interface TestHost {
  /** The machine name passed to systemd-nspawn -M. */
  readonly machine: string;
  /** The hostname inside: the name of the Host manifest it stands for. */
  readonly hostname: string;
  /** The Host drivers use: nsenter for commands, /proc/LEADER/root for files. */
  readonly host: NspawnHost;
  /** PID of systemd-nspawn on this machine. */
  readonly nspawnPid: number;
  /** PID on this machine of the host's PID 1 (systemd). */
  readonly leaderPid: number;
  /** The merged overlay mounted on this machine: the host's "/" before its own mounts. */
  readonly rootDir: string;
  /** The overlay's upper directory: exactly what changed since the pristine image. */
  readonly upperDir: string;
  /** Milliseconds from starting systemd-nspawn to `running`. */
  readonly bootMs: number;
  /** Runs a command inside; rejects (with its output) unless it exits 0. */
  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * What systemd-nspawn printed (last 256 KiB). The host's console (its boot
   * log) arrives only when systemd-nspawn exits, so read this after stop().
   */
  output(): string;
  /** Powers the host off, unmounts the overlay and deletes its files. */
  stop(): Promise<void>;
  /**
   * Powers the host off and boots the same overlay again: every file written
   * since the first boot is kept, while its kernel state (network namespace,
   * nftables, processes) and its /run start afresh. Resolves once the host is
   * `running` again; `host`, `leaderPid` and `nspawnPid` then name the new boot.
   */
  reboot(options?: RebootOptions): Promise<void>;
}

export interface RebootOptions {
  /**
   * "orderly" (default): `systemctl poweroff` inside, every unit stopped.
   * "immediate": systemd-nspawn is stopped and the host powers off at once.
   */
  poweroff?: 'orderly' | 'immediate';
}

/**
 * Units that may fail at boot in this container without meaning anything for
 * the tests. Empty on purpose: the root file system masks what does not work in
 * a container (build-rootfs.sh), so any failure is news. Add a unit here only
 * with a line saying why it is harmless.
 */
export const HARMLESS_FAILED_UNITS: readonly string[] = [];

const DEFAULT_BOOT_TIMEOUT_MS = 60_000;
// How long systemd-nspawn gets to take the host down before SIGKILL.
const STOP_GRACE_MS = { immediate: 3_000, graceful: 15_000 };
const OUTPUT_LIMIT = 256 * 1024;
const MACHINE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The hostname of a test host unless told otherwise: the Host manifest test/host/reconcile.ts declares. */
export const DEFAULT_HOSTNAME = 'test-host';
const STATE_PREFIX = 'hostkit-nspawn-';
const NSPAWN_EXEC = fileURLToPath(new URL('./nspawn-exec.sh', import.meta.url));

function stateParent(): string {
  return process.env.HOSTKIT_TEST_STATE_DIR ?? '/var/tmp';
}

// What a state directory records so a later run can clean up after a crash.
interface OwnerRecord {
  ownerPid: number;
  machine: string;
  nspawnPid?: number;
  leaderPid?: number;
  cgroups?: string[];
}

/** Boots a fresh host and waits until its systemd reports `running`. */
export async function bootHost(options: BootOptions = {}): Promise<TestHost> {
  const machine = options.name ?? `hk-${randomBytes(4).toString('hex')}`;
  if (!MACHINE_NAME.test(machine)) {
    throw new HostKitError('TEST_HOST_INVALID_OPTIONS', `Expected a machine name like "hk-web-1", got "${machine}"`);
  }
  await sweepStaleMachines();
  const rootfs = options.rootfs ?? (await ensureRootfs({ variant: options.variant ?? 'standard' }));
  const repoMounts = options.aptRepo ? [aptRepoMount(await ensureAptRepo())] : [];
  const stateDir = await fs.mkdtemp(path.join(stateParent(), `${STATE_PREFIX}${machine}-`));
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  if (!MACHINE_NAME.test(hostname)) {
    throw new HostKitError('TEST_HOST_INVALID_OPTIONS', `Expected a hostname like "test-host", got "${hostname}"`);
  }
  const running = new RunningHost(machine, hostname, stateDir);
  try {
    await running.boot(rootfs, { ...options, bindReadOnly: [...(options.bindReadOnly ?? []), ...repoMounts] });
  } catch (error) {
    // Stopped first: systemd-nspawn hands over the console output only as it exits.
    await running.stop().catch(() => undefined);
    throw running.bootFailure(error);
  }
  return running;
}

// Why a boot failed, before the console output is attached (see bootFailure).
class BootFailure extends Error {
  readonly details: string;
  constructor(summary: string, details = '') {
    super(summary);
    this.details = details;
  }
}

class RunningHost implements TestHost {
  readonly machine: string;
  readonly hostname: string;
  readonly rootDir: string;
  readonly upperDir: string;
  private readonly stateDir: string;
  private readonly workDir: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitStatus: string | undefined;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private mounted = false;
  private cgroups: string[] = [];
  private startedAt = Date.now();
  private leader: number | undefined;
  private stopGraceMs = STOP_GRACE_MS.immediate;
  private stopping: Promise<void> | undefined;
  private booted: { host: NspawnHost; leaderPid: number; bootMs: number } | undefined;
  private bootOptions: BootOptions = {};

  constructor(machine: string, hostname: string, stateDir: string) {
    this.machine = machine;
    this.hostname = hostname;
    this.stateDir = stateDir;
    this.rootDir = path.join(stateDir, 'root');
    this.upperDir = path.join(stateDir, 'upper');
    this.workDir = path.join(stateDir, 'work');
  }

  get host(): NspawnHost {
    return this.bootedState().host;
  }
  get leaderPid(): number {
    return this.bootedState().leaderPid;
  }
  get bootMs(): number {
    return this.bootedState().bootMs;
  }
  get nspawnPid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error(`test host ${this.machine} has no systemd-nspawn process`);
    return pid;
  }

  async exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    const result = await this.host.exec(file, args, options);
    if (result.exitCode !== 0) {
      throw new HostKitError('TEST_HOST_EXEC_FAILED', `on ${this.machine}: ${describeExec(file, args, result)}`, {
        data: { ...result },
      });
    }
    return result;
  }

  output(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  async boot(rootfs: string, options: BootOptions): Promise<void> {
    this.startedAt = Date.now();
    if (options.gracefulStop) this.stopGraceMs = STOP_GRACE_MS.graceful;
    const deadline = this.startedAt + (options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS);
    this.record({});
    live.add(this);
    installExitHooks();

    await Promise.all([this.upperDir, this.workDir, this.rootDir].map((dir) => fs.mkdir(dir)));
    await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${this.upperDir},workdir=${this.workDir}`, this.rootDir]);
    this.mounted = true;
    await this.nameHost();
    await options.prepare?.(this.rootDir);
    this.bootOptions = options;
    await this.start(deadline);
  }

  // systemd-nspawn on the mounted overlay, until the host's systemd says `running`.
  private async start(deadline: number): Promise<void> {
    const options = this.bootOptions;
    this.spawnNspawn(options);
    const leaderPid = await this.findLeader(deadline);
    this.leader = leaderPid;
    this.record({ leaderPid });
    const host = new NspawnHost({ leaderPid, machine: this.machine });
    await this.waitRunning(host, deadline, options.allowFailedUnits ?? []);
    this.booted = { host, leaderPid, bootMs: Date.now() - this.startedAt };
  }

  async reboot(options: RebootOptions = {}): Promise<void> {
    const { host } = this.bootedState();
    if (this.stopping) throw new Error(`test host ${this.machine} is stopping; it cannot reboot`);
    const grace = options.poweroff === 'immediate' ? STOP_GRACE_MS.immediate : STOP_GRACE_MS.graceful;
    this.booted = undefined;
    if (options.poweroff === 'immediate') killPid(this.nspawnPid, 'SIGTERM');
    // --no-block: the manager goes down while answering, so waiting on it would only see the connection drop.
    else await host.exec('systemctl', ['poweroff', '--no-block'], { timeoutMs: 10_000 });
    if (!(await settlesWithin(this.exited, grace))) {
      throw this.bootFailure(new BootFailure(`did not power off within ${grace / 1000} s to reboot`));
    }
    if (this.leader !== undefined) await waitForExit(this.leader, 5_000);
    this.leader = undefined;
    // The cgroups are made afresh for the next systemd-nspawn (it needs them empty and ours).
    for (let attempt = 0; attempt < 50 && this.cgroups.some(existsSync); attempt++) {
      if (attempt > 0) await sleep(20);
      this.cgroups.forEach(removeCgroupTree);
    }
    removeNspawnLeftovers(this.machine);
    this.exitStatus = undefined;
    this.startedAt = Date.now();
    try {
      await this.start(this.startedAt + (this.bootOptions.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS));
    } catch (error) {
      throw this.bootFailure(error);
    }
  }

  // The Host's name becomes the hostname, in the files as well as the kernel (--hostname).
  private async nameHost(): Promise<void> {
    const hosts = await fs.readFile(path.join(this.rootDir, 'etc/hosts'), 'utf8');
    await fs.writeFile(path.join(this.rootDir, 'etc/hostname'), `${this.hostname}\n`);
    await fs.writeFile(path.join(this.rootDir, 'etc/hosts'), hosts.replace(/^127\.0\.1\.1\s.*$/m, `127.0.1.1 ${this.hostname}`));
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  // Synchronous last resort for process exit and signals: no waiting, no grace.
  killNow(): void {
    // The host's init first: systemd-nspawn killed alone would leave it running.
    if (this.leader !== undefined && isContainerInit(this.leader)) killPid(this.leader, 'SIGKILL');
    if (this.child?.pid !== undefined && this.exitStatus === undefined) killPid(this.child.pid, 'SIGKILL');
    if (this.mounted) {
      spawnSync('umount', ['-l', this.rootDir], { stdio: 'ignore' });
      this.mounted = isMountPoint(this.rootDir);
    }
    if (!this.mounted) rmSync(this.stateDir, { recursive: true, force: true });
    this.cgroups.forEach(removeCgroupTree);
    removeNspawnLeftovers(this.machine);
    live.delete(this);
  }

  cgroupDirs(): readonly string[] {
    return this.cgroups;
  }

  private bootedState(): {
    host: NspawnHost;
    leaderPid: number;
    bootMs: number;
  } {
    if (!this.booted) throw new Error(`test host ${this.machine} is not booted`);
    return this.booted;
  }

  private record(extra: Partial<OwnerRecord>): void {
    const current = readOwner(this.stateDir) ?? {
      ownerPid: process.pid,
      machine: this.machine,
    };
    writeFileSync(path.join(this.stateDir, 'owner.json'), JSON.stringify({ ...current, ...extra }));
  }

  private spawnNspawn(options: BootOptions): void {
    const binds = [
      ...(options.bindReadOnly ?? []).map((b) => `--bind-ro=${b.hostPath}:${b.containerPath ?? b.hostPath}`),
      ...(options.bind ?? []).map((b) => `--bind=${b.hostPath}:${b.containerPath ?? b.hostPath}`),
    ];
    this.cgroups = createCgroups(path.basename(this.stateDir));
    this.record({ cgroups: this.cgroups });
    const args = [
      ...this.cgroups,
      '--',
      '-D',
      this.rootDir,
      '--boot',
      '--register=no',
      '--keep-unit',
      '--private-network',
      `--machine=${this.machine}`,
      `--hostname=${this.hostname}`,
      '--console=passive',
      '--link-journal=no',
      '--resolv-conf=off',
      '--timezone=off',
      '--setenv=TERM=dumb',
      // What SIGTERM to systemd-nspawn (from stop(), or the kernel when this
      // process dies) asks of the host's systemd: RTMIN+14 is an immediate poweroff.
      ...(options.gracefulStop ? [] : ['--kill-signal=SIGRTMIN+14']),
      ...binds,
      ...(options.nspawnArgs ?? []),
      // For the host's systemd: its boot log on the console we keep, no colours.
      'systemd.show_status=1',
    ];
    const child = spawn(NSPAWN_EXEC, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
      },
    });
    this.child = child;
    const keep = (chunk: Buffer): void => {
      this.chunks.push(chunk);
      this.chunkBytes += chunk.length;
      while (this.chunkBytes > OUTPUT_LIMIT && this.chunks.length > 1) {
        this.chunkBytes -= (this.chunks.shift() as Buffer).length;
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.on('error', (error) => {
        this.exitStatus = `could not start: ${error.message}`;
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.exitStatus = signal ? `killed by ${signal}` : `exited ${code}`;
      });
      // After 'exit', once its output is all read.
      child.on('close', () => resolve());
    });
    if (child.pid !== undefined) this.record({ nspawnPid: child.pid });
  }

  // The host's PID 1 is the child of systemd-nspawn that lives in another PID
  // namespace and has become systemd.
  private async findLeader(deadline: number): Promise<number> {
    const ownPidNs = readlinkSync('/proc/self/ns/pid');
    const nspawnPid = this.nspawnPid;
    while (Date.now() < deadline) {
      if (this.exitStatus !== undefined) {
        throw new BootFailure(`systemd-nspawn ${this.exitStatus} before the host started`);
      }
      for (const pid of childrenOf(nspawnPid)) {
        try {
          if (readlinkSync(`/proc/${pid}/ns/pid`) === ownPidNs) continue;
          if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') return pid;
        } catch {
          // Exited or not yet visible; look again.
        }
      }
      await sleep(10);
    }
    throw new BootFailure(`no systemd process under systemd-nspawn after ${Math.round((Date.now() - this.startedAt) / 1000)} s`);
  }

  private async waitRunning(host: NspawnHost, deadline: number, allowFailed: readonly string[]): Promise<void> {
    let state = 'unknown';
    while (Date.now() < deadline) {
      if (this.exitStatus !== undefined) throw new BootFailure(`systemd-nspawn ${this.exitStatus} while booting`);
      let result: ExecResult;
      try {
        // --wait blocks until boot finished, once the manager answers at all.
        result = await host.exec('systemctl', ['is-system-running', '--wait'], {
          timeoutMs: Math.max(deadline - Date.now(), 1),
        });
      } catch (error) {
        if (this.exitStatus !== undefined) continue;
        if (Date.now() >= deadline) {
          state = 'still starting';
          break;
        }
        throw new BootFailure(`could not ask the host for its state: ${(error as Error).message}`);
      }
      state = result.stdout.trim() || result.stderr.trim();
      if (state === 'running') return;
      if (state === 'degraded') {
        const failed = await this.failedUnits(host);
        const unexpected = failed.filter((unit) => !allowFailed.includes(unit) && !HARMLESS_FAILED_UNITS.includes(unit));
        if (unexpected.length === 0) return;
        throw new BootFailure(`booted degraded; failed units: ${unexpected.join(', ')}`, await this.unitStatus(host, unexpected));
      }
      // "offline", "Failed to connect to bus", ...: the manager is not up yet.
      await sleep(25);
    }
    const seconds = Math.round((Date.now() - this.startedAt) / 1000);
    throw new BootFailure(`not "running" after ${seconds} s (last state: ${state})`, await this.jobs(host));
  }

  private async failedUnits(host: NspawnHost): Promise<string[]> {
    const result = await host.exec('systemctl', ['list-units', '--failed', '--plain', '--no-legend', '--no-pager']);
    return result.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((unit) => unit !== '');
  }

  private async unitStatus(host: NspawnHost, units: readonly string[]): Promise<string> {
    const result = await host
      .exec('systemctl', ['status', '--no-pager', '--lines=20', '--full', ...units], { timeoutMs: 10_000 })
      .catch((error: unknown) => ({ stdout: '', stderr: String(error) }));
    return result.stdout + result.stderr;
  }

  private async jobs(host: NspawnHost): Promise<string> {
    const result = await host
      .exec('systemctl', ['list-jobs', '--no-pager'], { timeoutMs: 5_000 })
      .catch((error: unknown) => ({ stdout: '', stderr: String(error) }));
    return `pending jobs:\n${result.stdout}${result.stderr}`;
  }

  /** The error bootHost throws: what went wrong, then what the host printed. */
  bootFailure(error: unknown): HostKitError {
    const summary = error instanceof Error ? error.message : String(error);
    const details = error instanceof BootFailure && error.details ? `${error.details.trim()}\n` : '';
    const output = this.output().trimEnd().split('\n').slice(-100).join('\n');
    return new HostKitError(
      'TEST_HOST_BOOT_FAILED',
      `Test host ${this.machine} failed to boot: ${summary}\n${details}` + `--- systemd-nspawn and console output (last 100 lines) ---\n${output}`,
      {
        data: { machine: this.machine, stateDir: this.stateDir },
        ...(error instanceof BootFailure ? {} : { cause: error }),
      },
    );
  }

  private async shutdown(): Promise<void> {
    const pid = this.child?.pid;
    if (pid !== undefined && this.exitStatus === undefined) {
      if (this.booted) {
        // systemd-nspawn asks the host's systemd to power off (see --kill-signal).
        killPid(pid, 'SIGTERM');
      } else if (this.leader !== undefined && isContainerInit(this.leader)) {
        // Half-booted systemd may not act on signals yet: end it, and
        // systemd-nspawn exits (cleaning up) as its init is gone.
        killPid(this.leader, 'SIGKILL');
      } else {
        killPid(pid, 'SIGTERM');
      }
      if (!(await settlesWithin(this.exited, this.stopGraceMs))) {
        killPid(pid, 'SIGKILL');
        await settlesWithin(this.exited, 5_000);
      }
    }
    // systemd-nspawn does not take the host down with it when it is killed.
    if (this.leader !== undefined && isContainerInit(this.leader)) {
      killPid(this.leader, 'SIGKILL');
      await waitForExit(this.leader, 5_000);
    }
    if (this.mounted) await unmount(this.rootDir);
    this.mounted = false;
    await fs.rm(this.stateDir, { recursive: true, force: true });
    for (let attempt = 0; attempt < 50 && this.cgroups.some(existsSync); attempt++) {
      if (attempt > 0) await sleep(20);
      this.cgroups.forEach(removeCgroupTree);
    }
    removeNspawnLeftovers(this.machine);
    live.delete(this);
  }
}

// --- process and mount helpers -------------------------------------------------

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter((s) => s.trim() !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

async function waitForExit(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (isRunning(pid) && Date.now() < deadline) await sleep(20);
}

// Exists and is not a zombie (a killed host's init may wait to be reaped).
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A systemd running as PID 1 of another PID namespace: what a leader PID must
// still be before we signal it (PIDs get reused).
function isContainerInit(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd' && readlinkSync(`/proc/${pid}/ns/pid`) !== readlinkSync('/proc/self/ns/pid');
  } catch {
    return false;
  }
}

function isNspawnFor(pid: number, machine: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg) => arg.endsWith('systemd-nspawn')) && argv.includes(`--machine=${machine}`);
  } catch {
    return false;
  }
}

function isMountPoint(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

async function unmount(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20 && isMountPoint(dir); attempt++) {
    const result = await execa('umount', [dir], { reject: false });
    if (result.exitCode === 0) return;
    await sleep(50);
  }
  if (isMountPoint(dir)) await execa('umount', ['-l', dir]);
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return settled;
}

function readOwner(stateDir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, 'owner.json'), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

// --- cgroups ----------------------------------------------------------------------

// One fresh cgroup per host, next to ours, in each hierarchy systemd-nspawn
// uses (the named v1 "systemd" one and/or the unified v2 one). Best effort: if
// none can be made, systemd-nspawn runs in ours (then hosts must not overlap).
function createCgroups(name: string): string[] {
  const dirs: string[] = [];
  for (const parent of cgroupParents()) {
    const dir = path.join(parent, name);
    try {
      mkdirSync(dir);
      dirs.push(dir);
    } catch {
      // Read-only or delegated elsewhere: leave this hierarchy alone.
    }
  }
  return dirs;
}

// Our own cgroup directory in the hierarchies systemd-nspawn uses.
function cgroupParents(): string[] {
  const own = new Map<string, string>(); // hierarchy key -> our path in it
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match) own.set(match[1] === '' ? 'cgroup2' : (match[1] as string), match[2] as string);
  }
  const parents: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [, , , mountRoot, mountPoint] = left.split(' ');
    const [fsType, , superOptions = ''] = right.split(' ');
    const isSystemdV1 = fsType === 'cgroup' && superOptions.split(',').includes('name=systemd');
    const key = fsType === 'cgroup2' ? 'cgroup2' : isSystemdV1 ? 'name=systemd' : undefined;
    const ownPath = key === undefined ? undefined : own.get(key);
    if (ownPath === undefined || !mountRoot || !mountPoint || !ownPath.startsWith(mountRoot)) continue;
    parents.push(path.join(mountPoint, path.relative(mountRoot, ownPath)));
  }
  return parents;
}

// Empty cgroup directories are removed with rmdir, deepest first.
function removeCgroupTree(dir: string): void {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) removeCgroupTree(path.join(dir, entry.name));
    }
    rmdirSync(dir);
  } catch {
    // Gone already, or a process is still in it; a later sweep retries.
  }
}

// systemd-nspawn leaves an empty mount-propagation directory per machine in
// /run when /run is not a tmpfs (as on this kind of machine).
function removeNspawnLeftovers(machine: string): void {
  try {
    rmdirSync(`/run/systemd/nspawn/propagate/${machine}`);
  } catch {
    // Not there, or not empty: leave it.
  }
}

// --- cleanup after crashes -------------------------------------------------------

const live = new Set<RunningHost>();
let hooksInstalled = false;

// A test run that crashes or is interrupted must not leave hosts running.
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      // Alone on this signal: restore the default action and re-raise it.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

function killAll(): void {
  for (const host of [...live]) host.killNow();
}

/**
 * Stops hosts and deletes overlays that a run which died without cleaning up
 * left behind (its owner process is gone). Runs before every boot.
 */
export async function sweepStaleMachines(): Promise<void> {
  const parent = stateParent();
  let names: string[];
  try {
    names = readdirSync(parent).filter((name) => name.startsWith(STATE_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const stateDir = path.join(parent, name);
    const owner = readOwner(stateDir);
    if (owner && isAlive(owner.ownerPid)) continue;
    if (!owner && !existsSync(path.join(stateDir, 'upper'))) continue; // being created right now
    process.stderr.write(`hostkit-test: cleaning up ${stateDir} left by a run that died\n`);
    if (owner?.leaderPid !== undefined && isContainerInit(owner.leaderPid)) killPid(owner.leaderPid, 'SIGKILL');
    if (owner?.nspawnPid !== undefined && isNspawnFor(owner.nspawnPid, owner.machine)) {
      killPid(owner.nspawnPid, 'SIGKILL');
    }
    const root = path.join(stateDir, 'root');
    if (isMountPoint(root)) await execa('umount', ['-l', root], { reject: false });
    if (!isMountPoint(root)) await fs.rm(stateDir, { recursive: true, force: true });
    owner?.cgroups?.forEach(removeCgroupTree);
    if (owner) removeNspawnLeftovers(owner.machine);
  }
  // Cgroups whose host stopped while something was still exiting in them.
  const claimed = new Set([...live].flatMap((host) => host.cgroupDirs()).concat(names.flatMap((name) => readOwner(path.join(parent, name))?.cgroups ?? [])));
  for (const dir of cgroupParents().flatMap((cgroupParent) => listHostCgroups(cgroupParent))) {
    // Old enough not to be one another run has made but not yet recorded.
    if (!claimed.has(dir) && ageMs(dir) > 60_000) removeCgroupTree(dir);
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function listHostCgroups(parent: string): string[] {
  try {
    return readdirSync(parent)
      .filter((name) => name.startsWith(STATE_PREFIX))
      .map((name) => path.join(parent, name));
  } catch {
    return [];
  }
}
