// What `--help` adds to the options commander lists: a one-line summary for the
// command list of the parent (so `hostkit --help` stays one line a command),
// and examples at the end, by command path ('' is hostkit itself). Every
// command has an entry; test/cli-options.spec.ts checks it.
import type { Command } from 'commander';

interface Help {
  /** Shown in the parent's command list; the full description stays on the command's own help. */
  summary?: string;
  /** [command line, what it does]. */
  examples: readonly (readonly [string, string?])[];
}

export const HELP: Record<string, Help> = {
  '': {
    examples: [
      ['hostkit init config', 'a starting config repository in ./config'],
      ['hostkit validate --repo config', 'check its manifests (exit 1 on errors)'],
      ['hostkit plan --repo config', 'what would change on this machine; changes nothing'],
      ['sudo hostkit reconcile --repo config', 'plan, then apply'],
      ['hostkit COMMAND --help', "a command's options, with examples"],
    ],
  },
  init: {
    summary: 'Write a starting config repository.',
    examples: [
      ['hostkit init config', 'in ./config, with git init'],
      ['hostkit init --host web-1', 'in this directory, for the host web-1'],
    ],
  },
  validate: {
    summary: 'Check every manifest; exit 1 if any is invalid.',
    examples: [
      ['hostkit validate --repo ~/src/config'],
      ['hostkit validate -q', 'errors only; nothing printed when valid'],
      ["hostkit validate -o json | jq '.diagnostics[]'"],
      ['hostkit validate -o markdown > validation.md', 'e.g. for a pull-request comment'],
    ],
  },
  hooks: { examples: [['hostkit hooks install --repo ~/src/config']] },
  'hooks install': {
    summary: "Install HostKit's pre-commit hook (validates the staged manifests).",
    examples: [
      ['hostkit hooks install --repo ~/src/config'],
      ['hostkit hooks install --force', 'replace a hook HostKit did not write (kept as pre-commit.hostkit-backup)'],
    ],
  },
  reconcile: {
    summary: 'Plan the changes the host needs and apply them.',
    examples: [
      ['sudo hostkit reconcile --repo /srv/config', 'this machine, as its Host manifest says'],
      ['sudo hostkit reconcile --dry-run --exit-code', 'exit 2 when changes are pending'],
      ['sudo hostkit reconcile -q -o json > result.json', 'the result as JSON; errors only on stderr'],
      ['sudo hostkit reconcile --plan plan.json', 'apply exactly a saved plan; refused (exit 1) if the host or the manifests changed since'],
    ],
  },
  plan: {
    summary: 'Print the plan for a host; change nothing.',
    examples: [
      ['hostkit plan --host web-1', 'any Host of the repository, from a laptop too'],
      ['hostkit plan -o markdown > plan.md', 'for a pull-request comment'],
      ['sudo hostkit plan --out plan.json', 'save it for `hostkit reconcile --plan plan.json`'],
      ['hostkit plan -q --exit-code', 'exit 2 when changes are pending'],
      ['hostkit plan --watch', 'plan again on every file change'],
    ],
  },
  agent: {
    summary: 'Follow a branch, reconcile, report back to git.',
    examples: [
      ['hostkit agent --config /etc/hostkit/agent.yaml', 'in the foreground'],
      ['sudo hostkit agent install --config /etc/hostkit/agent.yaml', 'as the systemd service hostkit-agent'],
    ],
  },
  fleet: {
    summary: 'Fleet status and rollout waves (report branch).',
    examples: [
      ['hostkit fleet status --repo ~/src/config', 'every host: commit, result, wave, drift, certificates, last report'],
      ['hostkit fleet rollout --repo ~/src/config', 'where the branch head stands in the waves'],
    ],
  },
  'fleet status': {
    summary: "Each host's commit, result, wave, drift and last report; stale hosts flagged.",
    examples: [
      ['hostkit fleet status --repo ~/src/config', "read through the clone's origin"],
      ['hostkit fleet status --repo git@github.com:acme/config.git -o json', 'one object per host'],
      ['hostkit fleet status --stale-after 30m', 'flag hosts silent for more than 30 minutes'],
    ],
  },
  'fleet rollout': {
    summary: 'Show the rollout of the branch head; pause, resume or abort it.',
    examples: [
      ['hostkit fleet rollout', 'per wave: applied, failed, pending, and why the next host waits'],
      ['hostkit fleet rollout pause', 'hosts of the waves hold new commits (a commit on the report branch)'],
      ['hostkit fleet rollout resume'],
      ['hostkit fleet rollout abort', 'the branch head is never rolled further; the next commit starts a new rollout'],
    ],
  },
  'agent install': {
    examples: [
      ['sudo hostkit agent install --config /etc/hostkit/agent.yaml'],
      ['hostkit agent install --config agent.yaml --print', 'show the unit; change nothing'],
    ],
  },
  bootstrap: {
    summary: 'Install HostKit and start its agent, over SSH.',
    examples: [
      ['hostkit bootstrap ssh://root@web-1 --config agent.yaml --secret /etc/hostkit/deploy_key=file:./deploy_key', 'a fresh host to a running agent'],
      ['hostkit bootstrap ssh://root@web-1 --config agent.yaml --secrets web-1.secrets --dry-run', 'what each step would do; changes nothing'],
      [
        'hostkit bootstrap ssh://admin@203.0.113.7:2222 --config agent.yaml --package hostkit_0.1.0_amd64.deb --accept-new-host-key',
        'a given package, as admin through sudo -n, trusting the host key on first use',
      ],
    ],
  },
  runs: {
    summary: 'List runs, quarantines and pauses on this host.',
    examples: [
      ['hostkit runs'],
      ['hostkit runs --verbose -o json', "with each run's planned changes and events"],
      ['hostkit runs -o markdown', 'a table, e.g. for an incident note'],
      ['sudo hostkit runs --prune --keep 20'],
      ['hostkit runs --target ssh://root@web-1 --target ssh://root@web-2', "two hosts' runs, under a heading each"],
    ],
  },
  rollback: {
    summary: 'Undo a run, or put a project on a kept release.',
    examples: [
      ['sudo hostkit rollback --last --dry-run', 'the down plan; change nothing'],
      ['sudo hostkit rollback --last', 'the files, units and the code (current) as before the run'],
      ['sudo hostkit rollback --run 20261129T2353', 'a run by a unique prefix of its id (hostkit runs)'],
      ['sudo hostkit rollback --last --with-data', "and the databases from the run's checkpoints (the data written since is lost)"],
      [
        'sudo hostkit rollback --repo /srv/config --project shop --to 20261207T101500Z-1a2b3c4d5e6f-b9c8',
        'a kept release (hostkit releases); held there until a commit changes its source or hostkit resume',
      ],
    ],
  },
  backups: {
    summary: "List each project's backups and snapshots.",
    examples: [
      ['sudo hostkit backups', 'every project: the last backup of its database and files, then its snapshots, newest first'],
      ['sudo hostkit backups --project shop -o json', 'snapshot ids, times and tags; the last and the last good backup of each part'],
    ],
  },
  'backups run': {
    summary: 'Back up a project now.',
    examples: [
      ['sudo hostkit backups run shop', 'its database (pg_dump) and its files into restic, then its retention'],
      ['sudo hostkit backups run shop --database', 'only the database'],
    ],
  },
  'backups restore': {
    summary: 'Restore a backup into a scratch copy, or the live database.',
    examples: [
      ['sudo hostkit backups restore shop --to-scratch', 'the newest database and files backups: tables and rows, file checksums, the time taken'],
      ['sudo hostkit backups restore shop --to-scratch --database --snapshot 4f2a9c1e', 'one snapshot (hostkit backups lists them)'],
      ['sudo hostkit backups restore shop --to-live --yes', 'replace the live database with the newest backup (the data it replaces is checkpointed first)'],
    ],
  },
  releases: {
    summary: "List each project's releases on this host.",
    examples: [
      ['hostkit releases', 'every project: newest first, * marks the current one'],
      ['hostkit releases --project shop -o json', 'full commit ids, build times and the run that switched to each'],
    ],
  },
  resume: {
    summary: 'Lift quarantines, pauses and release holds.',
    examples: [['sudo hostkit resume'], ['sudo hostkit resume --project shop'], ['sudo hostkit resume --commit 3872bbe']],
  },
  status: {
    summary: 'Show the host and each project, live.',
    examples: [
      ['hostkit status --repo /srv/config'],
      ['hostkit status --repo /srv/config --project shop -o json', 'read-only: drift from a dry run, no run lock (schema/status.schema.json)'],
      ['hostkit status --repo config --target ssh://root@web-1.example.com', 'a remote host, over SSH (README: Remote hosts over SSH)'],
      ['hostkit status --repo config --hosts env=prod -o json', 'every Host labelled env=prod: one object keyed by host'],
    ],
  },
  logs: {
    summary: "Print a project's journal, and nothing else's.",
    examples: [
      ['hostkit logs shop --repo /srv/config -n 50'],
      ['hostkit logs shop --repo /srv/config --unit worker/mailer -f', 'follow until Ctrl-C (exit 0)'],
      ['hostkit logs shop --repo /srv/config --unit lifecycle --since "1 hour ago" -o json'],
    ],
  },
  health: {
    summary: 'Run health checks now; exit 1 if any fails.',
    examples: [['hostkit health --repo /srv/config'], ['hostkit health shop --repo /srv/config --watch 5', 'again every 5 seconds until Ctrl-C']],
  },
};

/** The command's path below hostkit: 'hooks install'; '' for hostkit itself. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function examplesText(rows: Help['examples']): string {
  const width = Math.max(...rows.map(([line]) => line.length));
  return `\nExamples:\n${rows.map(([line, what]) => `  $ ${what ? `${line.padEnd(width)}  # ${what}` : line}`).join('\n')}`;
}

/** Give `cmd` and every command below it its summary and examples from HELP. */
export function addHelp(cmd: Command): void {
  const help = HELP[commandPath(cmd)];
  if (help?.summary) cmd.summary(help.summary);
  if (help) cmd.addHelpText('after', examplesText(help.examples));
  for (const sub of cmd.commands) addHelp(sub);
}
