import { hasErrors, sortDiagnostics, type Diagnostic } from '../core/diagnostics.js';
import { loadRepository, parseFiles, type LoadOptions, type ManifestFile } from './load.js';
import { checkCredentials } from './credentials.js';
import { checkManifests } from './semantic.js';
import type { Manifest } from './types.js';
import { validateDocuments } from './validate.js';
import { checkValues } from './values.js';

export interface Repository {
  manifests: Manifest[];
  diagnostics: Diagnostic[];
  valid: boolean;
}

// load -> schema validation -> semantic checks. Semantic checks run only on a
// repository whose every document passed the schema, so they can trust types.
export async function validateFiles(files: readonly ManifestFile[]): Promise<Repository> {
  return finish(parseFiles(files));
}

export async function validateRepository(root: string, options: LoadOptions = {}): Promise<Repository> {
  return finish(await loadRepository(root, options));
}

async function finish(loaded: Awaited<ReturnType<typeof loadRepository>>): Promise<Repository> {
  const diagnostics = [...loaded.diagnostics];
  const { manifests, diagnostics: schemaDiagnostics } = await validateDocuments(loaded.documents);
  diagnostics.push(...schemaDiagnostics);
  if (!hasErrors(diagnostics)) diagnostics.push(...checkManifests(manifests), ...checkValues(manifests));
  // Schema-valid documents only, so it can trust types; a warning, shown beside any errors.
  diagnostics.push(...checkCredentials(manifests));
  return { manifests, diagnostics: sortDiagnostics(diagnostics), valid: !hasErrors(diagnostics) };
}
