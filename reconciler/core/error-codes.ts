// Every code a HostKitError may carry: what it means and whether trying the
// same thing again can help (a remote that did not answer, a lock held, a
// server restarting) or cannot (bad input, a rejected configuration). The
// agent retries only what is retryable, with capped back-off, before a failure
// counts towards pausing a project or quarantining a commit. An error may
// override `retryable` where the cause decides (e.g. a refused connection vs a
// refused password); the README's error table is checked against this list.

export interface ErrorCodeInfo {
  meaning: string;
  retryable: boolean;
}

export const ERROR_CODES = {
  // The run and its state
  RUN_LOCKED: { meaning: 'another HostKit process holds the host-wide run lock past --lock-timeout', retryable: true },
  LOCK_FAILED: { meaning: 'the run lock could not be taken at all (flock missing, state directory unwritable)', retryable: false },
  HOST_MISMATCH: { meaning: 'the Host manifest does not name the machine the apply reaches (--host-mismatch-ok overrides)', retryable: false },
  HOSTNAME_UNKNOWN: { meaning: 'the managed host could not say its hostname', retryable: true },
  RUN_OPEN: { meaning: 'the run to roll back is still open (in progress, or interrupted)', retryable: true },
  RUN_NOT_FOUND: { meaning: 'no run matches the id given to rollback', retryable: false },
  INVENTORY_UNREADABLE: { meaning: "HostKit's inventory on the host cannot be parsed", retryable: false },
  PLAN_HAS_ERRORS: { meaning: 'a plan with errors was handed to apply', retryable: false },
  PLAN_STALE: {
    meaning: 'the saved plan given to reconcile --plan differs from a new plan (the host, the manifests or the commit changed since); nothing was applied',
    retryable: false,
  },
  PLAN_FILE_INVALID: {
    meaning: 'the saved plan file cannot be read, or is not a saved plan (not JSON, another format, fails schema/saved-plan.schema.json)',
    retryable: false,
  },
  PLAN_INCOMPATIBLE: { meaning: 'the saved plan was made by another HostKit version or saved-plan format', retryable: false },
  PLAN_WRONG_HOST: { meaning: 'the saved plan is for another host than the one the run targets', retryable: false },
  PLAN_NO_COMMIT: { meaning: 'plan --out on a repository with no git commit to name', retryable: false },
  UNKNOWN_HOST: { meaning: 'no Host manifest of that name in the repository', retryable: false },
  // Reaching the host
  EXEC_FAILED: { meaning: 'a command could not be started', retryable: false },
  EXEC_TIMED_OUT: { meaning: 'a command ran past its timeout; its process group got SIGTERM, then SIGKILL after a grace', retryable: true },
  COMMAND_TIMED_OUT: { meaning: 'a lifecycle, health or down command ran past its timeout and its transient unit was killed', retryable: false },
  EXEC_ON_REROOTED_HOST: { meaning: 'a command was asked of a host that is only a directory (testing)', retryable: false },
  CONNECT_ON_REROOTED_HOST: { meaning: 'a connection was asked of a host that is only a directory (testing)', retryable: false },
  COMMAND_FAILED: { meaning: 'a command HostKit needs exited non-zero', retryable: false },
  HOST_CONNECT_FAILED: { meaning: "a TCP connection to the host's port was refused or timed out", retryable: true },
  HOST_HTTP_FAILED: { meaning: 'no HTTP answer from the host in time', retryable: true },
  HOST_PATH_NOT_ABSOLUTE: { meaning: 'a host path was not absolute', retryable: false },
  HOST_PATH_LOOP: { meaning: 'a host path has too many symlinks', retryable: false },
  HOST_PATH_SYMLINK: {
    meaning: 'a path a manifest manages has a symlink among its directories, or is one: it is not read or written through it',
    retryable: false,
  },
  HOST_INVALID_OPTIONS: { meaning: 'a host transport was given invalid options', retryable: false },
  HOST_INVALID_PORT: { meaning: 'a port outside 1-65535 was asked for', retryable: false },
  HOST_INVALID_ADDRESS: { meaning: 'an address that is not an IP address was asked for', retryable: false },
  SSH_INVALID_TARGET: { meaning: 'an SSH target is not ssh://[user@]host[:port], user@host or a host name', retryable: false },
  SSH_CONNECT_FAILED: {
    meaning: 'the SSH connection could not be opened (unreachable, login refused) or ended while in use; a refused login is not retryable',
    retryable: true,
  },
  SSH_HOST_KEY_UNKNOWN: { meaning: "the SSH host's key is not in known_hosts (its fingerprint is shown); accept-new-host-key trusts it", retryable: false },
  SSH_HOST_KEY_CHANGED: { meaning: "the SSH host's key differs from the one in known_hosts (its fingerprint is shown): refused", retryable: false },
  SSH_REMOTE_HELPER_FAILED: { meaning: "HostKit's helper could not start on the SSH host (python3 missing, sudo -n refused) or failed", retryable: false },
  SSH_IDENTITY_UNAVAILABLE: {
    meaning: "a Host's spec.ssh.identityFile could not be resolved on the operator's machine (file unreadable, variable unset, age-encrypted)",
    retryable: false,
  },
  // Bootstrap (hostkit bootstrap)
  BOOTSTRAP_HOST_UNSUPPORTED: {
    meaning:
      'the bootstrap target is not a Debian or Ubuntu host with systemd on amd64 or arm64 where HostKit is root; every missing part is named, nothing was changed',
    retryable: false,
  },
  BOOTSTRAP_PACKAGE_INVALID: {
    meaning:
      "the package to bootstrap with is not a readable HostKit .deb, is for another architecture than the host's, or cannot be built here (pass --package)",
    retryable: false,
  },
  BOOTSTRAP_SECRET_INVALID: {
    meaning: 'a --secret reference is malformed or given twice, or its local file or environment variable is missing or empty',
    retryable: false,
  },
  BOOTSTRAP_SECRET_MISSING: {
    meaning: 'the agent configuration names a secret file that is not on the host and that no --secret gives; nothing was changed',
    retryable: false,
  },
  BOOTSTRAP_INSTALL_FAILED: {
    meaning: 'copying the package to the host or installing it with apt-get failed; the host keeps the HostKit it had',
    retryable: true,
  },
  BOOTSTRAP_AGENT_FAILED: {
    meaning: 'the agent did not start, stopped, or logged no first run in time; the message has its last journal lines',
    retryable: false,
  },
  UNKNOWN_USER: { meaning: 'a user named by a resource does not exist on the host', retryable: false },
  UNKNOWN_GROUP: { meaning: 'a group named by a resource does not exist on the host', retryable: false },
  // systemd
  UNIT_INVALID: { meaning: 'systemd-analyze verify rejected a unit; it was not installed', retryable: false },
  UNIT_START_FAILED: { meaning: 'a unit failed to start or did not stay active', retryable: false },
  SYSTEMD_UNSAFE_PROGRAM: {
    meaning: "a command's program (argv[0]) could be read as a systemd Exec prefix or is not a plain path or name; nothing was rendered or run",
    retryable: false,
  },
  UNSAFE_UNIT_PATH: { meaning: 'a unit path outside /etc/systemd/system was asked for', retryable: false },
  SYSTEMCTL_FAILED: { meaning: 'a systemctl call failed', retryable: false },
  SYSTEMCTL_SHOW_FAILED: { meaning: 'systemctl show could not read unit states', retryable: true },
  SYSTEMCTL_LIST_FAILED: { meaning: 'systemctl list-units could not read unit states', retryable: true },
  PACKAGE_NOT_FOUND: {
    meaning: "a declared package is in none of the host's apt sources (or not at the pinned version); nothing was installed",
    retryable: false,
  },
  PACKAGE_INSTALL_FAILED: {
    meaning: 'apt-get update or install failed (the dpkg lock held past its timeout, a mirror unreachable, a package script failing)',
    retryable: true,
  },
  LIFECYCLE_COMMAND_FAILED: { meaning: "a project's lifecycle command exited non-zero or timed out", retryable: false },
  // Releases
  RELEASE_BUILD_FAILED: {
    meaning: 'a release was not built (its source not exported, a build step failed or timed out); the previous release keeps serving',
    retryable: false,
  },
  RELEASE_CREDENTIALS_UNAVAILABLE: { meaning: "a source's sshKey or token secret reference cannot be resolved", retryable: false },
  // nginx and certificates
  NGINX_CONFIG_INVALID: { meaning: 'nginx -t rejected the configuration; nginx was not reloaded', retryable: false },
  NGINX_RELOAD_FAILED: { meaning: 'systemctl reload-or-restart nginx failed', retryable: true },
  NGINX_RELOAD_REJECTED: { meaning: 'nginx did not take the new configuration after a reload', retryable: true },
  DEPLOY_UNHEALTHY: { meaning: 'blue-green: the new instance failed its health check on its own port; nginx was not switched to it', retryable: false },
  DEPLOY_NO_RELEASE: { meaning: "blue-green: the project's current link points to no release for the new instance to run", retryable: false },
  ACME_CA_MISSING: { meaning: 'the ACME CA file the Host names does not exist', retryable: false },
  ACME_CHALLENGE_UNSUPPORTED: { meaning: 'the ACME server offered no HTTP-01 challenge', retryable: false },
  ACME_CHALLENGE_NOT_SERVED: { meaning: 'nginx does not serve the HTTP-01 token', retryable: true },
  CERT_NOT_SERVED: { meaning: 'nginx does not serve the new certificate yet', retryable: true },
  SELF_SIGNED_FAILED: { meaning: 'openssl could not make a self-signed certificate', retryable: false },
  // Login access (accounts)
  SUDOERS_REFUSED: { meaning: "visudo -cf refused an account's sudo rules; nothing was installed", retryable: false },
  VISUDO_MISSING: {
    meaning: 'an account has sudo rules and visudo cannot run on the host (the package sudo is missing); nothing was installed',
    retryable: false,
  },
  LOGIN_HOME_UNSAFE: {
    meaning: "an account's home is not safe for sshd (StrictModes: owned by another user, or group- or world-writable); no key was written",
    retryable: false,
  },
  // nftables
  FIREWALL_NOT_CONFIRMED: { meaning: 'the new firewall table failed its confirm check; the previous one is restored', retryable: true },
  FIREWALL_UNSAFE_VALUE: { meaning: 'a firewall value failed the driver-side check before rendering', retryable: false },
  FIREWALL_INVALID_INPUT: { meaning: 'a firewall value is not of the expected form', retryable: false },
  NFT_OUTPUT_UNEXPECTED: { meaning: 'nft printed something HostKit cannot parse', retryable: false },
  // PostgreSQL
  PG_ACCESS_FAILED: {
    meaning:
      "HostKit's PostgreSQL admin access (its peer map for root) could not be set up or did not let root log in; pg_hba.conf and pg_ident.conf were put back",
    retryable: false,
  },
  PG_CONNECT_FAILED: { meaning: 'the PostgreSQL admin connection failed (retryable unless the server refused the login)', retryable: true },
  PG_SOCKET_UNREACHABLE: { meaning: "PostgreSQL's Unix socket cannot be reached from where HostKit runs", retryable: false },
  PG_ADMIN_SECRET_UNAVAILABLE: { meaning: "the admin connection's password reference cannot be resolved", retryable: false },
  PG_STATEMENT_FAILED: { meaning: 'PostgreSQL rejected a statement (retryable for lock and serialization conflicts)', retryable: false },
  PG_ROLE_GONE: { meaning: 'a role vanished between plan and apply; plan again', retryable: true },
  PG_DATABASE_GONE: { meaning: 'a database vanished between plan and apply; plan again', retryable: true },
  PG_DROP_IRREVERSIBLE: { meaning: 'a dropped database cannot be rolled back', retryable: false },
  PG_PLAINTEXT_PASSWORD: { meaning: 'a password would have been sent in plaintext', retryable: false },
  PG_INVALID_VALUE: { meaning: 'a PostgreSQL value failed the driver-side check', retryable: false },
  PG_EMPTY_ALTER: { meaning: 'an ALTER ROLE with nothing to change was asked for', retryable: false },
  // git, reports, forge
  GIT_FETCH_FAILED: { meaning: 'the git remote did not answer or refused the fetch', retryable: true },
  PR_FETCH_FAILED: { meaning: "a pull request's head could not be fetched", retryable: true },
  NOT_A_GIT_REPOSITORY: { meaning: 'the directory is not a git repository', retryable: false },
  REPO_NOT_FOUND: { meaning: 'the repository directory does not exist', retryable: false },
  BAD_COMMIT: { meaning: 'a commit id is not 40 hex digits', retryable: false },
  BAD_KEY_PATH: { meaning: 'the ssh key path has characters HostKit does not pass to git', retryable: false },
  BAD_REPORT_PATH: { meaning: 'a report path outside status/ and drift/ was asked for', retryable: false },
  REPORT_PUSH_FAILED: { meaning: 'the status report could not be pushed', retryable: true },
  FLEET_NO_ORIGIN: { meaning: 'hostkit fleet was given a clone without an origin remote (it reads the shared repository)', retryable: false },
  ROLLOUT_INVALID: { meaning: 'the rollout policy (.hostkit/rollout.yaml) at the branch head is invalid', retryable: false },
  NOTIFY_FAILED: { meaning: 'a notification channel (webhook, Slack, SMTP) did not take a notice', retryable: true },
  FORGE_CONFIG: { meaning: 'the forge settings are incomplete', retryable: false },
  FORGE_API: { meaning: 'the forge API answered with an error (retryable for 5xx and 429)', retryable: true },
  FORGE_UNREACHABLE: { meaning: 'the forge API did not answer', retryable: true },
  HOOKS_NOT_FOUND: { meaning: "the repository's hooks directory cannot be found", retryable: false },
  HOOK_EXISTS: { meaning: 'a git hook HostKit did not install is in the way (--force keeps it as a backup)', retryable: false },
  INIT_WOULD_OVERWRITE: {
    meaning: 'hostkit init found files it would write already there (or its directory is a file); nothing was written',
    retryable: false,
  },
  BAD_OPTION: { meaning: 'a command-line option has a value of the wrong form', retryable: false },
  WATCH_NEEDS_DRY_RUN: { meaning: '--watch was given without --dry-run', retryable: false },
  RELEASE_NOT_KEPT: { meaning: '`rollback --to` names no complete release of the project on the host (the error lists those it has)', retryable: false },
  RELEASE_NO_SOURCE: { meaning: '`rollback --to` names a project without spec.source: it has no releases', retryable: false },
  RELEASE_NOT_SWITCHED: { meaning: "`rollback --to`'s run did not leave the project on the release asked for; its hold was removed", retryable: false },
  UNKNOWN_PROJECT: { meaning: 'no project of that name is placed on the host', retryable: false },
  UNKNOWN_UNIT: { meaning: '--unit names nothing the project declares (the error lists what it does)', retryable: false },
  JOURNAL_READ_FAILED: { meaning: 'journalctl could not read the journal (e.g. a --since it cannot parse)', retryable: false },
  // release sources
  SOURCE_UNREACHABLE: { meaning: "a project's source (git repository or archive) could not be reached or fetched", retryable: true },
  SOURCE_REF_UNKNOWN: { meaning: "a git source's ref is not a commit, tag or branch of the repository (or the commit is not cached)", retryable: false },
  SOURCE_AUTH_FAILED: { meaning: "a git source refused the project's credentials (token, deploy key) or its ssh host key changed", retryable: false },
  SOURCE_PATH_NOT_ALLOWED: {
    meaning: "a source URL is a local path outside the Host's allowedRoots, or a form HostKit does not pass on (an option, a password in the URL)",
    retryable: false,
  },
  SOURCE_SUBDIRECTORY_UNKNOWN: { meaning: "a git source's subdirectory is not a directory of the commit", retryable: false },
  SOURCE_DESTINATION_NOT_EMPTY: { meaning: 'a release directory to export or unpack a source into is not empty; nothing was written', retryable: false },
  ARCHIVE_DIGEST_MISMATCH: { meaning: "an archive's sha256 is not the one the manifest names; nothing was unpacked", retryable: false },
  ARCHIVE_UNSAFE: {
    meaning: 'an archive holds an absolute path, "..", a device file or fifo, or a link out of the release; nothing was unpacked',
    retryable: false,
  },
  ARCHIVE_FORMAT: { meaning: 'an archive is not a readable .tar.gz, .tar.zst or .zip', retryable: false },
  // Backups
  BACKUP_FAILED: {
    meaning: 'a backup, checkpoint, restore or retention step failed (restic or the dump exited non-zero); the message has their output, redacted',
    retryable: false,
  },
  BACKUP_REPOSITORY_UNAVAILABLE: { meaning: "the host's backup repository could not be reached or opened", retryable: true },
  // test harness only
  TEST_HOST_INVALID_OPTIONS: { meaning: 'a test host was asked for with invalid options', retryable: false },
  TEST_HOST_BOOT_FAILED: { meaning: 'a test host did not boot', retryable: false },
  TEST_HOST_EXEC_FAILED: { meaning: 'a command inside a test host exited non-zero', retryable: false },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether an error of this code is worth trying again (unknown codes: no). */
export function retryableCode(code: string): boolean {
  return (ERROR_CODES as Record<string, ErrorCodeInfo>)[code]?.retryable ?? false;
}
