import path from 'node:path';
import { HostKitError } from '../core/errors.js';
import type { Host } from '../hosts/types.js';
import { NODE_FLAGS } from '../core/runtime.js';
import { analyzeUnits } from '../drivers/shared/unit-files.js';

export interface AgentUnitOptions {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of dist/reconciler/cli.js. */
  cli: string;
  /** Absolute path of the agent configuration. */
  config: string;
  /** The Host manifest the agent reconciles; the packaged unit, built before any configuration exists, names none. */
  host?: string;
  stateDirectory: string;
  /** The unit's first comment: who wrote it and how to update it. */
  writtenBy?: string;
}

export const AGENT_UNIT = 'hostkit-agent.service';
const SAFE_PATH = /^\/[A-Za-z0-9._+@/-]+$/;

/** The agent's own unit. Paths are checked, not quoted: a unit file has no safe quoting for every character. */
export function renderAgentUnit(options: AgentUnitOptions): string {
  for (const [field, value] of Object.entries({ node: options.node, cli: options.cli, config: options.config, stateDirectory: options.stateDirectory })) {
    if (!SAFE_PATH.test(value) || value.includes('/../')) {
      throw new HostKitError('UNSAFE_UNIT_PATH', `Expected an absolute path of letters, digits and ._+@/- for ${field}, got ${JSON.stringify(value)}`, {
        data: { field, value },
      });
    }
  }
  return [
    `# ${options.writtenBy ?? 'Written by `hostkit agent install`; run it again to update.'}`,
    '[Unit]',
    `Description=HostKit agent${options.host ? ` for ${options.host}` : ''}`,
    'Documentation=https://hostkit.dev/agent',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${[options.node, ...NODE_FLAGS, options.cli].join(' ')} agent --config ${options.config}`,
    'Restart=on-failure',
    'RestartSec=5s',
    // SIGTERM lets a run in progress finish its apply (and rollback) before exit.
    'KillMode=mixed',
    'TimeoutStopSec=300',
    'Environment=NODE_ENV=production',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export interface InstallResult {
  unitPath: string;
  changed: boolean;
  warnings: string[];
}

/**
 * Write the unit (checked by `systemd-analyze verify` before it goes live),
 * reload systemd, and enable and (re)start the agent. If verify fails nothing
 * is installed and a unit already there keeps running.
 */
export async function installAgentUnit(host: Host, content: string, options: { unitDir?: string; start?: boolean } = {}): Promise<InstallResult> {
  const unitPath = path.posix.join(options.unitDir ?? '/etc/systemd/system', AGENT_UNIT);
  const before = await host.readFile(unitPath);
  const changed = before?.toString('utf8') !== content;
  const verified = await analyzeUnits(host, [{ unit: AGENT_UNIT, content }]);
  const warnings = verified.messages.get(AGENT_UNIT)!;
  if (!verified.ok) {
    throw new HostKitError(
      'UNIT_INVALID',
      `systemd-analyze verify rejected ${AGENT_UNIT}; nothing was installed:\n${warnings.join('\n') || verified.stderr.trim()}`,
    );
  }
  if (changed) await host.writeFile(unitPath, content, { uid: 0, gid: 0, mode: 0o644 });
  const run = async (args: string[]) => {
    const r = await host.exec('systemctl', args);
    if (r.exitCode !== 0) throw new HostKitError('SYSTEMCTL_FAILED', `systemctl ${args.join(' ')} failed: ${r.stderr.trim()}`);
  };
  if (changed) await run(['daemon-reload']);
  await run(['enable', '--quiet', AGENT_UNIT]);
  if (options.start !== false) await run([changed ? 'restart' : 'start', AGENT_UNIT]);
  return { unitPath, changed, warnings };
}
