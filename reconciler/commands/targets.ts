// `--target ssh://[user@]host[:port]` and `--hosts SELECTOR`: the hosts a
// command acts on over SSH instead of this machine. Each is matched to the
// Host manifest it stands for (whose spec.address and spec.ssh give the
// defaults; the command line wins), reached over one SSH connection
// (hosts/ssh.ts), handed to the command as its Host, and closed again: after
// the command, when it throws, and on Ctrl-C. One host: the command's output
// as a local run prints it. Several: run side by side (--parallel), grouped
// per host (target-output.ts), --max-fail stops starting more.
import { existsSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HostKitError, errorMessage, isHostKitError } from '../core/errors.js';
import { describeRef } from '../core/secrets.js';
import { openSshHost, formatSshTarget, parseSshTarget, type SshHost, type SshHostOptions, type SshTarget } from '../hosts/ssh.js';
import { hostSettings, placedOn } from '../manifests/expand.js';
import { validateRepository } from '../manifests/index.js';
import { defaultCacheDir } from '../manifests/parse-cache.js';
import type { HostManifest, Manifest, SecretRef } from '../manifests/types.js';
import { describeFailure, exitCodeOf } from './failure.js';
import { reportInvalid } from './operate.js';
import type { OnHost } from './run-input.js';
import { capture, interceptOutput, renderGrouped, worstExitCode, type HostOutcome } from './target-output.js';

/** The options every command that reads or changes a host takes (cli.ts). */
export interface TargetCliOptions {
  /** --target, repeated. */
  target?: string[];
  /** --hosts: a label selector over the Host manifests of --repo (`env=prod,role=web`). */
  hosts?: string;
  parallel?: string;
  maxFail?: string;
  acceptNewHostKey?: boolean;
  sshConfig?: string;
}

/** What runOnTargets reads of a command's options besides its own. */
export interface TargetCommandOptions extends TargetCliOptions {
  repo?: string;
  host?: string;
  root?: string;
  output?: string;
  /** logs -f, health --watch, plan --watch: one host only. */
  follow?: boolean;
  watch?: unknown;
  cache?: boolean;
  on?: OnHost;
}

export const DEFAULT_PARALLEL = 4;

/** One host to reach, before it is reached. */
export interface TargetSpec {
  /** The Host manifest it stands for, when known before connecting; else the host's own name, asked once connected. */
  hostName?: string;
  /** How the command line or the manifest reaches it. */
  ssh: SshHostOptions;
  /** spec.ssh.identityFile, resolved on this machine when connecting. */
  identity?: { ref: SecretRef; of: string };
}

function badOption(message: string, data: Record<string, unknown> = {}): HostKitError {
  return new HostKitError('BAD_OPTION', message, { data });
}

/** A whole number of at least 1 for --parallel and --max-fail, or BAD_OPTION. */
export function parseCount(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1) throw badOption(`${option} expects a whole number, at least 1, got ${JSON.stringify(text)}`);
  return Number(text);
}

const LABEL_KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;

/** `env=prod,role=web`: every label must match (as a placement's matchLabels). BAD_OPTION names what is wrong. */
export function parseSelector(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    const m = /^([^=!\s]+)=([^=\s]*)$/.exec(part.trim());
    if (!m || !LABEL_KEY.test(m[1]!) || !LABEL_VALUE.test(m[2]!))
      throw badOption(`--hosts expects labels as KEY=VALUE[,KEY=VALUE...] (e.g. env=prod,role=web), got ${JSON.stringify(part)} in ${JSON.stringify(text)}`);
    labels[m[1]!] = m[2]!;
  }
  return labels;
}

/** spec.address (`user@host` or `host`, an IPv6 address bare) as a target. */
export function addressTarget(address: string): SshTarget {
  const at = address.lastIndexOf('@');
  const host = address.slice(at + 1);
  if (net.isIPv6(host)) return { ...(at > 0 ? { user: address.slice(0, at) } : {}), host };
  return parseSshTarget(address);
}

// Where a Host manifest says it is reached: its address, else its name.
function manifestTarget(m: Manifest<HostManifest>): SshTarget {
  return m.value.spec?.address ? addressTarget(m.value.spec.address) : { host: m.name };
}

