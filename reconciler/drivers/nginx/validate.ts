// The last check before a manifest value reaches an nginx file. The schema
// already applies these patterns; they are repeated here, on the expanded
// spec, because a config file is where injection happens (ingress-nginx
// CVE-2021-25748, CVE-2025-1974): whatever path a value took, only plain
// hostnames, paths, addresses and ports are ever rendered.
import type { SiteSpec } from '../../core/specs.js';
import { headerNameProblem, upstreamProblem } from '../../core/strict-values.js';
import { canonicalNetwork } from '../shared/network.js';
import { DOMAIN } from '../shared/web.js';

export { DOMAIN };

export const URL_PATH = /^\/(?!(?:.*\/)?\.\.?(?:\/|$))[A-Za-z0-9._~/-]{0,511}$/;
export const FS_PATH = /^\/(?!(?:.*\/)?\.\.?(?:\/|$))[A-Za-z0-9._@+/-]{0,1023}$/;
const REALM = /^[A-Za-z0-9 ._-]{1,64}$/;
export const HEADER_NAME = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
export const HEADER_VALUE = /^[A-Za-z0-9 ._:/=+,-]{0,256}$/;
// Headers nginx or HostKit itself must control.
const RESERVED_HEADER = /^(?:x-hostkit-.*|content-length|transfer-encoding|connection)$/i;

function port(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Every reason the site cannot be rendered safely; [] when it can. */
export function siteProblems(spec: SiteSpec): string[] {
  const problems: string[] = [];
  const show = (v: unknown) => JSON.stringify(v);
  if (!DOMAIN.test(spec.site)) problems.push(`site name ${show(spec.site)} is not a lower-case DNS name`);
  if (spec.domains.length === 0) problems.push('a site needs at least one domain');
  for (const d of spec.domains) if (!DOMAIN.test(d)) problems.push(`domain ${show(d)} is not a lower-case DNS name (letters, digits, "-" and ".")`);
  if (spec.upstream) {
    // Never all-addresses, link-local or a cloud metadata endpoint, whatever the manifest said.
    const hostProblem = upstreamProblem(spec.upstream.host);
    if (hostProblem) problems.push(hostProblem);
    if (!port(spec.upstream.port)) problems.push(`upstream port ${show(spec.upstream.port)} is not a TCP port`);
    if (spec.upstream.group !== undefined && !/^hostkit_deploy_[a-z0-9_]{1,40}$/.test(spec.upstream.group))
      problems.push(`upstream group ${show(spec.upstream.group)} is not a HostKit deploy upstream`);
  }
  if (spec.root !== undefined && !FS_PATH.test(spec.root)) problems.push(`root ${show(spec.root)} is not a plain absolute path`);
  if (typeof spec.tls === 'object') {
    for (const p of [spec.tls.certificate, spec.tls.key]) if (!FS_PATH.test(p)) problems.push(`TLS file ${show(p)} is not a plain absolute path`);
  } else if (!['acme', 'self-signed', 'none'].includes(spec.tls)) problems.push(`tls ${show(spec.tls)} is not acme, self-signed, none or files`);
  for (const l of spec.locations) {
    if (!URL_PATH.test(l.path)) problems.push(`location path ${show(l.path)} is not a plain URL path (letters, digits, . _ ~ / -)`);
    if (l.port !== undefined && !port(l.port)) problems.push(`location ${show(l.path)} port ${show(l.port)} is not a TCP port`);
    if (l.root !== undefined && !FS_PATH.test(l.root)) problems.push(`location ${show(l.path)} root ${show(l.root)} is not a plain absolute path`);
    if (l.path.startsWith('/.well-known/acme-challenge')) problems.push(`location ${show(l.path)} would hide the ACME challenge`);
  }
  const paths = spec.locations.map((l) => l.path);
  for (const p of new Set(paths)) if (paths.indexOf(p) !== paths.lastIndexOf(p)) problems.push(`location ${show(p)} is declared twice`);
  if (spec.gate?.basicAuth && !REALM.test(spec.gate.basicAuth.realm))
    problems.push(`realm ${show(spec.gate.basicAuth.realm)} has characters other than letters, digits, space and . _ -`);
  for (const cidr of spec.gate?.allow ?? []) if (!canonicalNetwork(cidr)) problems.push(`allow ${show(cidr)} is not an IP address or network`);
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    if (!HEADER_NAME.test(name) || RESERVED_HEADER.test(name))
      problems.push(`response header name ${show(name)} is not a plain header name HostKit lets a site set`);
    else {
      const denied = headerNameProblem(name);
      if (denied) problems.push(denied);
    }
    if (typeof value !== 'string' || !HEADER_VALUE.test(value))
      problems.push(`response header ${show(name)} value ${show(value)} has characters other than letters, digits, space and . _ : / = + , -`);
  }
  return problems;
}
