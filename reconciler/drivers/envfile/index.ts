import { plainCredentials } from '../../core/credentials.js';
import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { describeRef } from '../../core/secrets.js';
import type { EnvFileSpec } from '../../core/specs.js';
import type { Driver, WithManifests } from '../types.js';
import {
  applyFile,
  observeFileResources,
  planFile,
  publishDigest,
  verifyFile,
  type DesiredFile,
  type FileUndo,
  type ManagedFileOp,
  type ObservedFile,
} from '../shared/managed-file.js';
import { fileRestore } from '../shared/undo.js';
import { redactEnvText, render, type EnvEntry } from './render.js';
import type { envFilePrimitive } from './manifest.js';
import { envFileDefinition } from './definition.js';

/** What apply does to an env file: write it (bytes with ownership), chown or chmod it, or remove it. */
export type EnvFileOp = ManagedFileOp;

// Environment files (KEY="value" lines) whose values may come from secret
// references. Secret values are resolved at plan time to compare bytes, and are
// shown only as a redaction marker with a fingerprint.
export const envFileDriver: Driver<EnvFileSpec, DesiredFile, ObservedFile, FileUndo, 'envfile', void, EnvFileOp> & WithManifests<typeof envFilePrimitive> = {
  ...envFileDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredFile; diagnostics: Diagnostic[] }>();
    await Promise.all(
      resources.map(async (r) => {
        const diagnostics: Diagnostic[] = [];
        const entries: EnvEntry[] = Object.entries(r.spec.environment).map(([key, value]) => ({ key, value, secret: false }));
        const secretKeys = new Set<string>();
        const pending: [string, Promise<{ ok: true; value: string } | { ok: false; reason: string }>, (v: string) => string][] = [];
        for (const [key, ref] of Object.entries(r.spec.secrets)) pending.push([key, ctx.secrets.resolve(ref), (v) => v]);
        for (const [key, d] of Object.entries(r.spec.derivedSecrets ?? {})) {
          pending.push([key, ctx.secrets.resolve(d.secret), (v) => d.template.replace('{secret}', encodeURIComponent(v))]);
        }
        for (const [key, promise, shape] of pending) {
          secretKeys.add(key);
          const result = await promise;
          if (!result.ok) {
            // A dry run can still show the rest of the plan; an apply must not write a partial file.
            const make = ctx.mode === 'plan' ? warning : error;
            diagnostics.push(make('secret unavailable', `${r.id}: ${key} comes from a secret that cannot be read: ${result.reason}`, r.origin));
            entries.push({ key, value: '', secret: true, unavailable: describeRef(r.spec.secrets[key] ?? r.spec.derivedSecrets![key]!.secret) });
            continue;
          }
          if (/[\r\n\0]/.test(result.value)) {
            diagnostics.push(
              error('invalid secret value', `${r.id}: the secret for ${key} contains a line break or NUL, which an environment file cannot hold`, r.origin),
            );
            continue;
          }
          entries.push({ key, value: shape(result.value), secret: true });
        }
        // The live file is shown only when HostKit wrote it (shared/owned.ts), from the spec it last
        // applied: the keys that spec held as secrets stay redacted even if this one declares them plain.
        const applied = ctx.inventory.resources[r.id]?.spec as Partial<EnvFileSpec> | undefined;
        for (const key of [...Object.keys(applied?.secrets ?? {}), ...Object.keys(applied?.derivedSecrets ?? {})]) secretKeys.add(key);
        const { content, display } = render(entries, ctx.secrets.fingerprint);
        const desired: DesiredFile = {
          path: r.spec.path,
          owner: r.spec.owner,
          group: r.spec.group,
          mode: r.spec.mode,
          content,
          display,
          redactObserved: (text) => redactEnvText(text, secretKeys, ctx.secrets.fingerprint),
        };
        publishDigest(ctx, desired, r.id);
        out.set(r.id, { desired, diagnostics });
      }),
    );
    return out;
  },

  observe: (resources, ctx) => observeFileResources(ctx, resources),

  plan({ resource, desired, observed, orphan }) {
    const secret =
      Object.keys(resource.spec.secrets).length > 0 ||
      Object.keys(resource.spec.derivedSecrets ?? {}).length > 0 ||
      plainCredentials(resource.spec.environment).length > 0;
    const change = planFile(resource, desired, observed, { orphan, secret });
    // The service reading this file restarts when it changes (systemd driver).
    change.disruptive = change.action !== 'noop';
    if (orphan && observed?.content) {
      // Without its manifest the secret keys are unknown: never show old values.
      change.fields = [];
    }
    return change;
  },

  // If this throws, the file still has its previous bytes (atomic rename).
  apply: (change, ctx) => applyFile(ctx.host, change, ctx),
  verify: (change, ctx) => verifyFile(ctx, change),
  // The previous bytes come back from the run journal; directories made for the file go again once empty.
  restore: fileRestore((change) => change.resource?.spec.path),
};
