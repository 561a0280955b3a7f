import { describe, expect, it } from 'vitest';
import { writeRepo } from '../../test/support/fixtures.js';
import { validateRepository } from './index.js';

const host = 'apiVersion: hostkit.dev/v1\nkind: Host\nmetadata:\n  name: h\nspec: {}\n';
const project = (environment: string) =>
  `apiVersion: hostkit.dev/v1\nkind: Project\nmetadata:\n  name: app\nspec:\n  placement:\n    hosts: [h]\n  runtime: python\n  service:\n    command: [/usr/bin/python3, app.py]\n    environment:\n${environment}`;

async function diagnostics(environment: string) {
  const repo = await validateRepository(await writeRepo({ 'hosts/h.yaml': host, 'projects/app.yaml': project(environment) }));
  return repo.diagnostics.map((d) => ({
    severity: d.severity,
    summary: d.summary,
    at: `${d.location?.file}:${d.location?.line}:${d.location?.column}`,
    detail: d.detail,
  }));
}

// The corpus (test/corpus/bad/333-337) holds one case per place an environment is written;
// here: what the warning says, and that no diagnostic about such a value shows it.
describe('reconciler/manifests/credentials', () => {
  it('warns at the value, names the field and where the reference belongs, and gives the length only', async () => {
    expect(await diagnostics('      NODE_ENV: production\n      SESSION_SECRET: CANARY-5ec7\n')).toEqual([
      {
        severity: 'warning',
        summary: 'plain credential in environment',
        at: 'projects/app.yaml:13:23',
        detail:
          'spec.service.environment.SESSION_SECRET looks like a credential (its name SESSION_SECRET says so) but is a plain value of 11 characters (not shown), ' +
          'kept in git for anyone who can read the repository; plans show it redacted. Move it to spec.service.secrets as a reference: ' +
          'SESSION_SECRET: {file: /etc/hostkit/secrets/app/session-secret}, {env: SESSION_SECRET} (a variable of the agent the Host lists) or {age: "-----BEGIN AGE ENCRYPTED FILE-----..."}.',
      },
    ]);
  });

  it('an ordinary environment gets no warning', async () => {
    expect(await diagnostics('      NODE_ENV: production\n      PORT_OFFSET: 3\n      DEBUG: false\n      DB_PASSWORD_FILE: /run/secrets/db\n')).toEqual([]);
  });

  it.each([
    ['a value the schema refuses', '      DB_PASSWORD: "CANARY\\nsecond line"\n', 'invalid environment value'],
    ['a number not in plain decimal', '      DB_PASSWORD: 0123456789\n', 'number not in plain decimal'],
  ])('the error about %s that looks like a credential describes it without showing it', async (_what, environment, summary) => {
    const found = await diagnostics(environment);
    expect(found.map((d) => d.summary)).toContain(summary);
    expect(JSON.stringify(found)).not.toMatch(/CANARY|0123456789|123456789/);
  });
});