// The SSH options for a target standing for `m`: what the command line says, else spec.ssh, else spec.address.
function sshOptions(opts: TargetCliOptions, target: SshTarget, m: Manifest<HostManifest> | undefined): Pick<TargetSpec, 'ssh' | 'identity'> {
  const ssh = m?.value.spec?.ssh;
  const user = target.user ?? ssh?.user ?? (m ? manifestTarget(m).user : undefined);
  const port = target.port ?? ssh?.port;
  return {
    ssh: {
      target: { ...(user !== undefined ? { user } : {}), host: target.host, ...(port !== undefined ? { port } : {}) },
      ...(ssh?.knownHosts ? { knownHostsFile: ssh.knownHosts } : {}),
      ...(ssh?.sudo ? { sudo: true } : {}),
      ...(opts.acceptNewHostKey ? { acceptNewHostKey: true } : {}),
      ...(opts.sshConfig ? { configFile: opts.sshConfig } : {}),
    },
    ...(ssh?.identityFile ? { identity: { ref: ssh.identityFile, of: `spec.ssh.identityFile of Host ${m!.name}` } } : {}),
  };
}

/**
 * The hosts --target and --hosts name, in that order, each once. A --target
 * stands for the Host manifest named like its host, else the one whose
 * spec.address has that host; otherwise for --host NAME, or (hostName left
 * out) whatever the host calls itself. --hosts selects Host manifests by
 * their labels; each is reached at spec.address, else at its name.
 */
export function resolveTargets(opts: TargetCommandOptions, hosts: readonly Manifest<HostManifest>[]): TargetSpec[] {
  const specs: TargetSpec[] = [];
  const targets = opts.target ?? [];
  if (opts.host !== undefined && targets.length + (opts.hosts !== undefined ? 1 : 0) > 1)
    throw badOption(`--host names the Host manifest of one host; with several targets each is matched by its name or spec.address (drop --host)`);
  for (const text of targets) {
    const target = parseSshTarget(text);
    const named = hosts.find((m) => m.name === target.host);
    const addressed = hosts.filter((m) => m.value.spec?.address !== undefined && manifestTarget(m).host === target.host);
    if (!named && addressed.length > 1)
      throw badOption(`--target ${text} matches several Host manifests by spec.address (${addressed.map((m) => m.name).join(', ')}); pass --host NAME`, {
        target: text,
      });
    const matched = named ?? addressed[0];
    if (matched && opts.host !== undefined && matched.name !== opts.host)
      throw badOption(`--target ${text} is Host ${matched.name} (by its ${named ? 'name' : 'spec.address'}), but --host says ${opts.host}`, { target: text });
    const manifest = matched ?? hosts.find((m) => m.name === opts.host);
    const hostName = matched?.name ?? opts.host;
    specs.push({ ...(hostName !== undefined ? { hostName } : {}), ...sshOptions(opts, target, manifest) });
  }
  if (opts.hosts !== undefined) {
    const labels = parseSelector(opts.hosts);
    const selected = hosts.filter((m) => placedOn({ selector: { matchLabels: labels } }, hostSettings(m)));
    if (selected.length === 0)
      throw badOption(
        `--hosts ${opts.hosts}: no Host manifest in ${opts.repo ?? '.'} has these labels (Host manifests: ${hosts.map((m) => m.name).join(', ') || 'none'})`,
        {
          selector: opts.hosts,
        },
      );
    if (opts.host !== undefined && !selected.every((m) => m.name === opts.host))
      throw badOption(`--hosts ${opts.hosts} selects ${selected.map((m) => m.name).join(', ')}, but --host says ${opts.host}`);
    for (const m of [...selected].sort((a, b) => a.name.localeCompare(b.name))) specs.push({ hostName: m.name, ...sshOptions(opts, manifestTarget(m), m) });
  }
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = s.hostName ?? formatSshTarget(s.ssh.target);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The Host manifests of the repository, when the command is given one (or runs in one); none otherwise. */
async function hostManifests(opts: TargetCommandOptions): Promise<Manifest<HostManifest>[] | number> {
  const dir = opts.repo ?? '.';
  const looksLikeRepo = ['hosts', 'projects'].some((d) => existsSync(path.join(dir, d)));
  if (opts.hosts === undefined && !looksLikeRepo) return [];
  if (!existsSync(dir)) throw badOption(`--repo ${dir} does not exist`);
  const repo = await validateRepository(dir, opts.cache !== false ? cacheOption() : {});
  if (!repo.valid && opts.hosts !== undefined) return reportInvalid(repo, dir);
  return repo.manifests.filter((m): m is Manifest<HostManifest> => m.kind === 'Host');
}

function cacheOption(): { cacheDir?: string } {
  const cacheDir = defaultCacheDir();
  return cacheDir ? { cacheDir } : {};
}

/** A host reached over SSH for one command, and how to let it go. */
export interface OpenedTarget extends OnHost {
  /** ssh://user@host:port */
  target: string;
  close(): Promise<void>;
}

/**
 * The identity file for ssh -i, resolved here, on the operator's machine: a
 * {file:} reference is that file; an {env:} one is the key held in that
 * variable, written to a private 0600 file that close() removes.
 */
export async function identityFile(identity: NonNullable<TargetSpec['identity']>): Promise<{ file: string; dispose: () => Promise<void> }> {
  const { ref, of } = identity;
  const unavailable = (why: string) => new HostKitError('SSH_IDENTITY_UNAVAILABLE', `${of} (${describeRef(ref)}): ${why}`, { data: { identity: of } });
  if ('file' in ref) {
    await fs.access(ref.file).catch((cause: unknown) => {
      throw unavailable(`cannot be read on this machine (${errorMessage(cause)})`);
    });
    return { file: ref.file, dispose: async () => undefined };
  }
  if ('env' in ref) {
    const key = process.env[ref.env];
    if (!key) throw unavailable(`the variable is not set on this machine`);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hostkit-identity-'));
    const file = path.join(dir, 'id');
    // ssh reads a key only from a file of the user's alone, and only with its last line ended.
    await fs.writeFile(file, key.endsWith('\n') ? key : `${key}\n`, { mode: 0o600 });
    return { file, dispose: () => fs.rm(dir, { recursive: true, force: true }) };
  }
  throw unavailable('an age-encrypted key would need an age identity on this machine; use {file:} or {env:}');
}

/** Reaches the host: its identity resolved, its SSH connection opened, its name known. On failure nothing is left open. */
export async function openTarget(spec: TargetSpec): Promise<OpenedTarget> {
  const identity = spec.identity ? await identityFile(spec.identity) : undefined;
  let host: SshHost;
  try {
    host = await openSshHost({ ...spec.ssh, ...(identity ? { identityFile: identity.file } : {}) });
  } catch (error) {
    await identity?.dispose();
    throw error;
  }
  // SshHost.close() rejects when a write sent without waiting failed on the host (or the connection
  // ended before it was answered): the command then fails, never reports success.
  const close = async () => {
    try {
      await host.close();
    } finally {
      await identity?.dispose();
    }
  };
  try {
    const hostName = spec.hostName ?? (await host.hostname()).split('.')[0]!;
    return { host, hostName, target: formatSshTarget(spec.ssh.target), close };
  } catch (error) {
    await close().catch(() => undefined); // the error that stopped it says more
    throw error;
  }
}

/**
 * `work`'s result once the target is closed. A close that fails (SshHost: a
 * write sent without waiting failed on the host) fails the command even when
 * `work` succeeded; when `work` failed, its error is the one reported.
 */
async function closedAfter<T>(target: OpenedTarget, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await target.close().catch(() => undefined);
    throw error;
  }
  await target.close();
  return result;
}

