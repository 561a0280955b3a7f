import { readFile } from 'node:fs/promises';
import type { ValidateFunction } from 'ajv';
import path from 'node:path';
import { DEFAULT_KEEP_RUNS } from '../apply/journal.js';
import { error, type Diagnostic } from '../core/diagnostics.js';
import { parseDuration } from '../core/duration.js';
import { parseManifest, toLoaded } from '../manifests/load.js';
import { createAjv, schemaDir } from '../manifests/schemas.js';
import { describeErrors } from '../manifests/validate.js';
import { NOTICE_KINDS, type NoticeKind } from '../notify/events.js';

/** The agent configuration with every default filled in (schema/agent.schema.json). */
export interface AgentConfig {
  /** The configuration file, for messages. */
  file: string;
  repository: { url: string; branch: string; sshKeyFile?: string };
  host: string;
  pollIntervalMs: number;
  webhook?: { host: string; port: number; secretFile: string };
  report: { enabled: boolean; branch: string; authorName: string; authorEmail: string };
  forge?: { type: 'github' | 'gitlab' | 'gitea'; tokenFile: string; baseUrl?: string; repository?: string; pullRequests: boolean };
  drift: { policy: 'report' | 'heal'; intervalMs: number };
  stateDirectory: string;
  /** Run journals kept after each apply. */
  keepRuns: number;
  logLevel: string;
  /** How long a run waits for the host's run lock. */
  lockTimeoutMs: number;
  /** Capped exponential back-off for retryable failures. */
  retry: RetryPolicy;
  hostMismatchOk: boolean;
  notifications?: NotificationsConfig;
}

export type NotificationChannelConfig =
  | { type: 'webhook'; url: string; secretFile: string }
  | { type: 'slack'; urlFile: string }
  | {
      type: 'email';
      host: string;
      port: number;
      security: 'none' | 'starttls' | 'tls';
      username?: string;
      passwordFile?: string;
      /** PEM CA certificate(s) the server's certificate must chain to, instead of the system's. */
      tlsCaFile?: string;
      from: string;
      to: string[];
    };

export interface NotificationsConfig {
  on: NoticeKind[];
  certificateExpiryDays: number;
  dedupeMs: number;
  maxPerHour: number;
  staleAfterMs: number;
  channels: NotificationChannelConfig[];
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialDelayMs: 2_000, maxDelayMs: 60_000 };

interface RawConfig {
  repository: { url: string; branch?: string; sshKeyFile?: string };
  host: string;
  pollInterval?: string;
  webhook?: { listen: string; secretFile: string };
  report?: { enabled?: boolean; branch?: string; authorName?: string; authorEmail?: string };
  forge?: { type?: 'github' | 'gitlab' | 'gitea'; tokenFile: string; baseUrl?: string; repository?: string; pullRequests?: boolean };
  drift?: { policy?: 'report' | 'heal'; interval?: string };
  stateDirectory?: string;
  keepRuns?: number;
  logLevel?: string;
  lockTimeout?: string;
  retry?: { attempts?: number; initialDelay?: string; maxDelay?: string };
  hostMismatchOk?: boolean;
  notifications?: {
    on?: NoticeKind[];
    certificateExpiryDays?: number;
    dedupe?: string;
    maxPerHour?: number;
    staleAfter?: string;
    channels: (
      | { type: 'webhook'; url: string; secretFile: string }
      | { type: 'slack'; urlFile: string }
      | {
          type: 'email';
          host: string;
          port?: number;
          security?: 'none' | 'starttls' | 'tls';
          username?: string;
          passwordFile?: string;
          tlsCaFile?: string;
          from: string;
          to: string[];
        }
    )[];
  };
}

export type ConfigResult = { ok: true; config: AgentConfig; diagnostics: Diagnostic[] } | { ok: false; diagnostics: Diagnostic[] };

let validator: Promise<ValidateFunction> | undefined;

async function agentValidator() {
  validator ??= (async () => {
    const ajv = await createAjv();
    const schema = JSON.parse(await readFile(path.join(schemaDir(), 'agent.schema.json'), 'utf8')) as object;
    return ajv.compile(schema);
  })();
  return validator;
}

