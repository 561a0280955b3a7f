import type { ErrorObject } from 'ajv';
import { credentialReason } from '../core/credentials.js';
import { error, type Diagnostic } from '../core/diagnostics.js';
import { SYSTEMD_EXEC_PREFIX } from '../core/strict-values.js';
import type { LoadedDocument } from './load.js';
import { validators } from './schemas.js';
import { pointerSegments, toPointer } from './source-map.js';
import { PRIMITIVE_KINDS } from './primitives.js';
import type { AnyManifest, Manifest, ManifestKind } from './types.js';

const KINDS: readonly ManifestKind[] = ['Host', 'Project', ...PRIMITIVE_KINDS];

export interface ValidationResult {
  manifests: Manifest[];
  diagnostics: Diagnostic[];
}

// Schema validation of every document; documents that fail are dropped from
// the result so later stages only ever see well-formed manifests.
export async function validateDocuments(documents: readonly LoadedDocument[]): Promise<ValidationResult> {
  const manifests: Manifest[] = [];
  const diagnostics: Diagnostic[] = [];
  const compiled = await validators();
  for (const doc of documents) {
    const value = doc.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      diagnostics.push(error('not a manifest', 'a manifest is a mapping with apiVersion, kind, metadata and spec', doc.locate('')));
      continue;
    }
    const kind = (value as { kind?: unknown }).kind;
    if (kind === undefined) {
      diagnostics.push(error('missing required field', `"kind" is required: one of ${KINDS.join(', ')}`, doc.locate('')));
      continue;
    }
    if (typeof kind !== 'string' || !KINDS.includes(kind as ManifestKind)) {
      diagnostics.push(error('unknown kind', `kind ${show(kind)} is not one of ${KINDS.join(', ')}`, doc.locate('/kind')));
      continue;
    }
    const validate = compiled.get(kind as ManifestKind)!;
    const valid = validate(value);
    const schemaErrors = valid ? [] : describeErrors(validate.errors ?? [], doc, value);
    const numberErrors = numberDiagnostics(doc, schemaErrors);
    if (!valid || numberErrors.length > 0) {
      diagnostics.push(...schemaErrors, ...numberErrors);
      continue;
    }
    const manifest = value as AnyManifest;
    manifests.push({ kind: manifest.kind, name: manifest.metadata.name, value: manifest, source: doc });
  }
  return { manifests, diagnostics };
}

// A number written as 0x16, 0o26, 026, 22.0 or 1e3 passes an integer schema as
// the value YAML made of it; refuse it where the schema did not already speak.
function numberDiagnostics(doc: LoadedDocument, schemaErrors: readonly Diagnostic[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const [pointer, source] of Object.entries(doc.numbers ?? {})) {
    if (schemaErrors.some((d) => d.location?.pointer === pointer)) continue;
    const value = valueAt(doc.value, pointer);
    const shown = plainCredentialShown(pointer, value)
      ? `a number of ${source.length} characters (not shown: ${HOW_TO_REFER})`
      : `${source}, which YAML reads as ${show(value)}`;
    out.push(
      error(
        'number not in plain decimal',
        `${fieldName(pointer)} is written ${shown}; write numbers in plain decimal (a port as 22, not 0x16, 026 or 22.0), or quote the value if it is text`,
        doc.locate(pointer),
      ),
    );
  }
  return out;
}

// Named schema definitions give a more useful summary than the keyword alone.
const DEF_SUMMARIES: Record<string, string> = {
  name: 'invalid name',
  domain: 'invalid domain name',
  absolutePath: 'invalid path',
  urlPath: 'invalid URL path',
  fileName: 'invalid file name',
  userName: 'invalid user name',
  envName: 'invalid environment variable name',
  envValue: 'invalid environment value',
  command: 'invalid command',
  cidr: 'invalid CIDR',
  mode: 'invalid mode',
  size: 'invalid size',
  percent: 'invalid percentage',
  duration: 'invalid duration',
  pgName: 'invalid PostgreSQL name',
  labels: 'invalid label',
  apiVersion: 'unsupported apiVersion',
  secretRef: 'invalid secret reference',
  schedule: 'invalid schedule',
  text: 'invalid text',
  email: 'invalid email address',
  reference: 'invalid reference',
  hostAddress: 'invalid address',
  realm: 'invalid realm',
  environment: 'invalid environment variable name',
  secrets: 'invalid environment variable name',
};

// Keywords for which the named definition says more than the keyword does.
const DEF_KEYWORDS = new Set([
  'pattern',
  'format',
  'propertyNames',
  'enum',
  'const',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'minProperties',
  'maxProperties',
]);

function defName(schemaPath: string): string | undefined {
  const match = /\$defs\/([A-Za-z]+)\/(?!.*\$defs\/)/.exec(schemaPath);
  return match?.[1];
}

