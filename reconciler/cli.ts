#!/usr/bin/env -S node --max-semi-space-size=4
// The command line only: parse, call, render, exit code. Modules are loaded
// lazily per command so `hostkit --version` pays for nothing else.
import { existsSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { addHelp } from './commands/help.js';
import { hostkitVersion } from './core/version.js';
import type { RollbackToCliOptions, StateOptions } from './commands/safety.js';
import type { BootstrapOptions } from './commands/bootstrap.js';
import type { FleetOptions } from './commands/fleet.js';
import type { HealthOptions } from './commands/health.js';
import type { LogsOptions } from './commands/logs.js';
import type { StatusOptions } from './commands/status.js';
import type { TargetCliOptions } from './commands/targets.js';

const FORMATS = ['text', 'json', 'yaml', 'markdown'] as const;
type Format = (typeof FORMATS)[number];

/** Exit codes: 0 done (or nothing pending), 1 error, 2 changes pending (dry run with --exit-code), 3 another run holds the host's run lock. */
export const EXIT = { ok: 0, error: 1, changes: 2, locked: 3 } as const;

const LOCK_TIMEOUT_HELP = 'wait this long for the run lock another HostKit process holds (30s, 5m; 0: exit 3 at once)';

function outputOption(formats: readonly Format[] = FORMATS): Option {
  return new Option('-o, --output <format>', 'output format').choices(formats).default('text');
}

const CACHE_HELP = 'parse every manifest file again (skip the parse cache; README: Caches)';

// Remote hosts over SSH (commands/targets.ts; README: Remote hosts over SSH): every command that reads or changes a host takes these.
function targetOptions(cmd: Command, options: { repo?: boolean } = {}): Command {
  if (options.repo)
    cmd.option(
      '--repo <dir>',
      'with --hosts or --target: the config repository whose Host manifests give addresses and spec.ssh (default: this directory, if it is one)',
    );
  return cmd
    .option('--target <url>', 'act on this host over SSH, not on this machine: ssh://[user@]host[:port] (repeatable)', (v: string, all?: string[]) => [
      ...(all ?? []),
      v,
    ])
    .option('--hosts <selector>', 'act over SSH on each Host manifest with these labels (env=prod,role=web), at its spec.address or name')
    .option('--parallel <n>', 'with several hosts: how many at a time (default: 4)')
    .option('--max-fail <n>', 'with several hosts: start no more once N failed (the rest are reported skipped)')
    .option('--accept-new-host-key', 'trust and record an SSH host key seen for the first time (a changed key is always refused)')
    .option('--ssh-config <file>', 'the ssh_config for the connections (ssh -F; default: ~/.ssh/config)');
}

/** The command on this machine, or (--target, --hosts) once per host named; `ok`: exit codes that are no failure for --max-fail. */
async function targeted<O extends TargetCliOptions>(opts: O, work: (o: O) => Promise<number>, ok?: (code: number) => boolean): Promise<number> {
  const remote =
    (opts.target ?? []).length > 0 || [opts.hosts, opts.parallel, opts.maxFail, opts.acceptNewHostKey, opts.sshConfig].some((v) => v !== undefined);
  if (!remote) return work(opts);
  return (await import('./commands/targets.js')).runOnTargets(opts, work, ok);
}

/**
 * The commands run on a host (status, logs, health, rollback --to) read the config repository from
 * --repo, or the current directory. A shell on a host usually starts in / or a home directory: reading
 * that as a repository would parse every YAML file below it. Without --repo the current directory must
 * look like a config repository (a hosts/ or projects/ folder), or the command stops with one line.
 */
function requireConfigRepo(cmd: Command): void {
  if (cmd.getOptionValueSource('repo') !== 'default') return;
  if (['hosts', 'projects'].some((dir) => existsSync(dir))) return;
  cmd.error(
    `error: ${process.cwd()} is not a config repository (no hosts/ or projects/ folder); run hostkit ${cmd.name()} from the repository or pass --repo DIR: a clone of it`,
  );
}

interface ReconcileOptions extends TargetCliOptions {
  repo: string;
  host?: string;
  dryRun?: boolean;
  exitCode?: boolean;
  output: Format;
  root?: string;
  stateDir?: string;
  verbose?: boolean;
  logLevel?: string;
  cache: boolean;
  keepRuns?: string;
  lockTimeout?: string;
  hostMismatchOk?: boolean;
  progress?: boolean;
  out?: string;
  plan?: string;
}

export function buildProgram(): Command {
  const program = new Command('hostkit')
    .description('GitOps reconciler for Linux hosts: validate manifests, plan, and apply them to a host.')
    .version(hostkitVersion(), '-V, --version')
    .option('-q, --quiet', 'errors only on stderr; data still on stdout')
    .option('--no-color', 'no colour, even on a terminal (like NO_COLOR)')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true, showGlobalOptions: true });
  // Global options take effect before a command's module is loaded.
  program.hook('preAction', async () => {
    const global = program.opts<{ quiet?: boolean; color: boolean }>();
    if (!global.color) process.env.NO_COLOR = '1'; // style.ts and pino-pretty both honour it, over FORCE_COLOR
    if (global.quiet) {
      (await import('./commands/quiet.js')).setQuiet(true);
      process.env.HOSTKIT_LOG_LEVEL = 'error'; // an explicit --log-level still wins
    }
  });

  program
    .command('init')
    .argument('[dir]', 'where to write it (made if missing)', '.')
    .description(
      'Write a starting config repository into DIR: hosts/HOST.yaml for this machine, projects/example.yaml (a commented Project), a README.md and a .gitignore; `git init` unless DIR is inside a git repository already. Refuses if any of these files exists.',
    )
    .option('--host <name>', "the Host's name (default: this machine's short hostname)")
    .action(async (dir: string, opts: { host?: string }) => {
      process.exitCode = await (await import('./commands/init.js')).init({ dir, ...opts });
    });

  program
    .command('validate')
    .description('Check every manifest against the schema and the semantic rules. Exit 0 when valid, 1 when not.')
    .option('--repo <dir>', 'config repository', '.')
    .addOption(outputOption())
    .option('--no-cache', CACHE_HELP)
    .action(async (opts: { repo: string; output: Format; cache: boolean }) => {
      process.exitCode = await (await import('./commands/validate.js')).validate(opts);
    });

  program
    .command('hooks')
    .description('Git hooks for a config repository.')
    .command('install')
    .description("Install HostKit's pre-commit hook (validates the staged manifests) into the repository's hooks directory (core.hooksPath respected).")
    .option('--repo <dir>', 'config repository', '.')
    .option('--force', 'replace a hook HostKit did not install (it is kept as NAME.hostkit-backup)')
    .action(async (opts: { repo: string; force?: boolean }) => {
      process.exitCode = await (await import('./commands/hooks.js')).hooksInstall(opts);
    });

  const reconcile = (name: string, description: string, dryRunDefault: boolean) => {
    const cmd = program
      .command(name)
      .description(description)
      .option('--repo <dir>', 'config repository', '.')
      .option('--host <name>', "the Host manifest to reconcile (default: this machine's hostname)")
      .option('--exit-code', 'with a dry run: exit 2 when changes are pending, 0 when none, 1 on error')
      .addOption(outputOption())
      .option('--verbose', 'also list unchanged resources')
      .option('--no-cache', CACHE_HELP)
      .addOption(new Option('--root <dir>', 'apply into this directory as if it were / (testing)').hideHelp())
      .option('--state-dir <dir>', "where HostKit keeps its inventory on the host (default: the Host manifest's stateDirectory)")
      .addOption(new Option('--log-level <level>', 'log level for stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']));
    if (!dryRunDefault) {
      cmd.option('--dry-run', 'print the plan and change nothing');
      cmd.option('--keep-runs <n>', 'after an apply, keep the newest N run journals in STATE/runs and remove older ones (default: 50)');
      cmd.option('--lock-timeout <duration>', `${LOCK_TIMEOUT_HELP} (default: 5m)`);
      cmd.option('--host-mismatch-ok', "apply even though this machine's hostname is not one the Host manifest names");
      cmd.option('--progress', 'a line on stderr as each step of the apply starts and ends (the default on a terminal)');
      cmd.option('--no-progress', 'no step lines, even on a terminal');
    }
    cmd.option('--watch', `plan again whenever a file in the repository changes, until interrupted${dryRunDefault ? '' : ' (with --dry-run only)'}`);
    // Saved plans (commands/saved-plan.ts): plan --out FILE, reconcile --plan FILE.
    cmd.option(
      '--out <file>',
      `save the plan to FILE (schema/saved-plan.schema.json) for \`hostkit reconcile --plan FILE\`${dryRunDefault ? '' : ' (with --dry-run only)'}`,
    );
    cmd.option(
      '--plan <file>',
      dryRunDefault
        ? 'show the plan saved in FILE and whether it is still current (exit 1 when stale)'
        : 'apply exactly the plan saved in FILE, or refuse it (exit 1, nothing applied) if the host or the manifests changed since; with --dry-run, show it and whether it is current',
    );
    targetOptions(cmd);
    cmd.action(async (opts: ReconcileOptions & { watch?: boolean }, command: Command) => {
      const dryRun = dryRunDefault || opts.dryRun === true;
      if (opts.watch && (opts.out !== undefined || opts.plan !== undefined))
        command.error('error: --watch plans again and again: it takes neither --out nor --plan');
      if ((opts.out !== undefined || opts.plan !== undefined) && ((opts.target ?? []).length > 1 || opts.hosts !== undefined))
        command.error('error: a saved plan is for one host: give --out or --plan with a single --target');
      if (opts.watch) {
        process.exitCode = await targeted(opts, async (o) => (await import('./commands/watch.js')).watchPlans({ ...o, dryRun }));
        return;
      }
      const run = (await import('./commands/reconcile.js')).reconcile;
      process.exitCode = await targeted(
        opts,
        (o) => run({ ...o, dryRun }),
        (code) => code === EXIT.ok || code === EXIT.changes,
      );
    });
  };
  reconcile('reconcile', 'Plan the changes the host needs and apply them (or, with --dry-run, only print the plan).', false);
  reconcile('plan', 'Print the plan for a host and change nothing (the same as reconcile --dry-run).', true);

  const agent = program
    .command('agent')
    .description('Run the agent: follow a git branch (poll and webhooks), reconcile this host, report status and drift back to git.')
    .option('--config <file>', 'agent configuration (YAML or JSON; see schema/agent.schema.json)')
    .action(async (opts: { config?: string }) => {
      if (!opts.config) return agent.error("error: required option '--config <file>' not specified");
      process.exitCode = await (await import('./commands/agent.js')).runAgent({ config: opts.config });
    });
  agent
    .command('install')
    .description("Write, verify, enable and start the agent's own systemd unit (hostkit-agent.service).")
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option('--no-start', 'enable the unit but do not start it now')
    .option('--print', 'print the unit and change nothing')
    .action(async (_opts: unknown, cmd: Command) => {
      // --config is the agent command's own option, given before or after `install`.
      const opts = cmd.optsWithGlobals<{ config?: string; unitDir: string; start: boolean; print?: boolean }>();
      if (!opts.config) cmd.error("error: required option '--config <file>' not specified");
      process.exitCode = await (await import('./commands/agent.js')).installAgent({ ...opts, config: opts.config });
    });

  // Bootstrap (reconciler/commands/bootstrap.ts): a fresh host to a running agent over SSH.
  program
    .command('bootstrap')
    .description(
      'Over SSH: check the host (Debian or Ubuntu, amd64 or arm64, root), install the HostKit package, write /etc/hostkit/agent.yaml and the secret files it names, and start the agent; running it again changes nothing.',
    )
    .argument('<target>', 'ssh://[user@]host[:port]')
    .requiredOption('--config <file>', 'the agent configuration to install (validated here first)')
    .option('--package <file>', "the HostKit .deb to install (default: build this checkout's, as npm run package does)")
    .option(
      '--secret <ref>',
      'a secret file to write: REMOTE_PATH=file:LOCAL_PATH or REMOTE_PATH=env:VARIABLE (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--secrets <file>', 'a file of --secret references, one a line (# comments)')
    .option('--accept-new-host-key', "trust the host's key on first use (never a changed one)")
    .option('--ssh-config <file>', 'ssh_config to use (ssh -F) instead of ~/.ssh/config')
    .option('--identity <file>', 'private key to log in with (ssh -i)')
    .option('--known-hosts <file>', 'known_hosts file to check the host key against')
    .option('--sudo', 'run as root through sudo -n (the default when the target names a user other than root)')
    .option('--dry-run', 'check, then say what would change, and change nothing')
    .option('--agent-timeout <duration>', "how long to wait for the agent's first run (default: 5m)")
    .action(async (target: string, opts: BootstrapOptions) => {
      process.exitCode = await (await import('./commands/bootstrap.js')).bootstrap(target, opts);
    });

  // A fleet (reconciler/commands/fleet.ts): read from, and rollout decisions written to, the shared repository's report branch.
  const fleet = program
    .command('fleet')
    .description("The fleet as the report branch says: each host's status, and where a commit stands in the rollout waves.");
  const fleetOptions = (command: Command) =>
    command
      .option('--repo <dir>', "the shared repository: a clone (its origin is read) or the repository's URL or path", '.')
      .option('--branch <name>', 'the branch the agents follow', 'main')
      .option('--report-branch <name>', 'the branch the agents report to', 'hostkit-status')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'));
  fleetOptions(fleet.command('status'))
    .description('Each host: its commit, result, wave, drift, first certificate expiry and last report; hosts that stopped reporting flagged STALE.')
    .option('--stale-after <duration>', 'a host whose last report is older is stale (default: 3h)')
    .action(async (opts: FleetOptions) => {
      process.exitCode = await (await import('./commands/fleet.js')).fleetStatus(opts);
    });
  fleetOptions(fleet.command('rollout'))
    .description(
      'Where the branch head stands in the rollout waves (.hostkit/rollout.yaml); with pause, resume or abort, commit that decision to the report branch, which every agent reads before applying.',
    )
    .argument('[action]', 'pause, resume or abort')
    .action(async (action: string | undefined, opts: FleetOptions) => {
      process.exitCode = await (await import('./commands/fleet.js')).fleetRollout(action, opts);
    });

  // Safe apply: the run journal, down plans, and lifting quarantine/pause (reconciler/commands/safety.ts).
  const stateCommand = (name: string, description: string, formats: readonly Format[] = ['text', 'json', 'yaml']) =>
    targetOptions(
      program
        .command(name)
        .description(description)
        .option('--state-dir <dir>', 'where HostKit keeps its state on this host', '/var/lib/hostkit')
        .addOption(outputOption(formats))
        .addOption(new Option('--root <dir>', 'act on this directory as if it were / (testing)').hideHelp())
        .addOption(new Option('--log-level <level>', 'log level for stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])),
      { repo: name !== 'rollback' }, // rollback has a --repo of its own (with --to)
    );
  const changesState = (command: Command) =>
    command
      .option('--lock-timeout <duration>', `${LOCK_TIMEOUT_HELP} (default: 5m)`)
      .option('--host-mismatch-ok', "act even though this machine's hostname is not the host the run was applied to");
  stateCommand('runs', 'List the runs recorded on this host (journal, status, quarantined commits, paused projects).', FORMATS)
    .option('--verbose', "also show each run's planned changes and events")
    .option('--prune', 'remove old runs, keeping the newest --keep')
    .option('--keep <n>', 'with --prune: how many runs to keep (default: 50, as every apply keeps)')
    .action(async (opts: StateOptions & TargetCliOptions & { verbose?: boolean; prune?: boolean; keep?: string }) => {
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/safety.js')).runs(o));
    });
  changesState(
    stateCommand(
      'rollback',
      'Restore the state before a run from its backups (lifecycle down commands run; irreversible ones are reported), or switch a project to one of its kept releases and hold it there (--project NAME --to ID).',
    ),
  )
    .option('--last', 'the newest applied run not rolled back yet')
    .option('--run <id>', 'the run to undo (a unique prefix of its id)')
    .option('--dry-run', 'print the down plan and change nothing')
    .option(
      '--with-data',
      "also restore the run's database checkpoints (taken before its migrations and releases); the data written since is lost, and checkpointed first",
    )
    .option('--project <name>', 'with --to: the project to switch')
    .option(
      '--to <id>',
      'with --project: a complete release kept on the host (`hostkit releases`); the project is held on it until a commit changes its source or `hostkit resume`',
    )
    .option('--repo <dir>', 'with --to: config repository', '.')
    .option('--host <name>', "with --to: the Host manifest this machine is (default: this machine's hostname)")
    .option('--no-cache', `with --to: ${CACHE_HELP}`)
    .action(async (opts: StateOptions & RollbackToCliOptions & TargetCliOptions, cmd: Command) => {
      // With --to the state directory is the Host manifest's unless --state-dir says otherwise.
      if (opts.to !== undefined && cmd.getOptionValueSource('stateDir') === 'default') delete opts.stateDir;
      if (opts.to !== undefined) requireConfigRepo(cmd);
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/safety.js')).rollback(o));
    });
  changesState(
    stateCommand(
      'resume',
      'Lift the quarantine of failed commits, un-pause paused projects and end release holds (rollback --to), so the next apply retries them.',
    ),
  )
    .option('--project <name>', 'only this project')
    .option('--commit <sha>', 'only this commit')
    .action(async (opts: StateOptions & TargetCliOptions & { project?: string; commit?: string }) => {
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/safety.js')).resume(o));
    });

  stateCommand(
    'releases',
    "List each project's releases on this host, newest first: the current one marked, commit, source, build time and the run that switched to it.",
    ['text', 'json', 'yaml'],
  )
    .option('--project <name>', 'only this project')
    .action(async (opts: TargetCliOptions & { project?: string; stateDir?: string; root?: string; output: Format }) => {
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/releases.js')).releases(o));
    });

  // Backups (reconciler/commands/backups.ts): restic, one repository per host; root's, like its password.
  const backupsCommand = targetOptions(
    program
      .command('backups')
      .description("List the snapshots in the host's backup repository (Host spec.backup) and each project's last backups.")
      .option('--project <name>', 'only this project')
      .addOption(outputOption(['text', 'json', 'yaml']))
      .addOption(new Option('--root <dir>', 'act on this directory as if it were / (testing)').hideHelp()),
    { repo: true },
  ).action(async (opts: TargetCliOptions & { project?: string; output: 'text' | 'json' | 'yaml'; root?: string }) => {
    process.exitCode = await targeted(opts, async (o) => (await import('./commands/backups.js')).backups(o));
  });
  backupsCommand
    .command('run')
    .description(
      'Back up a project now: its database (pg_dump -Fc into restic) and its files, each followed by its retention; what its backup timers run. Exit 0 when every part was backed up, 1 otherwise.',
    )
    .argument('<project>', 'a project with database.backup or backup on this host')
    .option('--database', 'only its database')
    .option('--files', 'only its files')
    .option('--scheduled', 'record the backup as started by its timer')
    // -o, --root and --target are the backups command's, given before or after the subcommand.
    .action(async (project: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<
        TargetCliOptions & { database?: boolean; files?: boolean; scheduled?: boolean; output: 'text' | 'json' | 'yaml'; root?: string }
      >();
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/backups.js')).backupsRun(project, o));
    });
  backupsCommand
    .command('restore')
    .description(
      "Restore a project's backup into a scratch copy that can never be the live one (a new database hk_scratch_..., a new directory under STATE/scratch), check it (tables and their rows; every file's sha256) and say how long it took.",
    )
    .argument('<project>', 'a project with database.backup or backup on this host')
    .option('--to-scratch', 'into a new scratch database or directory')
    .option(
      '--to-live',
      "replace the project's live database (needs --yes): a journaled run that checkpoints the data it replaces first (hostkit rollback --last --with-data puts it back)",
    )
    .option('--yes', 'with --to-live: yes, replace the live data')
    .option('--lock-timeout <duration>', 'with --to-live: how long to wait for a running apply (default 5m)')
    .option('--snapshot <id>', 'this snapshot (a unique prefix of its id; hostkit backups lists them), with --database or --files; default: the newest')
    .option('--drill', 'with --database: a restore drill: check, drop the copy, record the outcome (what database.backup.drill schedules)')
    .option('--scheduled', 'with --drill: record it as started by its timer')
    .option('--database', 'only its database')
    .option('--files', 'only its files')
    // -o, --root and --target are the backups command's, given before or after the subcommand.
    .action(async (project: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<
        {
          toScratch?: boolean;
          toLive?: boolean;
          yes?: boolean;
          lockTimeout?: string;
          snapshot?: string;
          database?: boolean;
          files?: boolean;
          output: 'text' | 'json' | 'yaml';
          root?: string;
        } & TargetCliOptions
      >();
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/backups.js')).backupsRestore(project, o));
    });

  // Operating a host (reconciler/commands/status.ts, logs.ts, health.ts): read live from this machine.
  const operateCommand = (name: string, description: string) =>
    targetOptions(
      program
        .command(name)
        .description(description)
        .option('--repo <dir>', 'config repository', '.')
        .option('--host <name>', "the Host manifest this machine is (default: this machine's hostname)")
        .option('--no-cache', 'parse every manifest file again (skip the parse cache)'),
    );
  operateCommand(
    'status',
    'Show the host live: the commit applied last, the last run, holds, and per project its units, sites, database, firewall, health and pending drift.',
  )
    .option('--project <name>', 'only this project')
    .addOption(outputOption())
    .option('--state-dir <dir>', "where HostKit keeps its state on this host (default: the Host manifest's stateDirectory)")
    .addOption(new Option('--root <dir>', 'read this directory as if it were / (testing)').hideHelp())
    .addOption(new Option('--log-level <level>', 'log level for stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .action(async (opts: StatusOptions & TargetCliOptions, cmd: Command) => {
      requireConfigRepo(cmd);
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/status.js')).status(o));
    });
  operateCommand('logs', "Print a project's journal: its service, workers, timers and lifecycle commands, and nothing else.")
    .argument('<project>', 'a project placed on this host')
    .option('--unit <unit>', 'only one part: service, worker/NAME, timer/NAME, unit/NAME or lifecycle')
    .option('-n, --lines <n>', 'the last N lines (default: 100)')
    .option('-f, --follow', 'keep printing new lines until interrupted (Ctrl-C exits 0)')
    .option('--since <time>', 'lines since this time, as journalctl reads it ("2026-11-22 05:00", "1 hour ago", today)')
    .addOption(outputOption(['text', 'json']))
    .action(async (project: string, opts: LogsOptions & TargetCliOptions, cmd: Command) => {
      requireConfigRepo(cmd);
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/logs.js')).logs(project, o));
    });
  operateCommand('health', "Run the projects' declared health checks now, one line each. Exit 0 when all pass, 1 otherwise.")
    .argument('[project]', 'only this project')
    .option('--watch <seconds>', 'check again every N seconds until interrupted (exit code: the last round)')
    .action(async (project: string | undefined, opts: HealthOptions & TargetCliOptions, cmd: Command) => {
      requireConfigRepo(cmd);
      process.exitCode = await targeted(opts, async (o) => (await import('./commands/health.js')).health(project, o));
    });
  addHelp(program);
  return program;
}

async function main(): Promise<void> {
  // V8's compiled code for HostKit's modules is kept on disk between runs (Node >= 22.1): faster start-up.
  module.enableCompileCache?.();
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (cause) {
    const { describeFailure, exitCodeOf } = await import('./commands/failure.js');
    process.stderr.write(describeFailure(cause));
    process.exitCode = exitCodeOf(cause);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
} else if (process.argv[1]?.endsWith('/hostkit')) {
  await main(); // run through the npm bin link
}
