// The Host's answer to "who may change what", resolved once per host with its
// defaults: which repository paths are host-level, what each project is granted,
// where secret references may point, and which paths nobody may write.
import { ACME_WEBROOT, TLS_DIR } from '../drivers/shared/web.js';
import type { HostSpec, PolicyGrant } from './types.js';

export const DEFAULT_HOST_LEVEL_PATHS = ['hosts/'];
export const DEFAULT_SECRET_ROOTS = ['/etc/hostkit/secrets'];
export const DEFAULT_SSH_PORT = 22;

/** The directories a project owns by default, as `PREFIX/PROJECT`. */
export const PROJECT_ROOTS = ['/srv', '/var/lib', '/var/log', '/var/www'];

/** A path nobody may write (or serve), with why: `tree` covers everything under it too. */
export interface ProtectedPath {
  path: string;
  tree: boolean;
  why: string;
}

export interface HostPolicy {
  hostLevelPaths: string[];
  grants: Record<string, PolicyGrant>;
  secretRoots: string[];
  /** Agent variables any manifest's {env:} references may name. */
  secretEnv: ReadonlySet<string>;
  sshPort: number;
  protected: ProtectedPath[];
}

export function hostPolicy(spec: HostSpec, stateDirectory: string): HostPolicy {
  const secretRoots = spec.secrets?.roots ?? DEFAULT_SECRET_ROOTS;
  const ssh = spec.firewall?.ssh;
  const protectedPaths: ProtectedPath[] = [
    { path: stateDirectory, tree: true, why: "HostKit's state directory" },
    ...secretRoots.map((root) => ({ path: root, tree: true, why: 'a secret root (secrets are placed by the operator, not by manifests)' })),
    { path: TLS_DIR, tree: true, why: "HostKit's TLS key directory" },
    { path: ACME_WEBROOT, tree: true, why: "the ACME challenge webroot (files there prove control of every site's domain)" },
    { path: '/root', tree: true, why: "root's home" },
    { path: '/etc/sudoers', tree: false, why: 'the sudo rules' },
    { path: '/etc/sudoers.d', tree: true, why: 'the sudo rules' },
  ];
  if (spec.age?.identityFile) protectedPaths.push({ path: spec.age.identityFile, tree: false, why: "the host's age identity" });
  return {
    hostLevelPaths: spec.policy?.hostLevelPaths ?? DEFAULT_HOST_LEVEL_PATHS,
    grants: spec.policy?.grants ?? {},
    secretRoots,
    secretEnv: new Set(spec.secrets?.env ?? []),
    sshPort: ssh === false || ssh === undefined ? DEFAULT_SSH_PORT : (ssh.port ?? DEFAULT_SSH_PORT),
    protected: protectedPaths,
  };
}

/** True when the repository file (relative, forward slashes) lies under one of the host-level paths ("/" is the whole repository). */
export function isHostLevel(file: string, policy: HostPolicy): boolean {
  return policy.hostLevelPaths.some((p) => p === '/' || (p.endsWith('/') ? file.startsWith(p) : file === p));
}

/** The directories project `project` owns on a host: its default roots and the paths the Host grants it. */
export function projectRoots(project: string, policy: HostPolicy): string[] {
  return [...PROJECT_ROOTS.map((r) => `${r}/${project}`), ...(policy.grants[project]?.paths ?? [])];
}

/** `p` is `root` or lies under it. */
export function within(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : root + '/');
}

/** Why `p` may not be written or served by any manifest, if so. */
export function protectedProblem(p: string, policy: HostPolicy): string | undefined {
  for (const entry of policy.protected) {
    if (entry.tree ? within(p, entry.path) : p === entry.path) return `${p} is ${p === entry.path ? '' : 'inside '}${entry.why}`;
  }
  if (p.split('/').includes('.ssh')) return `${p} is an account's SSH directory`;
  return undefined;
}

/** A directory above a protected path: whoever owns it can swap what lies beneath. */
export function protectedBelow(p: string, policy: HostPolicy): ProtectedPath | undefined {
  const prefix = p === '/' ? '/' : p + '/';
  return policy.protected.find((entry) => entry.path.startsWith(prefix));
}
