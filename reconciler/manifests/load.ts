import { closeSync, fstatSync, openSync, promises as fs, readSync } from 'node:fs';
import path from 'node:path';
import { isScalar, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { error, type Diagnostic, type Location } from '../core/diagnostics.js';
import { contentHash, ParseCache } from './parse-cache.js';
import { compose, type NumberSources } from './compose.js';
import { locateIn, type LocationIndex } from './source-map.js';

// Every bound the loader puts on input, so that a repository's cost to load is
// linear in its size and its size is bounded (README "Limits"). The schemas
// bound each list and mapping more tightly (maxItems, maxProperties).
export const LIMITS = {
  /** Bytes per manifest file. */
  fileBytes: 1024 * 1024,
  /** Documents per file. */
  documentsPerFile: 200,
  /** Alias expansions per file, all its documents together (alias bombs). */
  aliases: 100,
  /** Nesting depth of a manifest value. */
  depth: 32,
  /** Entries of any one list or mapping, whatever the field. */
  items: 4096,
  /**
   * Lines and commas of a file, counted before it is parsed: every entry of a
   * list or mapping needs one or the other, and the YAML parser's cost (time and
   * memory, ~400 MB for a 1 MiB file of 100k entries) is paid before any other
   * limit can be checked. A 1 MB manifest of 190 projects has ~24,000.
   */
  separators: 60_000,
  /** Manifest files per repository. */
  files: 20_000,
  /** Documents per repository. */
  documents: 40_000,
  /** Bytes of all manifest files of a repository together. */
  repositoryBytes: 32 * 1024 * 1024,
};

// Folders a config repository keeps that are not manifests.
const SKIPPED_DIRS = new Set(['node_modules', 'status', 'drift', 'hooks', '.git', '.github', '.gitlab', '.hostkit']);

/** One YAML document of a manifest file, parsed, with a way back to its source lines. */
export interface LoadedDocument {
  /** Path relative to the repository root, with forward slashes. */
  file: string;
  /** Index of the document in a multi-document file. */
  index: number;
  value: unknown;
  /** File, line and column of the value a JSON pointer names. */
  locate(pointer: string, preferKey?: boolean): Location;
  /** Numbers not written in plain decimal, by pointer (refused by validation). */
  numbers?: NumberSources;
}

export interface LoadResult {
  documents: LoadedDocument[];
  diagnostics: Diagnostic[];
}

/** A parsed document as plain data (it crosses worker boundaries). */
export interface ParsedDocument {
  file: string;
  index: number;
  value: unknown;
  locations: LocationIndex;
  numbers?: NumberSources;
}

export interface ParseResult {
  documents: ParsedDocument[];
  diagnostics: Diagnostic[];
}

export function toLoaded(d: ParsedDocument): LoadedDocument {
  return {
    file: d.file,
    index: d.index,
    value: d.value,
    locate: (pointer, preferKey) => locateIn(d.locations, d.file, pointer, preferKey),
    ...(d.numbers ? { numbers: d.numbers } : {}),
  };
}

export interface ManifestFile {
  /** Relative path, forward slashes. */
  file: string;
  bytes: Uint8Array;
}

/** Every *.yaml / *.yml under `root`, sorted, skipping folders that hold no manifests. */
export async function listManifestFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.') && entry.name !== '.') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) await walk(full);
      } else if (entry.isFile() && /\.ya?ml$/.test(entry.name)) {
        found.push(path.relative(root, full).split(path.sep).join('/'));
      }
    }
  }
  await walk(root);
  return found.sort();
}

/**
 * A file's bytes, read at the size its open descriptor gives (one fstat, no second
 * one inside readFile; a file that grew meanwhile is read as it was), or its size
 * alone when that is over `limit`, so an oversized file is never read.
 */
