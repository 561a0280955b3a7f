import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ensureDirectory } from '../apply/state-file.js';
import type { Host } from '../hosts/types.js';
import type { SecretRef } from '../manifests/types.js';

export const REDACTED = '(redacted)';

export type SecretValue = { ok: true; value: string } | { ok: false; reason: string };

/** A short fingerprint of a secret (or of a file's bytes), for plans and drift reports; never the value. */
export type Fingerprint = (value: string | Buffer) => string;

/**
 * Fingerprints keyed by the host: HMAC-SHA-256 under a random key kept in the
 * host's state directory. The same secret on the same host always reads the same,
 * so plans and drift reports show whether it changed; but a plan posted on a pull
 * request or a report committed to git gives nobody a hash to test guesses of a
 * weak password against, as a plain hash would.
 */
export function fingerprinter(key: Buffer): Fingerprint {
  return (value) => `hmac:${createHmac('sha256', key).update(value).digest('hex').slice(0, 12)}`;
}

const KEY_BYTES = 32;

/** STATE/fingerprint.key: made by the first apply (root, 0600). */
export function fingerprintKeyPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'fingerprint.key');
}

/**
 * The host's fingerprint key, or a new one (`stored: false`) where there is none.
 * Where it cannot be read (a dry run as a user without root), a dry run also uses a
 * key of its own: within the plan a secret still reads the same on both sides, but
 * not as the host reports it. An apply that cannot read it fails.
 */
export async function loadFingerprintKey(host: Host, stateDirectory: string, mode: 'plan' | 'apply'): Promise<{ key: Buffer; stored: boolean }> {
  const existing = await host.readFile(fingerprintKeyPath(stateDirectory)).catch((cause: unknown) => {
    if (mode === 'apply') throw cause;
    return undefined;
  });
  if (existing && existing.length === KEY_BYTES) return { key: existing, stored: true };
  return { key: randomBytes(KEY_BYTES), stored: false };
}

/** Keep a new key on the host (root, 0600): the first apply does, once its plan holds no error. */
export async function storeFingerprintKey(host: Host, stateDirectory: string, key: Buffer): Promise<void> {
  await ensureDirectory(host, stateDirectory);
  await host.writeFile(fingerprintKeyPath(stateDirectory), key, { uid: 0, gid: 0, mode: 0o600 });
}

export function describeRef(ref: SecretRef): string {
  if ('file' in ref) return `file ${ref.file}`;
  if ('env' in ref) return `environment variable ${ref.env}`;
  return 'age-encrypted value';
}

// Every secret value resolved in a run is registered here, so any text leaving
// HostKit (plans, logs, reports, error messages) can be scrubbed of it: a last
// line of defence behind the drivers' own redaction.
/** The shortest line of a multi-line secret that is scrubbed on its own. */
const MIN_LINE = 8;

export class Redactor {
  private readonly values = new Set<string>();

  add(value: string): void {
    if (value.length < 4) return;
    this.values.add(value);
    // Text leaving HostKit may hold a value in pieces or escaped: a tool quoting one line of a key
    // (ssh, git), a JSON log field or report with the newlines as \n. Each line of a multi-line value
    // (a short one, such as a lone brace, says nothing) and its JSON-escaped form are scrubbed too.
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value) this.values.add(escaped);
    if (!/[\r\n]/.test(value)) return;
    for (const line of value.split(/\r?\n/)) {
      const trimmed = line.trim();
      if (trimmed.length >= MIN_LINE) this.values.add(trimmed);
    }
  }

  scrub(text: string): string {
    let out = text;
    // Longest first, so a value that contains another is removed whole.
    for (const value of [...this.values].sort((a, b) => b.length - a.length)) {
      if (out.includes(value)) out = out.split(value).join(REDACTED);
    }
    return out;
  }
}

export interface SecretResolverOptions {
  host: Host;
  redactor: Redactor;
  /** Environment the `env` references read (the agent's). */
  env?: NodeJS.ProcessEnv;
  /** Path on the host of the age identity file, if the host has one. */
  ageIdentityFile?: string;
  /** The host's fingerprint key (loadFingerprintKey); a key of this resolver's own when not given. */
  fingerprintKey?: Buffer;
}

// Resolves secret references once per run; values stay in memory only.
export class SecretResolver {
  private readonly cache = new Map<string, Promise<SecretValue>>();
  private readonly options: SecretResolverOptions;
  /** How secrets of this run are shown (keyed by the host: see fingerprinter). */
  readonly fingerprint: Fingerprint;

  constructor(options: SecretResolverOptions) {
    this.options = options;
    this.fingerprint = fingerprinter(options.fingerprintKey ?? randomBytes(KEY_BYTES));
  }

  /** `text` with every secret value resolved so far in this run replaced (build output, before it is logged). */
  scrub(text: string): string {
    return this.options.redactor.scrub(text);
  }

  resolve(ref: SecretRef): Promise<SecretValue> {
    const key = JSON.stringify(ref);
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.load(ref).then((result) => {
        if (result.ok) this.options.redactor.add(result.value);
        return result;
      });
      this.cache.set(key, pending);
    }
    return pending;
  }

  private async load(ref: SecretRef): Promise<SecretValue> {
    if ('file' in ref) {
      const bytes = await this.options.host.readFile(ref.file);
      if (!bytes) return { ok: false, reason: `secret file ${ref.file} does not exist on ${this.options.host.name}` };
      return { ok: true, value: bytes.toString('utf8').replace(/\r?\n$/, '') };
    }
    if ('env' in ref) {
      const value = (this.options.env ?? process.env)[ref.env];
      if (value === undefined) return { ok: false, reason: `environment variable ${ref.env} is not set for the agent` };
      return { ok: true, value };
    }
    if (!this.options.ageIdentityFile) return { ok: false, reason: 'the host has no age identity (spec.age.identityFile)' };
    const identity = await this.options.host.readFile(this.options.ageIdentityFile);
    if (!identity) return { ok: false, reason: `age identity ${this.options.ageIdentityFile} does not exist on ${this.options.host.name}` };
    try {
      const { Decrypter, armor } = await import('age-encryption');
      const decrypter = new Decrypter();
      for (const line of identity.toString('utf8').split('\n')) {
        if (line.startsWith('AGE-SECRET-KEY-')) decrypter.addIdentity(line.trim());
      }
      const value = await decrypter.decrypt(armor.decode(ref.age), 'text');
      return { ok: true, value: value.replace(/\r?\n$/, '') };
    } catch (cause) {
      return { ok: false, reason: `could not decrypt the age value with ${this.options.ageIdentityFile}: ${(cause as Error).message}` };
    }
  }
}
