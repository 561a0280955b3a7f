// `hostkit init [DIR]`: a starting config repository (one Host for this
// machine, one commented Project, a README and a .gitignore) that `hostkit
// validate` accepts as it is. Nothing that exists is ever overwritten: if any
// of its files is there already, nothing at all is written.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostKitError } from '../core/errors.js';
import { isQuiet } from './quiet.js';

export interface InitOptions {
  dir: string;
  /** The Host's name (default: this machine's short hostname). */
  host?: string;
}

export interface InitResult {
  dir: string;
  host: string;
  files: string[];
  /** What became of git: a repository made, one the directory was already in, or git missing. */
  git: 'initialized' | 'existing' | 'unavailable';
}

// metadata.name's pattern (schema/common.schema.json).
const NAME = /^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

function hostName(given: string | undefined): string {
  const name = given ?? os.hostname().split('.')[0]!.toLowerCase();
  if (NAME.test(name)) return name;
  throw new HostKitError(
    'BAD_OPTION',
    `${given === undefined ? `This machine's hostname "${name}"` : `--host "${name}"`} is not a manifest name (lower-case letters, digits and -, starting with a letter, at most 40); pass --host NAME`,
  );
}

/**
 * Write the starting files into `opts.dir` (made if missing), then `git init`
 * outside a repository. If a write fails part-way (a full disk), the files
 * written before it stay, each whole, and running init again names them; a
 * failed `git init` leaves the files and reports git as unavailable.
 */
export async function initRepository(opts: InitOptions): Promise<InitResult> {
  const host = hostName(opts.host);
  const dir = path.resolve(opts.dir);
  const files = starterFiles(host);
  const st = await lstat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new HostKitError('INIT_WOULD_OVERWRITE', `${opts.dir} exists and is not a directory; nothing was written`);
  const present: string[] = [];
  for (const rel of Object.keys(files)) if (await lstat(path.join(dir, rel)).catch(() => undefined)) present.push(rel);
  if (present.length > 0) {
    throw new HostKitError(
      'INIT_WOULD_OVERWRITE',
      `${opts.dir} already has ${present.join(', ')}; nothing was written. Move ${present.length === 1 ? 'it' : 'them'} away or choose another directory`,
      { data: { files: present } },
    );
  }
  const inside = await insideGit(dir);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    // O_EXCL: a file that appeared since the check above is still not overwritten.
    await writeFile(path.join(dir, rel), content, { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL });
  }
  let state: InitResult['git'] = inside === undefined ? 'unavailable' : inside ? 'existing' : 'initialized';
  if (state === 'initialized' && (await git(['init', '-q'], dir)).code !== 0) state = 'unavailable';
  return { dir, host, files: Object.keys(files), git: state };
}

// true inside a work tree, false outside one, undefined without git.
async function insideGit(dir: string): Promise<boolean | undefined> {
  let cwd = dir;
  while (!(await lstat(cwd).catch(() => undefined))) cwd = path.dirname(cwd);
  const r = await git(['rev-parse', '--is-inside-work-tree'], cwd);
  return r.code === 'missing' ? undefined : r.code === 0 && r.stdout.trim() === 'true';
}

// System git, as `hostkit hooks install` and the agent use it; 'missing' when it cannot be started.
function git(args: string[], cwd: string): Promise<{ code: number | 'missing'; stdout: string }> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd }, (error, stdout) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 'missing';
      resolve({ code, stdout: String(stdout) });
    });
  });
}

