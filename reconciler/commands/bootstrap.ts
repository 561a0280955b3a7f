// `hostkit bootstrap ssh://[user@]host[:port] --config agent.yaml`: a fresh
// Debian or Ubuntu host to a running agent over one SSH connection. Everything
// that can be checked here is checked before connecting (the configuration,
// the secret references and their values, the package); everything that can
// be checked on the host is checked before changing it (README: Bootstrap a host).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAgentConfig } from '../agent/config.js';
import { applyBootstrap } from '../bootstrap/apply.js';
import { PACKAGE_ARCHES, buildPackage, inspectDeb } from '../bootstrap/deb.js';
import { checkHost, observe } from '../bootstrap/observe.js';
import { describePlan, hostLine, planBootstrap, type BootstrapInput } from '../bootstrap/plan.js';
import { configSecretFiles, parseSecretRef, readSecretsFile, resolveSecrets } from '../bootstrap/secrets.js';
import { parseDuration } from '../core/duration.js';
import { HostKitError, errorMessage } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { formatSshTarget, openSshHost, parseSshTarget } from '../hosts/ssh.js';
import { note } from './quiet.js';

export interface BootstrapOptions {
  config: string;
  package?: string;
  /** REMOTE_PATH=file:LOCAL_PATH or REMOTE_PATH=env:VAR, repeatable. */
  secret?: string[];
  /** A file of such references, one a line. */
  secrets?: string;
  acceptNewHostKey?: boolean;
  sshConfig?: string;
  identity?: string;
  knownHosts?: string;
  /** Run as root through sudo -n; default: when the login named in the target is not root. */
  sudo?: boolean;
  dryRun?: boolean;
  /** How long to wait for the agent's first run (a duration: 5m). */
  agentTimeout?: string;
}

const DEFAULT_AGENT_TIMEOUT_MS = 5 * 60_000;

/** Exit 0 when the host is bootstrapped (or, with --dry-run, the plan was printed); failures throw or print and return 1. */
export async function bootstrap(targetText: string, opts: BootstrapOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const target = parseSshTarget(targetText);
  const agentTimeoutMs = opts.agentTimeout === undefined ? DEFAULT_AGENT_TIMEOUT_MS : parseDuration(opts.agentTimeout);
  if (agentTimeoutMs === undefined)
    throw new HostKitError('BAD_OPTION', `--agent-timeout expects a duration such as 90s or 5m, got ${JSON.stringify(opts.agentTimeout)}`);

  // Here, before connecting: the configuration as the agent will read it, the secrets' values, the package.
  let bytes: Buffer;
  try {
    bytes = await readFile(opts.config);
  } catch (cause) {
    throw new HostKitError('BAD_OPTION', `Could not read the agent configuration ${opts.config}: ${errorMessage(cause)}`, { cause });
  }
  const loaded = await parseAgentConfig(opts.config, bytes);
  if (!loaded.ok) {
    const style = useColor(process.stderr) ? COLOR : PLAIN;
    for (const d of loaded.diagnostics) process.stderr.write(renderDiagnostic(d, style) + '\n');
    process.stderr.write(`hostkit: error: the agent configuration ${opts.config} is invalid; nothing was changed.\n`);
    return 1;
  }
  const refs = [...(opts.secrets ? await readSecretsFile(opts.secrets) : []), ...(opts.secret ?? []).map((text) => parseSecretRef(text))];
  const secrets = await resolveSecrets(refs, env);
  const redactor = new Redactor();
  for (const s of secrets.values()) redactor.add(s.value.toString('utf8').trim());
  let deb = opts.package ? await inspectDeb(path.resolve(opts.package)) : undefined;

  const where = formatSshTarget(target);
  const host = await openSshHost({
    target,
    acceptNewHostKey: opts.acceptNewHostKey === true,
    sudo: opts.sudo ?? (target.user !== undefined && target.user !== 'root'),
    ...(opts.identity ? { identityFile: opts.identity } : {}),
    ...(opts.sshConfig ? { configFile: opts.sshConfig } : {}),
    ...(opts.knownHosts ? { knownHostsFile: opts.knownHosts } : {}),
  });
  const line = (text: string) => process.stdout.write(`${text}\n`);
  let done = false;
  try {
    const facts = await checkHost(host);
    line(hostLine(where, facts));
    deb ??= await buildPackage(PACKAGE_ARCHES[facts.arch]!, note);
    const input: BootstrapInput = { config: { file: opts.config, bytes, parsed: loaded.config }, deb, secrets, named: configSecretFiles(loaded.config) };
    const observed = await observe(host, {
      stateDirectory: loaded.config.stateDirectory,
      given: [...secrets.keys()],
      named: input.named.map((n) => n.path),
    });
    const plan = planBootstrap(input, facts, observed);
    if (opts.dryRun) {
      for (const text of describePlan(plan)) line(text);
      done = true;
      return 0;
    }
    await applyBootstrap(host, input, plan, { agentTimeoutMs, scrub: (text) => redactor.scrub(text), line, warn: note });
    done = true;
    return 0;
  } finally {
    // A close that fails (a write sent without waiting that the host did not make) fails a bootstrap that
    // got this far; one that failed already keeps its own error.
    if (done) await host.close();
    else await host.close().catch(() => undefined);
  }
}
