// Bootstrap's steps 2-4, each printing one line: the package copied and
// installed, the configuration and secret files written, the agent enabled,
// started (or restarted to read what changed) and seen through its first run.
// A step that fails stops the run; the steps before it stay done, and running
// bootstrap again finishes the rest (each step sees what is there already).
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { writeJson } from '../apply/state-file.js';
import { AGENT_UNIT } from '../agent/unit.js';
import { HostKitError } from '../core/errors.js';
import { writeRootFile } from '../hosts/root-files.js';
import { describeExec, type Host } from '../hosts/types.js';
import { copyToHost } from './deb.js';
import { startAgent, type FirstRun } from './agent.js';
import { recordPath, unitState, type BootstrapRecord } from './observe.js';
import { packageName, secretsLine, type BootstrapInput, type BootstrapPlan } from './plan.js';

export interface ApplyOptions {
  /** How long the agent's first run may take before bootstrap gives up on it. */
  agentTimeoutMs: number;
  /** Scrubs secret values from text read off the host (apt's output, the agent's journal). */
  scrub: (text: string) => string;
  /** One line per step, as it ends. */
  line: (text: string) => void;
  /** Something the operator should know that does not stop the run. */
  warn: (text: string) => void;
}

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };
// A fresh VPS often runs unattended-upgrades at first boot: wait for its dpkg lock rather than fail.
const APT_LOCK = ['-o', 'DPkg::Lock::Timeout=300'];

/** Runs the plan's changes; returns the agent's first run when the agent was (re)started. */
export async function applyBootstrap(host: Host, input: BootstrapInput, plan: BootstrapPlan, o: ApplyOptions): Promise<FirstRun | undefined> {
  const before = await unitState(host);
  if (plan.package.install) o.line(await installPackage(host, input, plan, o));
  else o.line(`package: unchanged (${packageName(plan.package.deb)})`);

  if (plan.config.write) {
    await writeRootFile(host, plan.config.path, input.config.bytes);
    o.line(`config: wrote ${plan.config.path} (root, 0600)`);
  } else {
    o.line(`config: unchanged (${plan.config.path})`);
  }

  for (const step of plan.secrets.filter((s) => s.write)) await writeRootFile(host, step.path, input.secrets.get(step.path)!.value);
  o.line(secretsLine(plan.secrets, 'wrote'));

  const now = await unitState(host);
  // An upgrade's postinst restarts a running agent itself; a restart for new configuration or secrets is still owed.
  const restartedByPackage = before.activeState === 'active' && now.invocation !== before.invocation;
  const restart = plan.agent.restart && !(restartedByPackage && !plan.config.write && !plan.secrets.some((s) => s.write));
  if (!plan.agent.enable && !plan.agent.start && !restart && !restartedByPackage) {
    o.line(`agent: unchanged (${AGENT_UNIT} active, invocation ${now.invocation.slice(0, 12)})`);
    return undefined;
  }
  const first = await startAgent(host, { enable: plan.agent.enable, action: plan.agent.start ? 'start' : restart ? 'restart' : 'none' }, o);
  const did = [plan.agent.enable ? 'enabled' : '', plan.agent.start ? 'started' : restart ? 'restarted' : restartedByPackage ? 'restarted by the upgrade' : '']
    .filter(Boolean)
    .join(' and ');
  o.line(`agent: ${did} ${AGENT_UNIT} (invocation ${first.invocation.slice(0, 12)}); first run: ${first.summary}`);
  return first;
}

/**
 * Step 2. The .deb goes to a private directory under /var/tmp (removed
 * afterwards, also on failure), then `apt-get install ./FILE`, which brings
 * its dependencies from the host's apt sources. If apt fails, the host keeps
 * whatever HostKit version it had (dpkg's own guarantee) and no record is written.
 */
async function installPackage(host: Host, input: BootstrapInput, plan: BootstrapPlan, o: ApplyOptions): Promise<string> {
  const { deb, installed } = plan.package;
  const dir = `/var/tmp/hostkit-bootstrap-${randomBytes(8).toString('hex')}`;
  const remote = path.posix.join(dir, path.basename(deb.file).replace(/[^A-Za-z0-9._+~-]/g, '_'));
  const started = Date.now();
  // 0755: apt reads a local .deb as its unprivileged _apt user where it can.
  await host.mkdir(dir, { uid: 0, gid: 0, mode: 0o755 });
  try {
    await copyToHost(host, deb, remote, { uid: 0, gid: 0, mode: 0o644 });
    const copyMs = Date.now() - started;
    const update = await host.exec('apt-get', [...APT_LOCK, 'update'], { env: APT_ENV, timeoutMs: 300_000 });
    if (update.exitCode !== 0) {
      // A source that does not answer need not block the install: apt says so below if a dependency is then missing.
      o.warn(`apt-get update on ${host.name} failed; installing with the lists it has:\n${o.scrub(update.stderr.trim())}`);
    }
    const args = [...APT_LOCK, 'install', '-y', '--allow-downgrades', ...(installed === deb.version ? ['--reinstall'] : []), remote];
    const result = await host.exec('apt-get', args, { env: APT_ENV, timeoutMs: 900_000 });
    if (result.exitCode !== 0) {
      throw new HostKitError(
        'BOOTSTRAP_INSTALL_FAILED',
        `Installing ${packageName(deb)} on ${host.name} failed: ${o.scrub(describeExec('apt-get', args, result))}`,
        {
          data: { host: host.name, exitCode: result.exitCode },
          retryable: true,
        },
      );
    }
    const now = await host.exec('dpkg-query', ['-W', '-f=${db:Status-Abbrev}\t${Version}', 'hostkit']);
    if (!now.stdout.startsWith('ii') || now.stdout.split('\t')[1] !== deb.version) {
      throw new HostKitError(
        'BOOTSTRAP_INSTALL_FAILED',
        `apt-get installed ${deb.file} on ${host.name}, yet dpkg says: ${now.stdout.trim() || now.stderr.trim()}`,
        {
          data: { host: host.name },
        },
      );
    }
    const record: BootstrapRecord = {
      package: { name: deb.name, version: deb.version, architecture: deb.architecture, sha256: deb.sha256 },
      installedAt: new Date().toISOString(),
    };
    await writeJson(host, recordPath(input.config.parsed.stateDirectory), record);
    const over = installed ? (installed === deb.version ? ' again (other bytes of the same version)' : ` over ${installed}`) : '';
    return `package: installed ${packageName(deb)}${over}; ${(deb.bytes / 1e6).toFixed(1)} MB copied in ${(copyMs / 1000).toFixed(1)} s, installed in ${((Date.now() - started - copyMs) / 1000).toFixed(1)} s`;
  } finally {
    await host.remove(remote).catch(() => undefined);
    await host.remove(dir).catch(() => undefined);
  }
}
