import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../reconciler/core/log.js';
import { Redactor } from '../reconciler/core/secrets.js';
import { toJsonPlan } from '../reconciler/diff/render/json.js';
import { renderMarkdown } from '../reconciler/diff/render/markdown.js';
import { PLAIN } from '../reconciler/diff/render/style.js';
import { renderText } from '../reconciler/diff/render/text.js';
import { reconcileHost } from '../reconciler/engine.js';
import { driftEntries } from '../reconciler/report/status.js';
import { scratchRoot, writeRepo } from './support/fixtures.js';

// The security corpus of what only the host can show (issue #16): each
// directory under test/corpus/host is a config repository (test/corpus/shared
// plus its own files) and a host.json that seeds a scratch root standing for
// the host (files HostKit did not write, symlinks, accounts), with what the dry
// run must do: refuse with a plan error, or plan without a byte of a canary in
// any output format (text, JSON, YAML, markdown: what a pull request sees).

const here = path.dirname(fileURLToPath(import.meta.url));
const casesDir = path.join(here, 'corpus', 'host');
const sharedDir = path.join(here, 'corpus', 'shared');

interface HostCase {
  /** Files on the host before the plan, by absolute path. */
  files?: Record<string, string>;
  /** Symlinks on the host: path -> target (relative targets only, so nothing leaves the scratch root). */
  symlinks?: Record<string, string>;
  /** Lines appended to the host's /etc/passwd and /etc/group (accounts HostKit did not create). */
  passwd?: string[];
  group?: string[];
  /** The plan must hold an error with this summary whose detail contains `detailIncludes` (and located at `at`, FILE:LINE, if given). */
  planError?: { summary: string; detailIncludes: string; at?: string };
  /** No output format of the plan may contain this; each must contain `planIncludes`. */
  planOmits?: string;
  planIncludes?: string;
  why: string;
}

const names = readdirSync(casesDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

async function setup(name: string): Promise<{ repo: string; root: string; host: Awaited<ReturnType<typeof scratchRoot>>['host']; cleanup(): Promise<void> }> {
  const spec = JSON.parse(readFileSync(path.join(casesDir, name, 'host.json'), 'utf8')) as HostCase;
  const repo = await writeRepo({});
  await cp(sharedDir, repo, { recursive: true });
  for (const entry of await readdir(path.join(casesDir, name))) {
    if (entry !== 'host.json') await cp(path.join(casesDir, name, entry), path.join(repo, entry), { recursive: true });
  }
  const scratch = await scratchRoot('web-1');
  const at = (p: string) => path.join(scratch.root, p);
  for (const [p, content] of Object.entries(spec.files ?? {})) {
    await mkdir(path.dirname(at(p)), { recursive: true });
    await writeFile(at(p), content);
  }
  for (const [p, target] of Object.entries(spec.symlinks ?? {})) {
    if (path.isAbsolute(target)) throw new Error(`${name}/host.json: symlink targets must be relative`);
    await mkdir(path.dirname(at(p)), { recursive: true });
    await symlink(target, at(p));
  }
  for (const [file, lines] of [
    ['etc/passwd', spec.passwd],
    ['etc/group', spec.group],
  ] as const) {
    if (lines) await writeFile(at(file), (await readFile(at(file), 'utf8')) + lines.join('\n') + '\n');
  }
  return { repo, root: scratch.root, host: scratch.host, cleanup: scratch.cleanup };
}

describe('test/corpus/host (what a plan may reveal or adopt on a host)', () => {
  it('has cases', () => {
    expect(names.length).toBeGreaterThanOrEqual(4);
  });

  it.each(names)('%s', async (name) => {
    const spec = JSON.parse(readFileSync(path.join(casesDir, name, 'host.json'), 'utf8')) as HostCase;
    const s = await setup(name);
    try {
      const outcome = await reconcileHost({
        repoDir: s.repo,
        hostName: 'web-1',
        host: s.host,
        dryRun: true,
        log: silentLogger(),
        env: {},
        redactor: new Redactor(),
      });
      if (outcome.stage !== 'planned')
        throw new Error(`${name}: expected a plan, got ${outcome.stage}: ${JSON.stringify(outcome.repo.diagnostics.slice(0, 3))}`);
      const plan = outcome.planned.plan;
      if (spec.planError) {
        const problems = [...plan.diagnostics, ...plan.changes.flatMap((c) => c.diagnostics)].filter((d) => d.severity === 'error');
        expect(problems.map((d) => `${d.summary}: ${d.detail}`)).toEqual(
          expect.arrayContaining([expect.stringMatching(new RegExp(`^${spec.planError.summary}: .*${escape(spec.planError.detailIncludes)}`))]),
        );
        if (spec.planError.at) {
          const located = problems.filter((d) => d.summary === spec.planError!.summary).map((d) => `${d.location?.file}:${d.location?.line}`);
          expect(located).toContain(spec.planError.at);
        }
      }
      if (spec.planOmits) {
        const outputs = {
          text: renderText(plan, { style: PLAIN, verbose: true }),
          json: JSON.stringify(toJsonPlan(plan)),
          yaml: stringify(toJsonPlan(plan)),
          markdown: renderMarkdown(plan),
        };
        for (const [format, out] of Object.entries(outputs)) {
          expect(out, format).not.toContain(spec.planOmits);
          if (spec.planIncludes) expect(out, format).toContain(spec.planIncludes);
        }
        // A drift report (status/, drift/ on the report branch) is made of the same pending changes.
        expect(JSON.stringify(driftEntries(plan)), 'drift').not.toContain(spec.planOmits);
      }
    } finally {
      await s.cleanup();
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
