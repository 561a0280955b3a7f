import { readdirSync, readFileSync, statSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../reconciler/core/log.js';
import type { Diagnostic } from '../reconciler/core/diagnostics.js';
import { reconcileHost } from '../reconciler/engine.js';
import { FakeHost } from '../reconciler/hosts/fake.js';
import { validateRepository } from '../reconciler/manifests/index.js';

// The bad-input corpus: every directory under test/corpus/bad is a small config
// repository (test/corpus/shared + the case's own files) with exactly one thing
// wrong, and an expect.json naming the diagnostic it must produce. Files that
// would be binary or large in git are generated here at run time (`generate`).
// See test/corpus/README.md.

const here = path.dirname(fileURLToPath(import.meta.url));
const corpusDir = path.join(here, 'corpus');
const badDir = path.join(corpusDir, 'bad');
const sharedDir = path.join(corpusDir, 'shared');
const exampleRepo = path.resolve(here, '..', 'example-repo');

interface Generate {
  /** Path of the generated manifest, relative to the assembled repository. */
  file: string;
  /** Name of a generator in GENERATORS. */
  with: string;
  depth?: number;
  count?: number;
  /** Write the generated manifest to this many files: `file` with `{i}` replaced by 1, 2, ... */
  copies?: number;
}

interface KnownBug {
  /** What the validator does today instead of the expected diagnostic. */
  description: string;
  /** false when the validator accepts the manifest today (then even "nothing applied" fails). */
  rejected: boolean;
}

interface Expectation {
  /** "warning": the repository stays valid and the diagnostic is a warning (default "error"). */
  severity?: 'error' | 'warning';
  summary: string;
  file: string;
  /** null: a whole-file diagnostic that carries no line. */
  line: number | null;
  pointer?: string;
  detailIncludes?: string;
  /** No diagnostic may contain this (a value that must never be echoed). */
  detailExcludes?: string;
  /** Host to reconcile (default web-1, from test/corpus/shared). */
  host?: string;
  /** Validation must finish within this many milliseconds (inputs built to make a regex backtrack). */
  withinMs?: number;
  why: string;
  generate?: Generate;
  knownBug?: KnownBug;
}

interface Case {
  name: string;
  dir: string;
  expect: Expectation;
}

const EXPECT_KEYS = new Set([
  'severity',
  'summary',
  'file',
  'line',
  'pointer',
  'detailIncludes',
  'detailExcludes',
  'host',
  'withinMs',
  'why',
  'generate',
  'knownBug',
]);

function readCase(name: string): Case {
  const dir = path.join(badDir, name);
  const raw = JSON.parse(readFileSync(path.join(dir, 'expect.json'), 'utf8')) as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!EXPECT_KEYS.has(key)) throw new Error(`${name}/expect.json: unknown key ${key}`);
  if (typeof raw.summary !== 'string' || typeof raw.file !== 'string' || typeof raw.why !== 'string') {
    throw new Error(`${name}/expect.json: summary, file and why are required strings`);
  }
  if (raw.line !== null && !(typeof raw.line === 'number' && Number.isInteger(raw.line) && raw.line > 0)) {
    throw new Error(`${name}/expect.json: line must be a positive integer or null`);
  }
  return { name, dir, expect: raw as unknown as Expectation };
}

const cases: Case[] = readdirSync(badDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => readCase(e.name))
  .sort((a, b) => a.name.localeCompare(b.name));

// A minimal valid Project whose line 5 carries `description` (for byte-level cases)
// and whose line 10 is the first free line of spec.
const PROJECT_HEAD = [
  'apiVersion: hostkit.dev/v1',
  'kind: Project',
  'metadata:',
  '  name: shop',
  '  description: the shop',
  'spec:',
  '  placement:',
  '    hosts: [web-1]',
].join('\n');
const PROJECT = `${PROJECT_HEAD}\n  runtime: static\n`;

function fileManifest(name: string): string {
  return `apiVersion: hostkit.dev/v1\nkind: File\nmetadata:\n  name: ${name}\nspec:\n  placement:\n    hosts: [web-1]\n  path: /srv/${name}.txt\n  content: ${name}\n`;
}