function readBounded(file: string, limit: number): Buffer | { size: number } {
  const fd = openSync(file, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > limit) return { size };
    const bytes = Buffer.allocUnsafe(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, bytes, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return read < size ? bytes.subarray(0, read) : bytes;
  } finally {
    closeSync(fd);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

// Parse one file defensively: size, encoding, duplicate keys, unknown tags,
// alias bombs and nesting are refused with a diagnostic, never a crash.
export function parseManifestFile(input: ManifestFile): LoadResult {
  const parsed = parseManifest(input);
  return { documents: parsed.documents.map(toLoaded), diagnostics: parsed.diagnostics };
}

// yaml's Parser reads process.env.LOG_TOKENS once per token (and its Composer
// LOG_STREAM once per document) to decide whether to trace. process.env is an
// interceptor that calls getenv on every read, which cost about a fifth of the
// parse (220,000 tokens for 1,000 projects). Parsing is synchronous, so nothing
// else can observe process.env being a plain empty object for its duration.
const NO_ENVIRONMENT: NodeJS.ProcessEnv = Object.freeze({});
function withoutEnvironment<T>(parse: () => T): T {
  const env = process.env;
  process.env = NO_ENVIRONMENT;
  try {
    return parse();
  } finally {
    process.env = env;
  }
}

// Newlines and commas, by indexOf (about a millisecond a megabyte): an upper bound on the entries a file can hold.
function countSeparators(text: string): number {
  let count = 0;
  for (const ch of ['\n', ',']) for (let i = text.indexOf(ch); i !== -1; i = text.indexOf(ch, i + 1)) count++;
  return count;
}

export function parseManifest({ file, bytes }: ManifestFile): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const documents: ParsedDocument[] = [];
  if (bytes.length > LIMITS.fileBytes) {
    diagnostics.push(tooLarge(file, bytes.length));
    return { documents, diagnostics };
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const line = countLines(bytes, offset);
    diagnostics.push(error('invalid UTF-8', `byte ${offset} is not valid UTF-8; save the file as UTF-8`, { file, line }));
    return { documents, diagnostics };
  }
  const separators = countSeparators(text);
  if (separators > LIMITS.separators) {
    diagnostics.push(
      error('too many items', `${separators} lines and commas; at most ${LIMITS.separators} per file (counted before parsing): split the file`, { file }),
    );
    return { documents, diagnostics };
  }
  if (text.includes('\u0000')) {
    const line = text.slice(0, text.indexOf('\u0000')).split('\n').length;
    diagnostics.push(error('invalid character', 'the file contains a NUL character', { file, line }));
    return { documents, diagnostics };
  }
  const lineCounter = new LineCounter();
  let docs: Document.Parsed[];
  try {
    docs = withoutEnvironment(() =>
      parseAllDocuments(text, {
        lineCounter,
        uniqueKeys: true,
        merge: false,
        schema: 'core',
        strict: true,
        prettyErrors: false,
        // YAML 1.1 tags (!!omap, !!set, !!binary, !!timestamp) would turn into Maps,
        // Sets and Dates that JSON Schema sees as empty objects: refuse them instead.
        resolveKnownTags: false,
      }),
    ) as Document.Parsed[];
  } catch (cause) {
    diagnostics.push(error('invalid YAML', String((cause as Error).message ?? cause), { file }));
    return { documents, diagnostics };
  }
  if (!Array.isArray(docs)) docs = [docs as Document.Parsed];
  if (docs.length > LIMITS.documentsPerFile) {
    diagnostics.push(error('too many documents', `${docs.length} documents; at most ${LIMITS.documentsPerFile} per file`, { file }));
    return { documents, diagnostics };
  }
  let aliases = 0;
  docs.forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    const exhausted = problems.find((p) => p.code === 'RESOURCE_EXHAUSTION');
    if (exhausted) {
      // The parser ran out of stack: nesting far past the limit. One diagnostic, not one per frame.
      const pos = lineCounter.linePos(exhausted.pos[0]);
      diagnostics.push(error('nesting too deep', `values may nest at most ${LIMITS.depth} levels`, { file, line: pos.line, column: pos.col }));
      return;
    }
    if (problems.length > 0) {
      for (const problem of problems) {
        let offset = problem.pos[0];
        // An unclosed quote is reported where the parser gave up (often the end of the
        // file); the quote that opened it is the last one before that point.
        const quote = /Missing closing (["'])quote/.exec(problem.message)?.[1];
        if (problem.code === 'MISSING_CHAR' && quote) offset = Math.max(0, text.lastIndexOf(quote, offset));
        const pos = lineCounter.linePos(offset);
        const summary = problem.code === 'DUPLICATE_KEY' ? 'duplicate key' : problem.code === 'TAG_RESOLVE_FAILED' ? 'unsupported YAML tag' : 'invalid YAML';
        const detail = problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        diagnostics.push(error(summary, detail, { file, line: pos.line, column: pos.col }));
      }
      return;
    }
    // An empty document (a trailing ---, or a file of comments) declares nothing.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return;
    // Once one document has refused the file's alias budget, later ones have none left either.
    if (aliases > LIMITS.aliases) return;
    const composed = compose(doc, lineCounter, { depth: LIMITS.depth, aliases: LIMITS.aliases, items: LIMITS.items }, aliases);
    if (!composed.ok) {
      if (composed.problem === 'too many aliases') aliases = LIMITS.aliases + 1;
      const pos = lineCounter.linePos(composed.offset);
      const summary = composed.problem === 'unresolved alias' || composed.problem === 'complex key' ? 'invalid YAML' : composed.problem;
      diagnostics.push(error(summary, composed.detail, { file, line: pos.line, column: pos.col, ...(composed.pointer ? { pointer: composed.pointer } : {}) }));
      return;
    }
    aliases = composed.aliases;
    documents.push({ file, index, value: composed.value, locations: composed.locations, ...(composed.numbers ? { numbers: composed.numbers } : {}) });
  });
  return { documents, diagnostics };
}

export interface LoadOptions {
  /** Reuse parse results of unchanged files from this folder (see parse-cache.ts). */
  cacheDir?: string;
}

export async function loadRepository(root: string, options: LoadOptions = {}): Promise<LoadResult> {
  const files = await listManifestFiles(root);
  if (files.length > LIMITS.files) {
    return {
      documents: [],
      diagnostics: [error('too many files', `${files.length} manifest files; at most ${LIMITS.files}`, { file: '.' })],
    };
  }
  // Read synchronously: a manifest is small, and a thousand reads through the thread pool cost a cold
  // process several times what the reads themselves do. A file over the limit is never read, and once
  // the files read pass the repository's limit the rest are not read either.
  const cache = options.cacheDir ? new ParseCache(options.cacheDir, root) : undefined;
  await cache?.open();
  let total = 0;
  const parsed: ParseResult[] = [];
  for (const file of files) {
    const bytes = readBounded(path.join(root, file), LIMITS.fileBytes);
    if (!Buffer.isBuffer(bytes)) {
      parsed.push({ documents: [], diagnostics: [tooLarge(file, bytes.size)] });
      continue;
    }
    total += bytes.length;
    if (total > LIMITS.repositoryBytes) break;
    if (!cache) {
      parsed.push(parseManifest({ file, bytes }));
      continue;
    }
    const sha = contentHash(bytes);
    let result = cache.get(file, sha);
    if (!result) cache.put(file, sha, (result = parseManifest({ file, bytes })));
    parsed.push(result);
  }
  if (total > LIMITS.repositoryBytes) return { documents: [], diagnostics: [repositoryTooLarge(total)] };
  await cache?.save();
  return merge(parsed);
}

export function parseFiles(files: readonly ManifestFile[]): LoadResult {
  if (files.length > LIMITS.files) {
    return { documents: [], diagnostics: [error('too many files', `${files.length} manifest files; at most ${LIMITS.files}`, { file: '.' })] };
  }
  const total = files.reduce((sum, f) => sum + f.bytes.length, 0);
  if (total > LIMITS.repositoryBytes) return { documents: [], diagnostics: [repositoryTooLarge(total)] };
  return merge(files.map(parseManifest));
}

function tooLarge(file: string, bytes: number): Diagnostic {
  return error('file too large', `${bytes} bytes; a manifest file may have at most ${LIMITS.fileBytes} bytes`, { file });
}

function repositoryTooLarge(bytes: number): Diagnostic {
  return error('repository too large', `${bytes} bytes of manifest files; a repository may have at most ${LIMITS.repositoryBytes} bytes`, { file: '.' });
}

function merge(results: readonly ParseResult[]): LoadResult {
  const count = results.reduce((sum, r) => sum + r.documents.length, 0);
  if (count > LIMITS.documents) {
    return { documents: [], diagnostics: [error('too many documents', `${count} documents in the repository; at most ${LIMITS.documents}`, { file: '.' })] };
  }
  const documents: LoadedDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const r of results) {
    for (const d of r.documents) documents.push(toLoaded(d));
    diagnostics.push(...r.diagnostics);
  }
  return { documents, diagnostics };
}

function firstInvalidUtf8(bytes: Uint8Array): number {
  // Binary search for the shortest prefix that fails to decode.
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid + 1), { stream: true });
      lo = mid + 1;
    } catch {
      hi = mid;
    }
  }
  return lo;
}

function countLines(bytes: Uint8Array, end: number): number {
  let line = 1;
  for (let i = 0; i < end && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}