function summarize(e: ErrorObject): string {
  const def = defName(e.schemaPath);
  // A mapping over its bound (environment, secrets, labels) is too big, not badly named.
  if (e.keyword === 'maxProperties' && def !== 'secretRef') return 'too many items';
  if (def && DEF_SUMMARIES[def] && DEF_KEYWORDS.has(e.keyword)) return DEF_SUMMARIES[def];
  switch (e.keyword) {
    case 'required':
      return 'missing required field';
    case 'additionalProperties':
      return 'unknown field';
    case 'type':
      return 'wrong type';
    case 'enum':
    case 'const':
      return 'value not allowed';
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return 'value out of range';
    case 'uniqueItems':
      return 'duplicate item';
    case 'minItems':
    case 'minProperties':
      return 'too few items';
    case 'maxItems':
    case 'maxProperties':
      return 'too many items';
    case 'minLength':
      return 'value too short';
    case 'maxLength':
      return 'value too long';
    case 'not':
      return 'conflicting fields';
    default:
      return 'invalid value';
  }
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const segment of pointerSegments(pointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

function fieldName(pointer: string): string {
  const segments = pointerSegments(pointer);
  return segments.length === 0 ? '(document)' : segments.join('.');
}

// Where a secret reference belongs (every schema use of secretRef and secrets), and anything inside one.
const SECRET_POSITION =
  /^\/spec\/(?:service\/secrets\/[^/]+|secrets\/[^/]+|database\/password|password|postgresql\/password|domains\/\d+\/gate\/basicAuth\/htpasswd)(?:\/.*)?$/;

const HOW_TO_REFER = 'write a reference instead: {file: /etc/hostkit/secrets/PROJECT/NAME}, {env: NAME} or {age: <ciphertext>}';

/** A value at a secret position, described by its type and length only: it may be the secret itself. */
function describeSecret(got: unknown): string {
  if (typeof got === 'string') return `a string of ${got.length} characters`;
  if (Array.isArray(got)) return `a list of ${got.length} items`;
  if (got !== null && typeof got === 'object') return 'a mapping';
  return `a ${got === null ? 'null' : typeof got}`;
}

function secretDetail(e: ErrorObject, root: unknown): string | undefined {
  // A file path or variable name is a reference, shown as written; anything else there may be the secret itself.
  if (!SECRET_POSITION.test(e.instancePath) || /\/(?:file|env)$/.test(e.instancePath)) return undefined;
  if (e.keyword === 'additionalProperties' || e.keyword === 'required') return undefined;
  const field = fieldName(e.instancePath);
  const got = valueAt(root, e.instancePath);
  if (e.keyword === 'minProperties' || e.keyword === 'maxProperties') return `${field} must name exactly one source: file, env or age`;
  const expected = e.instancePath.endsWith('/age') ? 'an ASCII-armored age ciphertext' : 'a secret reference';
  return `${field} must be ${expected}, got ${describeSecret(got)} (not shown; ${HOW_TO_REFER})`;
}

// An environment value that looks like a credential (core/credentials.ts) is described, never echoed.
function plainCredentialShown(pointer: string, value: unknown): boolean {
  const key = /\/environment\/([^/]+)$/.exec(pointer)?.[1];
  return key !== undefined && credentialReason(pointerSegments(`/${key}`)[0]!, value) !== undefined;
}

function detail(e: ErrorObject, root: unknown): string {
  const secret = secretDetail(e, root);
  if (secret) return secret;
  if (plainCredentialShown(e.instancePath, valueAt(root, e.instancePath)))
    return `${fieldName(e.instancePath)} ${e.message ?? 'is invalid'}, got ${describeSecret(valueAt(root, e.instancePath))} (not shown; ${HOW_TO_REFER})`;
  const field = fieldName(e.instancePath);
  const got = valueAt(root, e.instancePath);
  switch (e.keyword) {
    case 'required':
      return `${field === '(document)' ? 'the manifest' : field} must have "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'additionalProperties':
      return `${field === '(document)' ? 'the manifest' : field} has no field "${(e.params as { additionalProperty: string }).additionalProperty}"; check the spelling against the schema`;
    case 'enum':
      return `${field} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => show(v)).join(', ')}, got ${show(got)}`;
    case 'const':
      return `${field} must be ${show((e.params as { allowedValue: unknown }).allowedValue)}, got ${show(got)}`;
    case 'pattern':
    case 'format': {
      const description = typeof e.parentSchema?.description === 'string' ? ` (${e.parentSchema.description})` : '';
      return `${field} ${show(got)} is not allowed${description}`;
    }
    case 'propertyNames':
      return `${field} has a key that is not allowed: ${show((e.params as { propertyName: string }).propertyName)}`;
    case 'not':
      return `${field}: ${typeof e.parentSchema?.description === 'string' ? e.parentSchema.description : 'these fields cannot be combined'}`;
    case 'minProperties':
    case 'maxProperties':
      if (defName(e.schemaPath) === 'secretRef') return `${field} must name exactly one source: file, env or age`;
      if (e.keyword === 'maxProperties' && got !== null && typeof got === 'object')
        return `${field} has ${Object.keys(got).length} keys; at most ${(e.params as { limit: number }).limit}`;
      return `${field} ${e.message ?? 'is invalid'}`;
    case 'maxItems':
      if (Array.isArray(got)) return `${field} has ${got.length} items; at most ${(e.params as { limit: number }).limit}`;
      return `${field} ${e.message ?? 'is invalid'}`;
    case 'type':
      if (/(^|\.)mode$/.test(field) && typeof got === 'number')
        return `${field} must be a quoted octal string such as "0640", got ${show(got)}; unquoted, YAML reads 0640 as the number 640`;
      return `${field} ${e.message ?? 'is invalid'}${got !== undefined ? `, got ${show(got)}` : ''}`;
    default:
      return `${field} ${e.message ?? 'is invalid'}${got !== undefined && typeof got !== 'object' ? `, got ${show(got)}` : ''}`;
  }
}

// argv[0] refused because systemd would read its first character as an Exec prefix (+ runs as root).
function systemdPrefix(e: ErrorObject, root: unknown): boolean {
  if (e.keyword !== 'pattern' || defName(e.schemaPath) !== 'command' || !e.instancePath.endsWith('/0')) return false;
  const got = valueAt(root, e.instancePath);
  return typeof got === 'string' && SYSTEMD_EXEC_PREFIX.test(got);
}

// Turn ajv's errors into one diagnostic per problem, at the value's line.
// Branch noise from oneOf/anyOf is reduced to the branch that fits the value's type.
export function describeErrors(errors: readonly ErrorObject[], doc: LoadedDocument, root: unknown): Diagnostic[] {
  const unionPaths = new Map<string, ErrorObject>();
  for (const e of errors) if (e.keyword === 'oneOf' || e.keyword === 'anyOf') unionPaths.set(e.instancePath, e);
  const kept: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    // For a union, a type/enum/const mismatch of another branch is noise.
    if (unionPaths.has(e.instancePath) && ['type', 'enum', 'const'].includes(e.keyword)) continue;
    kept.push(e);
  }
  // A union error none of whose branches left a specific error: report it as such.
  // (Sets of paths and their ancestors keep this linear in the number of errors.)
  const covered = new Set<string>();
  const cover = (pointer: string) => {
    for (let p = pointer; !covered.has(p); p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) {
      covered.add(p);
      if (p === '') break;
    }
  };
  for (const k of kept) cover(k.instancePath);
  for (const [pointer, e] of unionPaths) {
    if (covered.has(pointer)) continue;
    kept.push(e);
    cover(pointer);
  }
  const keyNamePaths = kept.filter((k) => k.keyword === 'propertyNames').map((k) => k.instancePath);
  const keyErrors = new Map<string, ErrorObject>();
  for (const k of errors)
    if (k.keyword !== 'propertyNames' && k.propertyName !== undefined)
      keyErrors.set(`${k.instancePath}|${k.propertyName}`, keyErrors.get(`${k.instancePath}|${k.propertyName}`) ?? k);
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of kept) {
    // A bad key is reported by propertyNames; the key's own schema (e.g. envName) names the problem better.
    const keyError = e.keyword === 'propertyNames' ? keyErrors.get(`${e.instancePath}|${(e.params as { propertyName: string }).propertyName}`) : undefined;
    const summary =
      e.keyword === 'oneOf' || e.keyword === 'anyOf' ? 'value not allowed' : systemdPrefix(e, root) ? 'systemd prefix in program' : summarize(keyError ?? e);
    let pointer = e.instancePath;
    let preferKey = false;
    if (e.keyword === 'additionalProperties') {
      pointer = toPointer([...pointerSegments(pointer), (e.params as { additionalProperty: string }).additionalProperty]);
      preferKey = true;
    } else if (e.keyword === 'propertyNames') {
      pointer = toPointer([...pointerSegments(pointer), (e.params as { propertyName: string }).propertyName]);
      preferKey = true;
    }
    const text =
      e.keyword === 'oneOf' || e.keyword === 'anyOf'
        ? (secretDetail(e, root) ?? `${fieldName(e.instancePath)} ${show(valueAt(root, e.instancePath))} matches none of the allowed forms`)
        : detail(e, root);
    const key = `${pointer}|${summary}|${text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // A propertyNames failure is also reported as a failure of the name's own pattern; keep one.
    if (e.keyword === 'pattern' && e.propertyName && keyNamePaths.some((p) => e.instancePath.startsWith(p))) continue;
    out.push(error(summary, text, doc.locate(pointer, preferKey)));
  }
  return out;
}
