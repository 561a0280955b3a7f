import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../reconciler/core/diagnostics.js';
import { validateRepository } from '../reconciler/manifests/index.js';
import type { ProjectManifest } from '../reconciler/manifests/types.js';
import { writeRepo } from './support/fixtures.js';

// The README's complete Project example is validated as a user would write it,
// with the Host of example-repo, the way test/corpus.spec.ts validates a repository.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The first ```yaml block after the heading `### TITLE`. */
function yamlAfter(heading: string): string {
  const at = README.indexOf(`\n### ${heading}\n`);
  if (at < 0) throw new Error(`README.md has no heading "### ${heading}"`);
  const block = /```yaml\n([\s\S]*?)\n```/.exec(README.slice(at));
  if (!block) throw new Error(`README.md has no \`\`\`yaml block after "### ${heading}"`);
  return block[1]! + '\n';
}

const show = (d: Diagnostic) => `${d.severity} ${d.location?.file}:${d.location?.line} ${d.summary}: ${d.detail}`;

describe('README.md', () => {
  const example = yamlAfter('A complete Project');

  it('its complete Project example validates with the Host of example-repo, as a project-level manifest: no error, no warning', async () => {
    const repo = await writeRepo({
      'hosts/web-1.yaml': readFileSync(path.join(ROOT, 'example-repo/hosts/web-1.yaml'), 'utf8'),
      'projects/shop.yaml': example,
    });
    const result = await validateRepository(repo);
    expect(result.diagnostics.map(show)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.manifests.map((m) => `${m.kind}/${m.name}`).sort()).toEqual(['Host/web-1', 'Project/shop']);
  });

  it('the example has every part it promises: service, worker, timer, database, secret reference, ACME domain, firewall opening, health check', () => {
    const spec = (parse(example) as ProjectManifest).spec;
    expect(spec.service?.command).toBeDefined();
    expect(spec.workers?.length).toBeGreaterThan(0);
    expect(spec.timers?.length).toBeGreaterThan(0);
    expect(spec.database).toBeDefined();
    expect(Object.values(spec.service?.secrets ?? {})).toContainEqual({ file: expect.stringMatching(/^\/etc\/hostkit\/secrets\//) });
    expect(spec.domains?.some((d) => (d.tls ?? 'acme') === 'acme')).toBe(true);
    expect(spec.firewall?.length).toBeGreaterThan(0);
    expect(spec.health?.http ?? spec.health?.tcp ?? spec.health?.command).toBeDefined();
  });

  it('its Login access example validates as a host-level manifest, and is refused from a project path (account-login, account-sudo)', async () => {
    const people = yamlAfter('Login access');
    const host = readFileSync(path.join(ROOT, 'example-repo/hosts/web-1.yaml'), 'utf8');
    const ok = await validateRepository(await writeRepo({ 'hosts/web-1.yaml': host, 'hosts/people.yaml': people }));
    expect(ok.diagnostics.map(show)).toEqual([]);
    const project = people.replace('  name: alice\n', '  name: alice\n  project: alice\n');
    const refused = await validateRepository(await writeRepo({ 'hosts/web-1.yaml': host, 'projects/alice.yaml': project }));
    // (its home is outside the project's paths too: project-path)
    expect(refused.diagnostics.map((d) => /rule ([a-z-]+):/.exec(d.detail)?.[1])).toEqual(['project-path', 'account-login', 'account-sudo']);
  });

  it('lists every value of runtime in the schema, one line each', () => {
    const schema = JSON.parse(readFileSync(path.join(ROOT, 'schema/project.schema.json'), 'utf8')) as {
      properties: { spec: { properties: { runtime: { oneOf: [{ enum: string[] }, ...unknown[]] } } } };
    };
    const runtimes = schema.properties.spec.properties.runtime.oneOf[0].enum;
    expect(runtimes.length).toBeGreaterThan(0);
    const list = README.slice(README.indexOf('`runtime` is one of'));
    for (const r of runtimes) expect(list, r).toMatch(new RegExp(`^- \`${r}\`: `, 'm'));
  });
});

describe('the repository names no path outside itself', () => {
  // A user's clone has only the repository: documents it points to must be in it.
  it('no tracked text file points into the workspace it was developed in', async () => {
    const { execFileSync } = await import('node:child_process');
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(ts|md|sh|json|yaml|yml|js|mjs)$/.test(f) && f !== 'package-lock.json');
    // The workspace's own folder, and its brief's documents by a relative path.
    const outside = [/\/work\/[a-z]/, /\.\.\/shared\/[A-Z-]+\.md/];
    const offenders = files.filter((f) => f !== 'test/readme.spec.ts' && outside.some((re) => re.test(readFileSync(path.join(ROOT, f), 'utf8'))));
    expect(offenders).toEqual([]);
  });
});
