import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { Agent, displayUrl, type AgentForge } from '../agent/agent.js';
import { loadAgentConfig, type AgentConfig } from '../agent/config.js';
import { agentDrivers } from '../agent/drivers.js';
import { AgentMetrics } from '../agent/metrics.js';
import { installAgentUnit, renderAgentUnit } from '../agent/unit.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { readBackupHistories } from '../drivers/backup/job.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { Redactor } from '../core/secrets.js';
import { errorMessage } from '../core/errors.js';
import { RolloutGate } from '../fleet/agent-gate.js';
import { readFleetState, type FleetState } from '../fleet/reports.js';
import { setupNotifications } from '../notify/setup.js';
import { LocalHost } from '../hosts/local.js';
import type { Host } from '../hosts/types.js';
import { ReportWriter } from '../report/writeback.js';
import { GitSource } from '../sources/git.js';
import type { WebhookServer } from '../sources/webhook.js';
import { note } from './quiet.js';

async function config(file: string): Promise<AgentConfig | undefined> {
  const loaded = await loadAgentConfig(path.resolve(file));
  if (loaded.ok) return loaded.config;
  const style = useColor(process.stderr) ? COLOR : PLAIN;
  for (const d of loaded.diagnostics) process.stderr.write(renderDiagnostic(d, style) + '\n');
  process.stderr.write(`hostkit: error: the agent configuration ${file} is invalid; the agent did not start.\n`);
  return undefined;
}

// JSON lines on stdout (journald keeps them); pino-pretty when a person is watching.
async function agentLogger(level: string, redactor: Redactor): Promise<Logger> {
  const hooks = { streamWrite: (s: string) => redactor.scrub(s) };
  if (process.stdout.isTTY) {
    const pretty = (await import('pino-pretty')).default;
    return pino({ level, base: undefined, hooks }, pretty({ destination: 1, sync: true, colorize: useColor(process.stdout) }));
  }
  return pino({ level, base: undefined, hooks }, pino.destination({ dest: 1, sync: true }));
}

async function readSecretFile(file: string, what: string): Promise<Buffer> {
  try {
    const bytes = await readFile(file);
    const trimmed = Buffer.from(bytes.toString('utf8').replace(/\r?\n$/, ''));
    if (trimmed.length === 0) throw new Error('the file is empty');
    return trimmed;
  } catch (cause) {
    throw new Error(`Could not read the ${what} from ${file}: ${errorMessage(cause)}`, { cause });
  }
}

/** `hostkit agent --config FILE`: runs until SIGTERM or SIGINT. */
export async function runAgent(opts: { config: string }): Promise<number> {
  const cfg = await config(opts.config);
  if (!cfg) return 1;
  const redactor = new Redactor();
  const log = await agentLogger(cfg.logLevel, redactor);
  const assembled = await assembleAgent(cfg, { host: new LocalHost(), log, redactor });
  await assembled.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping; waiting for the run in progress');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await assembled.stop();
  return 0;
}

export interface AssembledAgent {
  agent: Agent;
  server?: WebhookServer;
  /** Start the loop and the notification checks. */
  start(): Promise<void>;
  /** Close the webhook server, stop the checks, and wait for the run in progress. */
  stop(): Promise<void>;
}

/**
 * The agent and its parts (git source, report writer, rollout gate, forge, webhook server) as one configuration
 * asks for them, not yet started; `host` is the machine itself (a re-rooted LocalHost in the simulated fleet).
 */