// Content that would be binary, huge or unreadable as a committed file.
const GENERATORS: Record<string, (g: Generate) => Buffer> = {
  // Nine levels of nine aliases: 9^9 strings once expanded ("billion laughs").
  'alias-bomb': () => {
    const lines = ['  bomb:', '    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(97 + i - 1);
      const name = String.fromCharCode(97 + i);
      lines.push(`    ${name}: &${name} [${Array<string>(9).fill(`*${prev}`).join(', ')}]`);
    }
    return Buffer.from(`${PROJECT}${lines.join('\n')}\n`);
  },
  // `depth` nested flow sequences on line 10: `  x: [[[...]]]`.
  'deep-flow-nesting': (g) => {
    const depth = g.depth ?? 40;
    return Buffer.from(`${PROJECT}  x: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
  },
  // 0xE9 (é in Latin-1) on line 5.
  'latin1-byte': () => {
    const [before, after] = PROJECT.split('the shop') as [string, string];
    return Buffer.concat([Buffer.from(`${before}caf`), Buffer.from([0xe9]), Buffer.from(` du coin${after}`)]);
  },
  // A NUL byte on line 5.
  'nul-byte': () => Buffer.from(PROJECT.replace('the shop', 'the\u0000shop')),
  // A valid manifest padded with comment lines to one byte over 1 MiB.
  'over-one-mebibyte': () => {
    const limit = 1024 * 1024;
    const comment = `# ${'x'.repeat(98)}\n`;
    let text = PROJECT;
    while (text.length + comment.length <= limit) text += comment;
    text += '#'.repeat(limit + 1 - text.length);
    return Buffer.from(text);
  },
  // A firewall opening whose `from` is `count` colons and an x, on line 12.
  'long-cidr': (g) => Buffer.from(`${PROJECT}  firewall:\n    - port: 443\n      from: ["${':'.repeat(g.count ?? 40_000)}x"]\n`),
  // `count` small, valid File manifests in one file.
  'many-documents': (g) => {
    const count = g.count ?? 201;
    return Buffer.from(Array.from({ length: count }, (_, i) => fileManifest(`f${i + 1}`)).join('---\n'));
  },
  // An Account whose `groups` (line 8) lists `count` distinct groups.
  'many-groups': (g) => {
    const groups = Array.from({ length: g.count ?? 60_000 }, (_, i) => `g${i}`).join(', ');
    return Buffer.from(
      `apiVersion: hostkit.dev/v1\nkind: Account\nmetadata:\n  name: deploy\nspec:\n  placement:\n    hosts: [web-1]\n  groups: [${groups}]\n`,
    );
  },
  // A FirewallRules manifest whose `openings` (line 8) has `count` entries.
  'many-openings': (g) => {
    const openings = Array<string>(g.count ?? 100_000)
      .fill('{port: 8}')
      .join(',');
    return Buffer.from(
      `apiVersion: hostkit.dev/v1\nkind: FirewallRules\nmetadata:\n  name: shop\nspec:\n  placement:\n    hosts: [web-1]\n  openings: [${openings}]\n`,
    );
  },
  // A Site whose `domains` (line 8) lists `count` names.
  'many-domains': (g) => {
    const domains = Array.from({ length: g.count ?? 101 }, (_, i) => `d${i}.example.com`).join(', ');
    return Buffer.from(
      `apiVersion: hostkit.dev/v1\nkind: Site\nmetadata:\n  name: shop\nspec:\n  placement:\n    hosts: [web-1]\n  domains: [${domains}]\n  upstreamPort: 8080\n`,
    );
  },
  // A Project whose service environment (line 13) has `count` variables.
  'many-environment-keys': (g) => {
    const keys = Array.from({ length: g.count ?? 513 }, (_, i) => `      V${i}: x`).join('\n');
    return Buffer.from(`${PROJECT_HEAD}\n  runtime: node\n  service:\n    command: [/usr/bin/node, server.js]\n    environment:\n${keys}\n`);
  },
  // `count` Project documents (shop1, shop2, ...), each expanding 40 aliases of its environment value.
  'aliases-across-documents': (g) => {
    const doc = (n: number) =>
      `${PROJECT_HEAD.replace('name: shop', `name: shop${n}`)}\n  runtime: node\n  service:\n    command: [/usr/bin/node, server.js]\n    environment:\n      V0: &v x\n` +
      Array.from({ length: 40 }, (_, i) => `      V${i + 1}: *v\n`).join('');
    return Buffer.from(Array.from({ length: g.count ?? 3 }, (_, i) => doc(i + 1)).join('---\n'));
  },
  // One MiB of comment lines (the most a file may hold; it declares nothing); with `copies`, a repository over its total.
  'one-mebibyte-of-comments': () => Buffer.from(`# ${'x'.repeat(98)}\n`.repeat((1024 * 1024) / 101)),
};

let tmpRoot: string;

beforeAll(async () => {
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'hostkit-corpus-'));
});

afterAll(async () => {
  if (tmpRoot) await fs.rm(tmpRoot, { recursive: true, force: true });
});

let assembled = 0;

/** A fresh repository: the shared files, then the case's own (which may replace a shared one). */
async function assemble(c: Case): Promise<string> {
  const repo = path.join(tmpRoot, `${String(++assembled).padStart(3, '0')}-${c.name}`);
  await fs.cp(sharedDir, repo, { recursive: true });
  await fs.cp(c.dir, repo, { recursive: true, filter: (src) => path.basename(src) !== 'expect.json' });
  const g = c.expect.generate;
  if (g) {
    const generator = GENERATORS[g.with];
    if (!generator) throw new Error(`${c.name}: no generator named ${g.with}`);
    const content = generator(g);
    for (let i = 1; i <= (g.copies ?? 1); i++) {
      const target = path.join(repo, g.copies ? g.file.replace('{i}', String(i)) : g.file);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, content);
    }
  }
  return repo;
}

