// The secret files bootstrap writes on the host, from references on this
// machine: `REMOTE_PATH=file:LOCAL_PATH` (the file's bytes) or
// `REMOTE_PATH=env:VAR` (the variable's value and a newline), given with
// --secret or, one a line, in a --secrets file, as Kamal's .kamal/secrets holds
// references that are safe to commit. Values are read here before anything
// on the host changes, and are never printed.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentConfig } from '../agent/config.js';
import { HostKitError, errorMessage } from '../core/errors.js';

export interface SecretRef {
  /** Absolute path on the host. */
  path: string;
  source: { file: string } | { env: string };
  /** Where the reference was given, for messages: `--secret` or `FILE:LINE`. */
  origin: string;
}

/** A resolved reference: the bytes to write, and what to say instead of them. */
export interface LocalSecret {
  path: string;
  value: Buffer;
  /** `file ./deploy_key` or `env DEPLOY_KEY`. */
  from: string;
}

/** A secret file the agent configuration names, and the field naming it. */
export interface NamedSecret {
  path: string;
  field: string;
}

const REF = /^(\/[^=\s]*)=(file|env):(.+)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function invalidRef(origin: string, text: string, why: string): HostKitError {
  return new HostKitError(
    'BOOTSTRAP_SECRET_INVALID',
    `${origin}: expected REMOTE_PATH=file:LOCAL_PATH or REMOTE_PATH=env:VAR, got ${JSON.stringify(text)}: ${why}`,
    {
      data: { origin },
    },
  );
}

/** One reference; relative file paths resolve against `baseDir` (a --secrets file's folder, else the working directory). */
export function parseSecretRef(text: string, origin = '--secret', baseDir = process.cwd()): SecretRef {
  const m = REF.exec(text.trim());
  if (!m) throw invalidRef(origin, text, 'no absolute remote path, "=" and file: or env:');
  const [remote, kind, value] = [m[1]!, m[2] as 'file' | 'env', m[3]!];
  if (path.posix.normalize(remote) !== remote || remote.endsWith('/')) throw invalidRef(origin, text, `${remote} is not a normalized file path`);
  if (kind === 'env' && !ENV_NAME.test(value)) throw invalidRef(origin, text, `${value} is not an environment variable name`);
  return { path: remote, source: kind === 'file' ? { file: path.resolve(baseDir, value) } : { env: value }, origin };
}

/** The references of a --secrets file: one a line, `#` comments and blank lines skipped. */
export async function readSecretsFile(file: string): Promise<SecretRef[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new HostKitError('BOOTSTRAP_SECRET_INVALID', `Could not read the secrets file ${file}: ${errorMessage(cause)}`, { data: { file }, cause });
  }
  const refs: SecretRef[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    refs.push(parseSecretRef(line, `${file}:${i + 1}`, path.dirname(path.resolve(file))));
  });
  return refs;
}

/**
 * Reads every reference's value on this machine. A path given twice, an unset
 * or empty variable, or a missing or empty file is BOOTSTRAP_SECRET_INVALID,
 * naming the reference and never a value.
 */
export async function resolveSecrets(refs: readonly SecretRef[], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, LocalSecret>> {
  const out = new Map<string, LocalSecret>();
  for (const ref of refs) {
    if (out.has(ref.path))
      throw new HostKitError('BOOTSTRAP_SECRET_INVALID', `${ref.origin}: ${ref.path} is given more than once`, { data: { path: ref.path } });
    const fail = (why: string, cause?: unknown) =>
      new HostKitError('BOOTSTRAP_SECRET_INVALID', `${ref.origin}: the secret for ${ref.path} ${why}`, {
        data: { path: ref.path },
        ...(cause !== undefined ? { cause } : {}),
      });
    let value: Buffer;
    let from: string;
    if ('env' in ref.source) {
      const text = env[ref.source.env];
      if (!text) throw fail(`comes from the environment variable ${ref.source.env}, which is ${text === undefined ? 'not set' : 'empty'}`);
      // As `echo "$VAR" > FILE` writes it: HostKit reads secret files without their last newline.
      value = Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
      from = `env ${ref.source.env}`;
    } else {
      try {
        value = await readFile(ref.source.file);
      } catch (cause) {
        throw fail(`comes from ${ref.source.file}, which cannot be read (${errorMessage(cause)})`, cause);
      }
      if (value.length === 0) throw fail(`comes from ${ref.source.file}, which is empty`);
      const relative = path.relative(process.cwd(), ref.source.file);
      from = `file ${relative && !relative.startsWith('..') ? relative : ref.source.file}`;
    }
    out.set(ref.path, { path: ref.path, value, from });
  }
  return out;
}

/** Every secret file the agent configuration names (schema/agent.schema.json): these must exist on the host. */
export function configSecretFiles(config: AgentConfig): NamedSecret[] {
  const named: NamedSecret[] = [];
  if (config.repository.sshKeyFile) named.push({ path: config.repository.sshKeyFile, field: 'repository.sshKeyFile' });
  if (config.webhook) named.push({ path: config.webhook.secretFile, field: 'webhook.secretFile' });
  if (config.forge) named.push({ path: config.forge.tokenFile, field: 'forge.tokenFile' });
  config.notifications?.channels.forEach((c, i) => {
    const at = `notifications.channels[${i}]`;
    if (c.type === 'webhook') named.push({ path: c.secretFile, field: `${at}.secretFile` });
    else if (c.type === 'slack') named.push({ path: c.urlFile, field: `${at}.urlFile` });
    else if (c.passwordFile) named.push({ path: c.passwordFile, field: `${at}.passwordFile` });
  });
  return named;
}
