import { shownPlain } from '../../core/credentials.js';
import { REDACTED, type Fingerprint } from '../../core/secrets.js';

export const HEADER = '# Managed by HostKit: edits are overwritten on the next apply.\n';

// systemd EnvironmentFile syntax: KEY="value" with \ and " escaped.
// Values never contain line breaks (the schema and secret checks refuse them).
export function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

export interface EnvEntry {
  key: string;
  value: string;
  secret: boolean;
  /** Set when the secret could not be read (dry run only): shown instead of a fingerprint. */
  unavailable?: string;
}

export function render(entries: readonly EnvEntry[], fingerprint: Fingerprint): { content: string; display: string } {
  let content = HEADER;
  let display = HEADER;
  for (const e of entries) {
    content += `${e.key}=${quote(e.value)}\n`;
    display += e.unavailable
      ? `${e.key}=(secret unavailable: ${e.unavailable})\n`
      : e.secret
        ? `${e.key}=${REDACTED} ${fingerprint(e.value)}\n`
        : `${e.key}=${shownPlain(e.key, e.value, fingerprint) ?? quote(e.value)}\n`;
  }
  return { content, display };
}

/**
 * Show an env file found on the host with the values of secret keys replaced by
 * fingerprints, and plain values that look like credentials as render() shows them.
 */
export function redactEnvText(text: string, secretKeys: ReadonlySet<string>, fingerprint: Fingerprint): string {
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
      if (!m) return line;
      const value = unquote(m[2]!);
      if (secretKeys.has(m[1]!)) return `${m[1]}=${REDACTED} ${fingerprint(value)}`;
      const plain = shownPlain(m[1]!, value, fingerprint);
      return plain === undefined ? line : `${m[1]}=${plain}`;
    })
    .join('\n');
}
