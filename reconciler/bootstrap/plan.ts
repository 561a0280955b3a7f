// Bootstrap's plan: from what was asked and what the host has, which steps
// change something. Made before any change, so everything that would stop the
// run halfway (a package for another architecture, a secret nobody gave) stops
// it here instead; `--dry-run` prints this plan and stops.
import type { AgentConfig } from '../agent/config.js';
import { AGENT_UNIT } from '../agent/unit.js';
import { HostKitError } from '../core/errors.js';
import type { FileStat } from '../hosts/types.js';
import type { DebInfo } from './deb.js';
import { AGENT_CONFIG_PATH, type HostFacts, type Observed } from './observe.js';
import type { LocalSecret, NamedSecret } from './secrets.js';

export interface BootstrapInput {
  /** agent.yaml as given (written byte for byte) and as the agent's loader read it. */
  config: { file: string; bytes: Buffer; parsed: AgentConfig };
  deb: DebInfo;
  /** From --secret and --secrets, by host path. */
  secrets: ReadonlyMap<string, LocalSecret>;
  /** The secret files the configuration names. */
  named: readonly NamedSecret[];
}

export interface SecretStep {
  path: string;
  /** `file ./deploy_key`; undefined: named by the configuration, not given, and already on the host (kept). */
  from?: string;
  write: boolean;
}

export interface BootstrapPlan {
  facts: HostFacts;
  package: { install: boolean; deb: DebInfo; installed?: string };
  config: { path: string; write: boolean };
  secrets: SecretStep[];
  agent: { enable: boolean; start: boolean; restart: boolean };
}

const ROOT_ONLY = { uid: 0, gid: 0, mode: 0o600 };

function sameRootFile(stat: FileStat | undefined, bytes: Buffer | undefined, want: Buffer): boolean {
  return (
    stat?.type === 'file' &&
    stat.uid === ROOT_ONLY.uid &&
    stat.gid === ROOT_ONLY.gid &&
    stat.mode === ROOT_ONLY.mode &&
    bytes !== undefined &&
    bytes.equals(want)
  );
}

/** The steps; throws BOOTSTRAP_PACKAGE_INVALID or BOOTSTRAP_SECRET_MISSING when the run could not finish. */
export function planBootstrap(input: BootstrapInput, facts: HostFacts, observed: Observed): BootstrapPlan {
  const { deb } = input;
  if (deb.architecture !== facts.arch) {
    throw new HostKitError('BOOTSTRAP_PACKAGE_INVALID', `${deb.file} is built for ${deb.architecture}, and the host is ${facts.arch}. Nothing was changed`, {
      data: { file: deb.file, package: deb.architecture, host: facts.arch },
    });
  }
  if (input.secrets.has(AGENT_CONFIG_PATH)) {
    throw new HostKitError('BOOTSTRAP_SECRET_INVALID', `${AGENT_CONFIG_PATH} is written from --config, not from a --secret`, {
      data: { path: AGENT_CONFIG_PATH },
    });
  }
  const missing = input.named.filter((n) => !input.secrets.has(n.path) && observed.secrets.get(n.path) === undefined);
  if (missing.length > 0) {
    throw new HostKitError(
      'BOOTSTRAP_SECRET_MISSING',
      `${input.config.file} names secret files that are not on the host and that no --secret gives: ` +
        `${missing.map((m) => `${m.path} (${m.field})`).join(', ')}. Nothing was changed. ` +
        'Give each as --secret PATH=file:LOCAL_FILE or --secret PATH=env:VARIABLE',
      { data: { missing: missing.map((m) => m.path) } },
    );
  }
  const install = !(observed.installed === deb.version && observed.record?.package.sha256 === deb.sha256);
  const writeConfig = !sameRootFile(observed.config?.stat, observed.config?.bytes, input.config.bytes);
  const secrets: SecretStep[] = [
    ...[...input.secrets.values()].map((s) => {
      const there = observed.secrets.get(s.path);
      return { path: s.path, from: s.from, write: !sameRootFile(there?.stat, there?.bytes, s.value) };
    }),
    ...input.named.filter((n) => !input.secrets.has(n.path)).map((n) => ({ path: n.path, write: false })),
  ];
  const { unit } = observed;
  const active = unit.activeState === 'active';
  // The agent reads its configuration and secrets when it starts.
  const restart = active && (install || writeConfig || secrets.some((s) => s.write));
  return {
    facts,
    package: { install, deb, ...(observed.installed ? { installed: observed.installed } : {}) },
    config: { path: AGENT_CONFIG_PATH, write: writeConfig },
    secrets,
    agent: { enable: !unit.enabled, start: !active, restart },
  };
}

const MB = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The package as lines name it: `hostkit 0.1.0 (sha256 1a2b3c4d5e6f)`. */
export function packageName(deb: DebInfo): string {
  return `${deb.name} ${deb.version} (sha256 ${deb.sha256.slice(0, 12)})`;
}

export function hostLine(target: string, facts: HostFacts): string {
  return `host: checked ${target}: ${facts.os}, ${facts.arch}, HostKit runs as ${facts.user}`;
}

/** A secrets line: what was (or would be) written, then what stays. */
export function secretsLine(steps: readonly SecretStep[], wrote: string): string {
  if (steps.length === 0) return 'secrets: unchanged (none given or named)';
  const written = steps.filter((s) => s.write).map((s) => `${s.path} (${s.from})`);
  const kept = steps.filter((s) => !s.write).map((s) => (s.from ? s.path : `${s.path} (kept: on the host, no --secret)`));
  if (written.length === 0) return `secrets: unchanged (${kept.join(', ')})`;
  return `secrets: ${wrote} ${written.join(', ')}${kept.length > 0 ? `; unchanged ${kept.join(', ')}` : ''}`;
}

/** What --dry-run prints after the host line: one line per step. */
export function describePlan(plan: BootstrapPlan): string[] {
  const { deb } = plan.package;
  const over = plan.package.installed ? `over the installed ${plan.package.installed}` : 'where none is installed';
  const agent = plan.agent;
  return [
    plan.package.install
      ? `package: would copy ${deb.file} (${MB(deb.bytes)}) and install ${packageName(deb)} ${over}`
      : `package: unchanged (${packageName(deb)})`,
    plan.config.write ? `config: would write ${plan.config.path} (root, 0600)` : `config: unchanged (${plan.config.path})`,
    secretsLine(plan.secrets, 'would write'),
    agent.start || agent.enable || agent.restart
      ? `agent: would ${[agent.enable ? 'enable' : '', agent.start ? 'start' : agent.restart ? 'restart' : ''].filter(Boolean).join(' and ')} ${AGENT_UNIT}, then wait for its first run`
      : `agent: unchanged (${AGENT_UNIT} active)`,
  ];
}