export async function init(opts: InitOptions): Promise<number> {
  const result = await initRepository(opts);
  if (isQuiet()) return 0;
  const repo = path.relative(process.cwd(), result.dir) || '.';
  const flag = repo === '.' ? '' : ` --repo ${repo.includes(' ') ? `'${repo}'` : repo}`;
  const gitLine = {
    initialized: 'a new git repository (git init)',
    existing: 'inside the git repository it was already in',
    unavailable: 'git was not found: run `git init` there yourself',
  }[result.git];
  const table = (rows: [string, string][]) => {
    const width = Math.max(...rows.map(([a]) => a.length));
    return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`.trimEnd());
  };
  process.stdout.write(
    [
      `Wrote a HostKit config repository in ${repo}, ${gitLine}:`,
      ...table([
        [`hosts/${result.host}.yaml`, 'the Host: this machine'],
        ['projects/example.yaml', 'an example Project to edit into your own (or delete)'],
        ['README.md, .gitignore', ''],
      ]),
      '',
      'Next steps:',
      ...table([
        [`hostkit validate${flag}`, 'check every manifest (exit 0: valid)'],
        [`hostkit plan${flag}`, 'what would change on this machine (changes nothing)'],
        [`hostkit hooks install${flag}`, 'validate the manifests on every git commit'],
      ]),
      '',
    ].join('\n'),
  );
  return 0;
}

function starterFiles(host: string): Record<string, string> {
  return {
    [`hosts/${host}.yaml`]: hostYaml(host),
    'projects/example.yaml': projectYaml(host),
    'README.md': README,
    '.gitignore': GITIGNORE,
  };
}

function hostYaml(host: string): string {
  return `# The Host manifest of ${host} (every field: schema/host.schema.json in HostKit).
# Everything under hosts/ is host-level: it may declare anything on the machine,
# so only its operators should change it (guard hosts/ with CODEOWNERS).
apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${host}
  labels:
    role: web
spec:
  # HostKit's inventory, run journals and backups on this machine.
  stateDirectory: /var/lib/hostkit
  policy:
    # Manifests elsewhere (projects/) may change only what their project owns.
    hostLevelPaths: [hosts/]
  secrets:
    # Every {file: ...} secret reference lies under one of these, on the host.
    roots: [/etc/hostkit/secrets]
  # Let's Encrypt certificates for the domains of projects (tls: acme):
  # acme:
  #   email: ops@your-domain.example
  # One nftables table HostKit owns: inbound traffic dropped except SSH and
  # what projects open (a change is confirmed, or reverted after 60s):
  # firewall:
  #   input: drop
  #   ssh:
  #     port: 22
`;
}

function projectYaml(host: string): string {
  return `# An example Project: a Node.js web app behind nginx. Edit it into your own
# (or delete it) before \`hostkit reconcile\`: it runs server.js in /srv/example,
# which is not there yet. \`hostkit plan\` shows what it would do.
# Every field: schema/project.schema.json in HostKit, and its README.
apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: example # also its user, its unit hk-example.service and its paths /srv/example, /var/lib/example
  description: Example web app
spec:
  placement:
    hosts: [${host}] # or by label: selector: { matchLabels: { role: web } }
  runtime: node # node, python, binary, or static (nginx serves files, nothing runs)
  service:
    command: [/usr/bin/node, server.js] # an argument array: no shell
    port: 3000 # nginx proxies the domains below to 127.0.0.1:3000
    environment:
      NODE_ENV: production
    secrets:
      # A reference, never the value: the file is on the host, under the Host's secrets.roots.
      SESSION_KEY: { file: /etc/hostkit/secrets/example/session-key }
    limits:
      memoryMax: 512M
  domains:
    - name: app.example.com
      tls: self-signed # acme (the default) once the Host has spec.acme
  health:
    http:
      path: /healthz # checked after every apply that changes this project; a failure rolls back
  # A PostgreSQL role and database, with DATABASE_URL in the service's environment:
  # database:
  #   password: { file: /etc/hostkit/secrets/example/db-password }
  # Inbound ports, once the Host has spec.firewall:
  # firewall:
  #   - port: 443
`;
}

const README = `# HostKit configuration

This repository declares what HostKit keeps on its hosts:

- \`hosts/\`: one Host manifest per machine (firewall, ACME account, who may
  change what). Host-level: only its operators change these.
- \`projects/\`: one Project per application: its service, workers, timers,
  domains and certificates, database, firewall openings and health check.

From this directory:

    hostkit validate          # check every manifest (exit 1 on errors, with FILE:LINE)
    hostkit plan              # what would change on this machine; changes nothing
    sudo hostkit reconcile    # plan, then apply (rolled back if anything fails)
    hostkit hooks install     # validate the staged manifests on every git commit

Secrets never go into this repository: a manifest references them
(\`{file: /etc/hostkit/secrets/PROJECT/NAME}\`, \`{env: VARIABLE}\`, or an
\`{age: ...}\` encrypted value) and the files live on the host.
`;

const GITIGNORE = `# Secrets live on the host, never in this repository.
*.pem
*.key
secrets/
# Editors
*.swp
*~
.DS_Store
`;
