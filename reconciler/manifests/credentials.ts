import { credentialReason } from '../core/credentials.js';
import { warning, type Diagnostic } from '../core/diagnostics.js';
import { pointerSegments, toPointer } from './source-map.js';
import type { Environment, Manifest, PrimitiveManifest, ProjectManifest } from './types.js';

// A credential written as a plain environment value is in git for whoever can
// read the repository. It is a warning, not an error (the name alone may
// mislead), that names the field and says how to write a reference; the value
// itself is never shown, only its length.
export function checkCredentials(manifests: readonly Manifest[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const m of manifests) {
    for (const { pointer, environment, secretsField } of environments(m)) {
      for (const [key, value] of Object.entries(environment ?? {})) {
        const reason = credentialReason(key, value);
        if (!reason) continue;
        const at = toPointer([...pointerSegments(pointer), key]);
        const owner = (m.value.metadata as { project?: string }).project ?? (m.kind === 'Project' ? m.name : undefined);
        out.push(warning('plain credential in environment', detail(at, key, String(value).length, reason, owner, secretsField), m.source.locate(at)));
      }
    }
  }
  return out;
}

/** Each `environment` mapping of a manifest, and where a reference for it belongs. */
function environments(m: Manifest): { pointer: string; environment: Environment | undefined; secretsField: string | undefined }[] {
  if (m.kind === 'Project') {
    const spec = (m.value as ProjectManifest).spec;
    return [
      { pointer: '/spec/service/environment', environment: spec.service?.environment, secretsField: 'spec.service.secrets' },
      ...(spec.workers ?? []).map((w, i) => ({
        pointer: `/spec/workers/${i}/environment`,
        environment: w.environment,
        secretsField: "spec.service.secrets (every worker reads the project's environment file)",
      })),
    ];
  }
  if (m.kind === 'EnvFile')
    return [{ pointer: '/spec/environment', environment: (m.value as PrimitiveManifest<'EnvFile'>).spec.environment, secretsField: 'spec.secrets' }];
  if (m.kind === 'Unit')
    return [{ pointer: '/spec/environment', environment: (m.value as PrimitiveManifest<'Unit'>).spec.environment, secretsField: undefined }];
  return [];
}

function detail(pointer: string, key: string, length: number, reason: string, owner: string | undefined, secretsField: string | undefined): string {
  const field = pointerSegments(pointer).join('.');
  // A project's secret files lie in its own folder of a secret root (README, "Who may change what").
  const file = `/etc/hostkit/secrets/${owner ? `${owner}/` : ''}${key.toLowerCase().replace(/_/g, '-')}`;
  const reference = `${key}: {file: ${file}}, {env: ${key}} (a variable of the agent the Host lists) or {age: "-----BEGIN AGE ENCRYPTED FILE-----..."}`;
  const where = secretsField
    ? `Move it to ${secretsField} as a reference: ${reference}`
    : `A Unit has no secrets: declare it as a reference in an EnvFile's spec.secrets (${reference}) and have the program read that file, or run it from a Project with spec.service.secrets`;
  return `${field} looks like a credential (${reason}) but is a plain value of ${length} characters (not shown), kept in git for anyone who can read the repository; plans show it redacted. ${where}.`;
}