/** Read and validate an agent configuration file; problems name file, line and field. */
export async function loadAgentConfig(file: string): Promise<ConfigResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    return { ok: false, diagnostics: [error('cannot read configuration', (cause as Error).message, { file })] };
  }
  return parseAgentConfig(file, bytes);
}

export async function parseAgentConfig(file: string, bytes: Uint8Array): Promise<ConfigResult> {
  const parsed = parseManifest({ file, bytes });
  if (parsed.diagnostics.length > 0) return { ok: false, diagnostics: parsed.diagnostics };
  if (parsed.documents.length !== 1) {
    return {
      ok: false,
      diagnostics: [error('one document expected', `the agent configuration must be one YAML or JSON document, found ${parsed.documents.length}`, { file })],
    };
  }
  const doc = toLoaded(parsed.documents[0]!);
  const validate = await agentValidator();
  if (!validate(doc.value)) return { ok: false, diagnostics: describeErrors(validate.errors ?? [], doc, doc.value) };
  const raw = doc.value as RawConfig;
  const diagnostics: Diagnostic[] = [];
  let webhook: AgentConfig['webhook'];
  if (raw.webhook) {
    const at = raw.webhook.listen.lastIndexOf(':');
    const port = Number(raw.webhook.listen.slice(at + 1));
    if (port > 65535) diagnostics.push(error('invalid port', `webhook.listen port ${port} is above 65535`, doc.locate('/webhook/listen')));
    webhook = { host: raw.webhook.listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port, secretFile: raw.webhook.secretFile };
  }
  const branch = raw.repository.branch ?? 'main';
  const report = {
    enabled: raw.report?.enabled ?? true,
    branch: raw.report?.branch ?? 'hostkit-status',
    authorName: raw.report?.authorName ?? 'HostKit agent',
    authorEmail: raw.report?.authorEmail ?? 'hostkit@localhost',
  };
  if (diagnostics.length > 0) return { ok: false, diagnostics };
  return {
    ok: true,
    diagnostics,
    config: {
      file,
      repository: { url: raw.repository.url, branch, ...(raw.repository.sshKeyFile ? { sshKeyFile: raw.repository.sshKeyFile } : {}) },
      host: raw.host,
      pollIntervalMs: parseDuration(raw.pollInterval ?? '60s')!,
      ...(webhook ? { webhook } : {}),
      report,
      ...(raw.forge ? { forge: { ...raw.forge, type: raw.forge.type ?? 'github', pullRequests: raw.forge.pullRequests ?? true } } : {}),
      drift: { policy: raw.drift?.policy ?? 'report', intervalMs: parseDuration(raw.drift?.interval ?? '5m')! },
      stateDirectory: raw.stateDirectory ?? '/var/lib/hostkit',
      keepRuns: raw.keepRuns ?? DEFAULT_KEEP_RUNS,
      logLevel: raw.logLevel ?? 'info',
      lockTimeoutMs: parseDuration(raw.lockTimeout ?? '10m')!,
      retry: {
        attempts: raw.retry?.attempts ?? DEFAULT_RETRY.attempts,
        initialDelayMs: raw.retry?.initialDelay ? parseDuration(raw.retry.initialDelay)! : DEFAULT_RETRY.initialDelayMs,
        maxDelayMs: raw.retry?.maxDelay ? parseDuration(raw.retry.maxDelay)! : DEFAULT_RETRY.maxDelayMs,
      },
      hostMismatchOk: raw.hostMismatchOk ?? false,
      ...(raw.notifications ? { notifications: notificationsConfig(raw.notifications) } : {}),
    },
  };
}

function notificationsConfig(raw: NonNullable<RawConfig['notifications']>): NotificationsConfig {
  return {
    on: raw.on ?? [...NOTICE_KINDS],
    certificateExpiryDays: raw.certificateExpiryDays ?? 14,
    dedupeMs: parseDuration(raw.dedupe ?? '24h')!,
    maxPerHour: raw.maxPerHour ?? 20,
    staleAfterMs: parseDuration(raw.staleAfter ?? '3h')!,
    // TLS from the first byte has its own port (465, RFC 8314); plain and STARTTLS use submission's.
    channels: raw.channels.map((c) =>
      c.type === 'email' ? { ...c, port: c.port ?? (c.security === 'tls' ? 465 : 587), security: c.security ?? 'starttls' } : c,
    ),
  };
}
