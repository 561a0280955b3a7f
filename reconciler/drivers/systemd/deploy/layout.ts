// Where a blue-green project's instances and nginx upstream are on the host: plain names and
// texts, no host access (the Project expansion reads them without loading the driver).
import type { Color } from './spec.js';

export const COLORS: readonly Color[] = ['blue', 'green'];

/** The nginx upstream a blue-green project's sites proxy to (the site file names it; the deploy driver defines it). */
export function upstreamName(project: string): string {
  return `hostkit_deploy_${project.replace(/-/g, '_')}`;
}

/** /etc/nginx/conf.d/hkdeploy-NAME.conf: the upstream block, one server, the instance in service. */
export function upstreamFile(project: string): string {
  return `/etc/nginx/conf.d/hkdeploy-${project}.conf`;
}

/** `hk-NAME@blue.service`: one instance, a unit file of its own (its port and release differ). */
export function instanceUnit(project: string, color: Color): string {
  return `hk-${project}@${color}.service`;
}

export function otherColor(color: Color): Color {
  return color === 'blue' ? 'green' : 'blue';
}

/** The upstream file pointing nginx at one instance. */
export function renderUpstream(project: string, color: Color, address: string, port: number): string {
  return [
    '# Managed by HostKit: edits are overwritten on the next apply.',
    `# HostKit deploy: ${color}`,
    `upstream ${upstreamName(project)} {`,
    `    server ${address.includes(':') ? `[${address}]` : address}:${port};`,
    '}',
    '',
  ].join('\n');
}

/** The instance an upstream file points at, from its marker line. */
export function upstreamColor(text: string | undefined): Color | undefined {
  const color = /^# HostKit deploy: (blue|green)$/m.exec(text ?? '')?.[1];
  return color as Color | undefined;
}
