// SCRATCH (not committed): a config repository written from the README, applied as an operator would.
import { mkdtempSync, realpathSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { describeHost, useHost } from './harness.js';
import { PEBBLE_DIR, startPebble } from './pebble.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODULES = realpathSync(path.join(WORKTREE, 'node_modules'));
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-trial-'));
const REPO = path.join(SHARED, 'config');

const files: Record<string, string> = {
  'hosts/shop-1.yaml': `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: shop-1
spec:
  firewall:
    input: drop
    ssh:
      port: 22
  acme:
    email: ops@shop.test
    directory: https://127.0.0.1:14000/dir
    caCertificate: ${PEBBLE_DIR}/ca.pem
  hostkitPath: /usr/local/bin/hostkit
  backup:
    password:
      file: /etc/hostkit/secrets/restic
`,
  'projects/shop.yaml': `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: shop
spec:
  placement:
    hosts: [shop-1]
  runtime: python
  service:
    command: [/usr/bin/python3, app.py]
    port: 8080
  deploy:
    strategy: blue-green
  source:
    git:
      url: file:///srv/shop-src
      ref: @REF@
  domains:
    - name: shop.hk.test
      tls: acme
  database:
    password:
      file: /etc/hostkit/secrets/shop-db-password
    restoreDataOnRollback: true
    backup:
      schedule: "0 3 * * *"
      keep: { daily: 7 }
      drill: weekly
  lifecycle:
    - name: migrate
      phase: before-start
      command: [/bin/sh, -c, 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -f migrate.sql']
  firewall:
    - port: 80
    - port: 443
  health:
    http:
      path: /healthz
    timeout: 3s
    retries: 3
`,
};

describeHost('trial', () => {
  const m = useHost({ hostname: 'shop-1', bindReadOnly: [{ hostPath: WORKTREE }, { hostPath: MODULES }], bind: [{ hostPath: SHARED }] });
  const hk = (args: string[]) => m().host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1' }, timeoutMs: 300_000 });

  it('works from the README', { timeout: 900_000 }, async () => {
    const machine = m();
    await startPebble(machine, ['shop.hk.test']);
    await machine.host.writeFile('/usr/local/bin/hostkit', `#!/bin/sh\nexec ${NODE} ${NODE_FLAGS.join(' ')} ${CLI} "$@"\n`, { uid: 0, gid: 0, mode: 0o755 });
    await machine.exec('sh', ['-c', 'mkdir -p /etc/hostkit/secrets && printf s3cret-db > /etc/hostkit/secrets/shop-db-password && printf restic-pw-trial-9 > /etc/hostkit/secrets/restic && chmod 600 /etc/hostkit/secrets/*']);
    const app = (version: string, healthy: boolean) => `import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        ok = self.path != "/healthz" or ${healthy ? 'True' : 'False'}\n        body = b"${version}\\n"\n        self.send_response(200 if ok else 500)\n        self.send_header("Content-Length", str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\nimport os\nhttp.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()\n`;
    const commitOnHost = async (version: string, healthy: boolean, sql: string) => {
      await machine.host.writeFile('/srv/shop-src/app.py', app(version, healthy), { mode: 0o644, uid: 0, gid: 0 });
      await machine.host.writeFile('/srv/shop-src/migrate.sql', sql, { mode: 0o644, uid: 0, gid: 0 });
      const r = await machine.exec('sh', ['-c', 'cd /srv/shop-src && git add -A && git -c user.name=dev -c user.email=dev@x commit -qm "$0" && git rev-parse HEAD', version]);
      return r.stdout.trim();
    };
    await machine.exec('sh', ['-c', 'mkdir -p /srv/shop-src && cd /srv/shop-src && git init -q -b main && chmod -R a+rX /srv/shop-src && git config --system --add safe.directory /srv/shop-src']);
    const v1 = await commitOnHost('v1', true, 'CREATE TABLE IF NOT EXISTS items (id int primary key, name text);\nINSERT INTO items SELECT g, \'item \' || g FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;\n');
    const writeRepo = async (ref: string, msg: string) => {
      for (const [rel, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(REPO, rel)), { recursive: true });
        writeFileSync(path.join(REPO, rel), content.replace('@REF@', ref));
      }
      await execa('git', ['-C', REPO, 'add', '-A']);
      await execa('git', ['-C', REPO, '-c', 'user.name=op', '-c', 'user.email=op@x', 'commit', '-qm', msg]);
    };
    await execa('git', ['init', '-q', '-b', 'main', REPO]);
    await writeRepo(v1, 'v1');
    const show = async (label: string, args: string[]) => {
      const r = await hk(args);
      process.stderr.write(`${label} ${r.exitCode}\n${r.stdout}${r.stderr}\n`);
      return r;
    };
    const probe = async (label: string) => {
      const u = await machine.host.exec('sh', ['-c', 'cat /etc/nginx/conf.d/hkdeploy-shop.conf; systemctl is-active hk-shop@blue.service hk-shop@green.service; readlink /srv/shop/current; systemctl show -p WorkingDirectory hk-shop@blue.service hk-shop@green.service']);
      process.stderr.write(`UPSTREAM ${label}: ${u.stdout.replace(/\n/g, ' | ')}\n`);
      const c = await machine.host.exec('curl', ['-s', '--resolve', 'shop.hk.test:443:127.0.0.1', '-k', 'https://shop.hk.test/']);
      const d = await machine.host.exec('runuser', ['-u', 'postgres', '--', 'psql', '-XtAq', '-d', 'shop', '-c', "SELECT count(*) || ' rows, columns ' || (SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'items') FROM items"]);
      process.stderr.write(`PROBE ${label}: ${c.stdout.trim()} | ${d.stdout.trim()}${d.stderr}\n`);
    };
    await show('VALIDATE', ['validate', '--repo', REPO]);
    await show('PLAN', ['plan', '--repo', REPO]);
    const apply = await show('APPLY', ['reconcile', '--repo', REPO]);
    await probe('v1');
    const v2 = await commitOnHost('v2-bad', false, 'DELETE FROM items WHERE id > 50;\n');
    await writeRepo(v2, 'v2 breaks');
    await show('PLAN V2', ['plan', '--repo', REPO]);
    await show('APPLY V2', ['reconcile', '--repo', REPO]);
    await probe('after v2 (rows should be 100)');
    const v3 = await commitOnHost('v3', true, 'ALTER TABLE items ADD COLUMN IF NOT EXISTS price int;\nDELETE FROM items WHERE id > 90;\n');
    await writeRepo(v3, 'v3');
    await show('PLAN V3', ['plan', '--repo', REPO]);
    await show('APPLY V3', ['reconcile', '--repo', REPO]);
    await probe('v3 (90 rows, price)');
    await show('NOOP', ['reconcile', '--repo', REPO]);
    await show('ROLLBACK DRY', ['rollback', '--last', '--dry-run', '--with-data']);
    await show('ROLLBACK WITH DATA', ['rollback', '--last', '--with-data']);
    await probe('after rollback --with-data (v1, 100 rows, no price)');
    await show('STATUS', ['status', '--repo', REPO]);
    await show('RUNS', ['runs']);
    await show('BACKUPS RUN', ['backups', 'run', 'shop']);
    await show('BACKUPS', ['backups']);
    await show('DRILL', ['backups', 'restore', 'shop', '--to-scratch', '--database', '--drill']);
    const secrets = await machine.exec('sh', ['-c', 'grep -rl restic-pw-trial-9 /var/lib/hostkit /srv /etc/systemd 2>/dev/null | head']);
    process.stderr.write(`PASSWORD FOUND IN: ${secrets.stdout}\n`);
    expect(apply.exitCode).toBe(0);
  });
});
