// What manifests expand into for this kind, defaults applied (a plan compares it with the host): an environment file: plain values and secret references.
import type { SecretRef } from '../../manifests/types.js';

export interface EnvFileSpec {
  path: string;
  owner: string;
  group: string;
  mode: number;
  /** Plain values, rendered as given. */
  environment: Record<string, string>;
  /** Values resolved from secret references at plan time; never shown. */
  secrets: Record<string, SecretRef>;
  /** Keys whose values come from elsewhere and must be redacted (e.g. a database URL). */
  derivedSecrets?: Record<string, { template: string; secret: SecretRef }>;
}
