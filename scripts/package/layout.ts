// Where HostKit's release puts its files on a host, and the small files it
// writes itself: the `hostkit` command, the agent's unit, the Debian control
// file and maintainer scripts. One tree serves both the .deb and the tarball.
import { AGENT_UNIT, renderAgentUnit } from '../../reconciler/agent/unit.js';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';

/** Everything HostKit ships that is not a command, a unit or configuration. */
export const PREFIX = '/usr/lib/hostkit';
/** The Node runtime the release brings along (no system Node needed). */
export const NODE = `${PREFIX}/node`;
/** The npm package: package.json, dist/reconciler, schema/, hooks/ and the production node_modules/. */
export const APP = `${PREFIX}/lib`;
export const CLI = `${APP}/dist/reconciler/cli.js`;
export const COMMAND = '/usr/bin/hostkit';
export const CONFIG_DIR = '/etc/hostkit';
export const AGENT_CONFIG = `${CONFIG_DIR}/agent.yaml`;
// /usr/lib, not /lib: systemd reads both, Debian 12 merges /lib into /usr, and a
// tarball entry under lib/ would replace a merged system's /lib symlink with a directory.
export const UNIT = `/usr/lib/systemd/system/${AGENT_UNIT}`;
/** The paths a release holds (its directories' contents included), in the order tar lists them. */
export const OWNED_PATHS: readonly string[] = [CONFIG_DIR, COMMAND, PREFIX, UNIT];

export const ARCHES = ['x64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];
/** Node's name for an architecture (the tarball's, and npm's node-linux-ARCH) to Debian's. */
export const DEBIAN_ARCH: Record<Arch, string> = { x64: 'amd64', arm64: 'arm64' };

// What the bundled runtime and HostKit need from the distribution. Node's official
// linux builds need glibc 2.28 and GLIBCXX_3.4.21 (objdump -T); HostKit runs system git
// for sources, talks TLS to forges and ACME servers, and drives systemd.
export const DEPENDS: readonly string[] = ['libc6 (>= 2.28)', 'libgcc-s1', 'libstdc++6 (>= 5.2)', 'git', 'ca-certificates', 'systemd'];
// ssh for git@ repository URLs and deploy keys; openssl for self-signed certificates.
export const RECOMMENDS: readonly string[] = ['openssh-client', 'openssl'];

export const DEFAULT_MAINTAINER = 'HostKit maintainers <maintainers@hostkit.dev>';

/** /usr/bin/hostkit: the bundled node, with the V8 flags every HostKit process starts with (core/runtime.ts). */
export function commandScript(): string {
  return [
    '#!/bin/sh',
    "# HostKit's command: the Node runtime bundled with it and the flags every HostKit process gets.",
    `exec ${[NODE, ...NODE_FLAGS, CLI].join(' ')} "$@"`,
    '',
  ].join('\n');
}

/** The agent's unit as `hostkit agent install` renders it, for the packaged paths and /etc/hostkit/agent.yaml. */
export function packagedAgentUnit(): string {
  return renderAgentUnit({
    node: NODE,
    cli: CLI,
    config: AGENT_CONFIG,
    stateDirectory: '/var/lib/hostkit',
    writtenBy: `Installed disabled by the hostkit package: write ${AGENT_CONFIG}, then systemctl enable --now ${AGENT_UNIT}.`,
  });
}

/** A Debian version for an npm one: a prerelease (1.2.0-rc.1) sorts before its release with ~. */
export function debianVersion(version: string): string {
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version))
    throw new Error(`Expected package.json's version like 1.2.3 or 1.2.3-rc.1, got ${JSON.stringify(version)}`);
  return version.replace('-', '~');
}

export interface ControlOptions {
  version: string;
  arch: Arch;
  /** Sum of the payload's file sizes, in KiB. */
  installedSizeKiB: number;
  nodeVersion: string;
  maintainer?: string;
}

/** DEBIAN/control. */
export function controlFile(o: ControlOptions): string {
  return [
    'Package: hostkit',
    `Version: ${debianVersion(o.version)}`,
    `Architecture: ${DEBIAN_ARCH[o.arch]}`,
    `Maintainer: ${o.maintainer ?? DEFAULT_MAINTAINER}`,
    `Installed-Size: ${o.installedSizeKiB}`,
    `Depends: ${DEPENDS.join(', ')}`,
    `Recommends: ${RECOMMENDS.join(', ')}`,
    'Section: admin',
    'Priority: optional',
    'Homepage: https://hostkit.dev',
    'Description: GitOps reconciler for Linux hosts',
    ' HostKit keeps a Linux host in the state declared in a git repository:',
    ' manifests in git, plans you can read, applies you can trust.',
    ' .',
    ` It brings its own Node.js ${o.nodeVersion} runtime in ${PREFIX}. The agent's unit,`,
    ` ${AGENT_UNIT}, is installed disabled until ${AGENT_CONFIG} is written.`,
    '',
  ].join('\n');
}

// Maintainer scripts. They never enable or start the agent: it needs its
// configuration first. systemctl runs only where systemd is the running init.
const SYSTEMD_RUNNING = '[ -d /run/systemd/system ]';

/** DEBIAN/postinst, DEBIAN/prerm, DEBIAN/postrm. */
export function maintainerScripts(): Record<'postinst' | 'prerm' | 'postrm', string> {
  const script = (...lines: string[]) => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');
  return {
    postinst: script(
      `if [ "$1" = configure ] && ${SYSTEMD_RUNNING}; then`,
      '  systemctl daemon-reload || true',
      '  # An upgrade restarts an agent that is running (a run in progress finishes first); a stopped one stays stopped.',
      `  if [ -n "$2" ]; then systemctl try-restart ${AGENT_UNIT} || true; fi`,
      'fi',
    ),
    prerm: script(
      '# Removing the package takes away the agent’s runtime: stop and disable it (a run in progress finishes first).',
      `if [ "$1" = remove ] && ${SYSTEMD_RUNNING}; then`,
      `  systemctl disable --now ${AGENT_UNIT} >/dev/null 2>&1 || true`,
      'fi',
    ),
    postrm: script(`if ${SYSTEMD_RUNNING}; then`, '  systemctl daemon-reload || true', 'fi'),
  };
}
