import type { Fingerprint } from './secrets.js';

// A plain value in an `environment` mapping that is a credential by its name
// or by its shape. Validation warns about it (it is in git already), and no
// output of HostKit shows it: plans render it as `(plain value, N characters,
// redacted)` with a keyed fingerprint, and the run's redactor scrubs it from
// everything else it prints.

// Names that say "credential": *_KEY, *_TOKEN, *_SECRET, *_PASS, *_CREDENTIALS, *PASSWORD*.
const CREDENTIAL_NAME = [/PASSWORD|PASSWD/i, /(?:^|_)(?:KEY|TOKEN|SECRET|PASS|CREDENTIALS)$/i];
// Names of a place or of something public: DB_PASSWORD_FILE holds a path, a publishable key is meant to be seen.
const NOT_A_CREDENTIAL_NAME = /(?:_FILE|_PATH|_DIR|PUBLIC_KEY|PUBLISHABLE_KEY)$/i;

// Well-known token formats, whatever the name (each bounded and unnested: values are up to 4,096 characters).
const TOKEN_FORMATS: readonly [RegExp, string][] = [
  [/\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}/, 'a Stripe secret key'],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/, 'a GitHub token'],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/, 'a GitHub token'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'an AWS access key'],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----/, 'a PEM private key'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+/, 'a JSON Web Token'],
  [/\bAIza[0-9A-Za-z_-]{35}/, 'a Google API key'],
  [/^[A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/[^\s/:@]*:[^\s/@]+@/, 'a URL with a password'],
  [/(?:^|\s)password\s*=\s*[^\s'"]/i, 'a connection string with a password'],
];

/**
 * Why the plain environment value `value` of `key` looks like a credential (a short
 * phrase: "its name", "a Stripe secret key"), or undefined. Booleans and empty
 * values never are.
 */
export function credentialReason(key: string, value: unknown): string | undefined {
  if (typeof value === 'boolean' || value === null || value === undefined) return undefined;
  const text = String(value);
  if (text === '') return undefined;
  for (const [pattern, what] of TOKEN_FORMATS) if (pattern.test(text)) return `it looks like ${what}`;
  if (!NOT_A_CREDENTIAL_NAME.test(key) && CREDENTIAL_NAME.some((p) => p.test(key))) return `its name ${key} says so`;
  return undefined;
}

/** What HostKit shows of such a value: its length only. */
export function describePlain(value: string): string {
  return `(plain value, ${value.length} character${value.length === 1 ? '' : 's'}, redacted)`;
}

/** A plain value that looks like a credential as a plan shows it (its length and keyed fingerprint, so a change still shows); undefined for any other value. */
export function shownPlain(key: string, value: string, fingerprint: Fingerprint): string | undefined {
  return credentialReason(key, value) === undefined ? undefined : `${describePlain(value)} ${fingerprint(value)}`;
}

/** The values of `environment` that look like credentials. */
export function plainCredentials(environment: Readonly<Record<string, unknown>> | undefined): string[] {
  return Object.entries(environment ?? {})
    .filter(([key, value]) => credentialReason(key, value) !== undefined)
    .map(([, value]) => String(value));
}