/**
 * Runs `items` at most `parallel` at a time, in order; once `maxFail` of them
 * failed, none is started any more: those are reported skipped.
 */
export async function runPool<T, R>(
  items: readonly T[],
  options: { parallel: number; maxFail?: number },
  run: (item: T) => Promise<{ result: R; failed: boolean }>,
): Promise<({ result: R } | { skipped: true })[]> {
  const results: ({ result: R } | { skipped: true })[] = items.map(() => ({ skipped: true }));
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < items.length && (options.maxFail === undefined || failures < options.maxFail)) {
      const index = next++;
      const { result, failed } = await run(items[index]!);
      if (failed) failures++;
      results[index] = { result };
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel, items.length) }, worker));
  return results;
}

/**
 * Ctrl-C (or SIGTERM) while hosts are connected: a command that handles the
 * signal itself (logs -f, health --watch, --watch) ends as it would locally
 * and the connections close after it; otherwise the connections are closed
 * (the host releases the run lock with them; an apply cut short is rolled
 * back by the next run, as locally) and the process exits 128 + N.
 */
function closeOnSignal(open: Set<OpenedTarget>): () => void {
  const handler = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    void Promise.allSettled([...open].map((t) => t.close())).then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/**
 * The command once per host that --target and --hosts name, each handed its
 * host as `on`. `ok` says which exit codes are not a failure (--max-fail
 * counts failures): 0, and for plan --exit-code also 2. `open` reaches a
 * host (unit tests hand fake ones).
 */
export async function runOnTargets<O extends TargetCommandOptions>(
  opts: O,
  work: (opts: O) => Promise<number>,
  ok: (code: number) => boolean = (code) => code === 0,
  open: (spec: TargetSpec) => Promise<OpenedTarget> = openTarget,
): Promise<number> {
  if ((opts.target ?? []).length === 0 && opts.hosts === undefined)
    throw badOption('--parallel, --max-fail, --accept-new-host-key and --ssh-config go with --target ssh://[user@]host[:port] or --hosts SELECTOR');
  if (opts.root !== undefined) throw badOption('--root acts on a directory of this machine; it does not go with --target or --hosts');
  const parallel = parseCount('--parallel', opts.parallel) ?? DEFAULT_PARALLEL;
  const maxFail = parseCount('--max-fail', opts.maxFail);
  const hosts = await hostManifests(opts);
  if (typeof hosts === 'number') return hosts;
  const specs = resolveTargets(opts, hosts);
  const connected = new Set<OpenedTarget>();
  const stopOnSignal = closeOnSignal(connected);
  try {
    if (specs.length === 1) {
      // One host: the command's own output, errors and exit code, as a local run gives them.
      const target = await open(specs[0]!);
      connected.add(target);
      return await closedAfter(target, async () => {
        try {
          return await work({ ...opts, on: { host: target.host, hostName: target.hostName } });
        } finally {
          connected.delete(target);
        }
      });
    }
    const streaming = opts.follow ? '--follow' : opts.watch ? '--watch' : undefined;
    if (streaming) throw badOption(`${streaming} runs until interrupted and prints as it goes: give it one host (${specs.length} are named)`);
    return await runSeveral(specs, opts, work, ok, { parallel, ...(maxFail !== undefined ? { maxFail } : {}) }, { open, connected });
  } finally {
    stopOnSignal();
  }
}

async function runSeveral<O extends TargetCommandOptions>(
  specs: readonly TargetSpec[],
  opts: O,
  work: (opts: O) => Promise<number>,
  ok: (code: number) => boolean,
  pool: { parallel: number; maxFail?: number },
  hosts: { open: (spec: TargetSpec) => Promise<OpenedTarget>; connected: Set<OpenedTarget> },
): Promise<number> {
  const restore = interceptOutput();
  let results;
  try {
    results = await runPool(specs, pool, async (spec) => {
      const label = spec.hostName ?? spec.ssh.target.host;
      let opened: OpenedTarget | undefined;
      const run = await capture(label, async () => {
        const target = (opened = await hosts.open(spec));
        hosts.connected.add(target);
        return await closedAfter(target, async () => {
          try {
            // A live progress display would interleave with the other hosts' lines.
            return await work({ ...opts, progress: false, on: { host: target.host, hostName: target.hostName } });
          } finally {
            hosts.connected.delete(target);
          }
        });
      });
      const outcome: HostOutcome = {
        name: opened?.hostName ?? label,
        target: formatSshTarget(spec.ssh.target),
        exitCode: 'value' in run ? run.value : exitCodeOf(run.error),
        stdout: run.stdout,
      };
      if ('error' in run) {
        process.stderr.write(prefixLines(`${outcome.name}: `, describeFailure(run.error)));
        outcome.error = isHostKitError(run.error) ? { code: run.error.code, message: run.error.message } : { message: errorMessage(run.error) };
      }
      return { result: outcome, failed: !ok(outcome.exitCode) };
    });
  } finally {
    restore();
  }
  const outcomes = results.map((r, i): HostOutcome => {
    if ('result' in r) return r.result;
    const spec = specs[i]!;
    return {
      name: spec.hostName ?? spec.ssh.target.host,
      target: formatSshTarget(spec.ssh.target),
      exitCode: 1,
      stdout: '',
      skipped: `not started: ${pool.maxFail} host(s) had failed (--max-fail ${pool.maxFail})`,
    };
  });
  process.stdout.write(renderGrouped(uniqueNames(outcomes), opts.output ?? 'text'));
  return worstExitCode(outcomes.map((o) => o.exitCode));
}

function prefixLines(prefix: string, text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((line) => `${prefix}${line}\n`)
    .join('');
}

// Two targets not matched to a Host manifest may call themselves alike: each keeps a key of its own.
function uniqueNames(outcomes: readonly HostOutcome[]): HostOutcome[] {
  const count = new Map<string, number>();
  for (const o of outcomes) count.set(o.name, (count.get(o.name) ?? 0) + 1);
  return outcomes.map((o) => (count.get(o.name)! > 1 ? { ...o, name: o.target } : o));
}