function show(d: Diagnostic): string {
  const l = d.location;
  return `  ${d.severity} [${d.summary}] ${l?.file ?? '-'}:${l?.line ?? '-'} ${l?.pointer ?? ''} -- ${d.detail}`;
}

function matches(d: Diagnostic, e: Expectation): boolean {
  return (
    d.severity === (e.severity ?? 'error') &&
    d.summary === e.summary &&
    d.location?.file === e.file &&
    (d.location?.line ?? null) === e.line &&
    (e.pointer === undefined || d.location?.pointer === e.pointer) &&
    (e.detailIncludes === undefined || d.detail.includes(e.detailIncludes))
  );
}

async function assertExactDiagnostic(c: Case): Promise<void> {
  const repo = await assemble(c);
  const started = performance.now();
  const result = await validateRepository(repo);
  const elapsed = performance.now() - started;
  const e = c.expect;
  const listing = result.diagnostics.map(show).join('\n') || '  (no diagnostics)';
  const warning = e.severity === 'warning';
  expect(result.valid, `${c.name} should be ${warning ? 'valid (a warning refuses nothing)' : 'invalid'}; diagnostics:\n${listing}`).toBe(warning);
  if (e.detailExcludes) expect(listing, `${c.name}: a diagnostic shows ${JSON.stringify(e.detailExcludes)}`).not.toContain(e.detailExcludes);
  const want = `[${e.summary}] ${e.file}:${e.line ?? '-'}${e.pointer ? ` ${e.pointer}` : ''}${e.detailIncludes ? ` detail ~ ${JSON.stringify(e.detailIncludes)}` : ''}`;
  expect(
    result.diagnostics.some((d) => matches(d, e)),
    `${c.name}: expected ${e.severity ?? 'error'} ${want}; got:\n${listing}`,
  ).toBe(true);
  if (e.withinMs !== undefined) expect(elapsed, `${c.name}: validation took ${Math.round(elapsed)} ms`).toBeLessThan(e.withinMs);
}

async function assertNothingApplied(c: Case): Promise<void> {
  const repo = await assemble(c);
  const host = new FakeHost();
  const outcome = await reconcileHost({ repoDir: repo, hostName: c.expect.host ?? 'web-1', host, dryRun: false, log: silentLogger() });
  expect(outcome.stage).toBe('invalid');
  expect(outcome.repo.valid).toBe(false);
  expect(host.calls).toEqual([]);
  expect(host.writes).toEqual([]);
}

const healthy = cases.filter((c) => !c.expect.knownBug);
const knownBugs = cases.filter((c) => c.expect.knownBug);
const accepted = cases.filter((c) => c.expect.knownBug?.rejected === false);
const refused = cases.filter((c) => c.expect.knownBug?.rejected !== false && c.expect.severity !== 'warning');
const title = (c: Case) => c.name;

describe('test/corpus (bad input)', () => {
  it('has at least 40 cases, each a directory with an expect.json and a manifest', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    for (const c of cases) {
      const own = readdirSync(c.dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f));
      expect(own.length + (c.expect.generate ? 1 : 0), `${c.name} has no manifest`).toBeGreaterThan(0);
    }
  });

  it('keeps committed corpus files small, UTF-8 text without NUL bytes', () => {
    for (const base of [badDir, sharedDir]) {
      for (const rel of readdirSync(base, { recursive: true, encoding: 'utf8' })) {
        const full = path.join(base, rel);
        if (!statSync(full).isFile()) continue;
        const bytes = readFileSync(full);
        expect(bytes.length, rel).toBeLessThan(20 * 1024);
        expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes), rel).not.toThrow();
        expect(bytes.includes(0), rel).toBe(false);
      }
    }
  });

  it('positive control: the shared files alone are a valid repository', async () => {
    const repo = path.join(tmpRoot, 'shared-only');
    await fs.cp(sharedDir, repo, { recursive: true });
    const result = await validateRepository(repo);
    expect(result.diagnostics.filter((d) => d.severity === 'error').map(show)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('positive control: example-repo is valid with zero errors', async () => {
    const result = await validateRepository(exampleRepo);
    expect(result.diagnostics.filter((d) => d.severity === 'error').map(show)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.manifests.length).toBeGreaterThan(0);
  });

  it.each(healthy.map((c) => [title(c), c] as const))('%s: exact diagnostic (summary, file, line)', async (_name, c) => {
    await assertExactDiagnostic(c);
  });

  it.each(refused.map((c) => [title(c), c] as const))('%s: rejected, nothing applied', async (_name, c) => {
    await assertNothingApplied(c);
  });

  // Validator bugs found by this corpus (see each case's knownBug): the expectation
  // above is the correct behaviour; these fail today and must pass once fixed.
  it.fails.each(knownBugs.map((c) => [title(c), c] as const))('%s: exact diagnostic (known validator bug)', async (_name, c) => {
    await assertExactDiagnostic(c);
  });

  it.fails.each(accepted.map((c) => [title(c), c] as const))('%s: rejected, nothing applied (known validator bug: accepted today)', async (_name, c) => {
    await assertNothingApplied(c);
  });
});
