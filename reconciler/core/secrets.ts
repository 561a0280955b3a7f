import { createHash } from 'node:crypto';
import type { Host } from '../hosts/types.js';
import type { SecretRef } from '../manifests/types.js';

export const REDACTED = '(redacted)';

export type SecretValue = { ok: true; value: string } | { ok: false; reason: string };

/** A short, stable fingerprint of a secret for drift reports; never the value. */
export function secretFingerprint(value: string): string {
  return `sha256:${createHash('sha256').update('hostkit-secret\0').update(value).digest('hex').slice(0, 12)}`;
}

export function describeRef(ref: SecretRef): string {
  if ('file' in ref) return `file ${ref.file}`;
  if ('env' in ref) return `environment variable ${ref.env}`;
  return 'age-encrypted value';
}

// Every secret value resolved in a run is registered here, so any text leaving
// HostKit (plans, logs, reports, error messages) can be scrubbed of it: a last
// line of defence behind the drivers' own redaction.
export class Redactor {
  private readonly values = new Set<string>();

  add(value: string): void {
    if (value.length >= 4) this.values.add(value);
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
}

// Resolves secret references once per run; values stay in memory only.
export class SecretResolver {
  private readonly cache = new Map<string, Promise<SecretValue>>();
  private readonly options: SecretResolverOptions;

  constructor(options: SecretResolverOptions) {
    this.options = options;
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