export async function assembleAgent(cfg: AgentConfig, opts: { host: Host; log: Logger; redactor: Redactor }): Promise<AssembledAgent> {
  const { host, log, redactor } = opts;
  const source = new GitSource({ ...cfg.repository, stateDirectory: cfg.stateDirectory, log });
  const metrics = new AgentMetrics(cfg.host);
  metrics.watchBackups(() => readBackupHistories(host, cfg.stateDirectory));
  const reports = cfg.report.enabled
    ? new ReportWriter({
        url: cfg.repository.url,
        branch: cfg.report.branch,
        dir: path.join(cfg.stateDirectory, 'reports'),
        ...(cfg.repository.sshKeyFile ? { sshKeyFile: cfg.repository.sshKeyFile } : {}),
        author: { name: cfg.report.authorName, email: cfg.report.authorEmail },
        log,
      })
    : undefined;
  let forge: AgentForge | undefined;
  if (cfg.forge) {
    const token = (await readSecretFile(cfg.forge.tokenFile, 'forge token')).toString('utf8');
    redactor.add(token);
    const mod = await import('../report/forge.js');
    const repo = cfg.forge.repository
      ? { owner: cfg.forge.repository.split('/')[0]!, repo: cfg.forge.repository.split('/')[1]! }
      : mod.parseForgeRepository(cfg.repository.url);
    if (!repo) throw new Error(`${cfg.file}: forge.repository: cannot derive owner/repo from ${displayUrl(cfg.repository.url)}; set forge.repository`);
    const forgeOptions = { token, ...repo, ...(cfg.forge.baseUrl ? { baseUrl: cfg.forge.baseUrl } : {}), log };
    if (cfg.forge.type === 'gitlab') forge = (await import('../report/forges.js')).createGitLabForge(forgeOptions);
    else if (cfg.forge.type === 'gitea') forge = (await import('../report/forges.js')).createGiteaForge(forgeOptions);
    else forge = mod.createForge(forgeOptions);
  }
  const notifications = cfg.notifications
    ? await setupNotifications({
        config: cfg.notifications,
        host: cfg.host,
        stateDirectory: cfg.stateDirectory,
        redactor,
        log,
        backups: () => readBackupHistories(host, cfg.stateDirectory),
        ...(reports ? { fleet: () => reportBranch(source, cfg.report.branch) } : {}),
      })
    : undefined;
  const agent = new Agent({
    config: cfg,
    host,
    source,
    log,
    metrics,
    redactor,
    ...(reports ? { reports } : {}),
    ...(forge ? { forge } : {}),
    drivers: agentDrivers(() => source.reachable(), displayUrl(cfg.repository.url)),
    ...(reports ? { rollout: new RolloutGate({ source, host: cfg.host, reportBranch: cfg.report.branch, log }) } : {}),
    ...(notifications ? { notify: notifications.onReport } : {}),
  });
  let server: WebhookServer | undefined;
  if (cfg.webhook) {
    const secret = await readSecretFile(cfg.webhook.secretFile, 'webhook secret');
    redactor.add(secret.toString('utf8'));
    const { startWebhookServer } = await import('../sources/webhook.js');
    server = await startWebhookServer({
      host: cfg.webhook.host,
      port: cfg.webhook.port,
      secret,
      onEvent: (event) => agent.onWebhook(event),
      metrics: () => metrics.expose(),
      health: () => agent.health(),
      onOutcome: (outcome) => metrics.webhookRequest(outcome.reason),
      log,
    });
    log.info({ url: server.url }, 'webhook server listening');
  }
  return {
    agent,
    ...(server ? { server } : {}),
    async start() {
      await agent.start();
      notifications?.start(cfg.drift.intervalMs);
    },
    async stop() {
      await server?.close();
      notifications?.stop();
      await agent.stop();
    },
  };
}

async function reportBranch(source: GitSource, branch: string): Promise<FleetState> {
  const tip = await source.fetchBranch(branch);
  return tip ? readFleetState(source.gitdir, tip) : { reports: new Map(), unreadable: [] };
}

/** `hostkit agent install --config FILE`: the agent's own systemd unit, verified, enabled and started. */
export async function installAgent(opts: { config: string; unitDir?: string; start?: boolean; print?: boolean }): Promise<number> {
  const cfg = await config(opts.config);
  if (!cfg) return 1;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const content = renderAgentUnit({
    node: process.execPath,
    cli: path.resolve(here, '../cli.js'),
    config: path.resolve(opts.config),
    host: cfg.host,
    stateDirectory: cfg.stateDirectory,
  });
  if (opts.print) {
    process.stdout.write(content);
    return 0;
  }
  const result = await installAgentUnit(new LocalHost(), content, { ...(opts.unitDir ? { unitDir: opts.unitDir } : {}), start: opts.start !== false });
  for (const w of result.warnings) note(`warning: ${w}`);
  process.stdout.write(
    `${result.changed ? 'Installed' : 'Unchanged:'} ${result.unitPath}; hostkit-agent.service is enabled${opts.start !== false ? ' and running' : ''}.\n`,
  );
  return 0;
}
