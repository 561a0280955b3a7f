// One nginx config file per site, rendered only from values siteProblems()
// accepted: hostnames, URL paths, plain file paths, IP addresses, ports and
// canonical networks. No manifest text reaches the file any other way.
import { createHash } from 'node:crypto';
import type { SiteSpec } from '../../core/specs.js';
import { canonicalNetwork } from '../shared/network.js';
import { ACME_WEBROOT, certificatePaths, GENERATION_HEADER, htpasswdFile } from './paths.js';

const GENERATION_MARK = '@GENERATION@';

export interface RenderedSite {
  content: string;
  /** Hash of the content; nginx sends it in GENERATION_HEADER, so a probe tells which config answered. */
  generation: string;
}

/** The certificate and key files a site's TLS server uses, or undefined for tls: none. */
export function siteTlsFiles(spec: Pick<SiteSpec, 'site' | 'tls'>): { certificate: string; key: string } | undefined {
  if (spec.tls === 'none') return undefined;
  if (typeof spec.tls === 'object') return spec.tls;
  return certificatePaths(spec.site);
}

function upstreamUrl({ host, port, group }: { host: string; port: number; group?: string }): string {
  if (group) return `http://${group}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function proxy(lines: string[], indent: string, url: string): void {
  lines.push(
    `${indent}proxy_pass ${url};`,
    `${indent}proxy_set_header Host $host;`,
    `${indent}proxy_set_header X-Real-IP $remote_addr;`,
    `${indent}proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`,
    `${indent}proxy_set_header X-Forwarded-Proto $scheme;`,
  );
}

// What the site serves: its locations, then "/" (the upstream, the static root, or 404).
function content(spec: SiteSpec): string[] {
  const lines: string[] = [];
  const host = spec.upstream?.host ?? '127.0.0.1';
  for (const l of spec.locations) {
    lines.push(`    location ${l.path} {`);
    if (l.port !== undefined) proxy(lines, '        ', upstreamUrl({ host, port: l.port }));
    else if (l.root !== undefined) lines.push(`        root ${l.root};`, '        try_files $uri $uri/ =404;');
    else if (spec.upstream) proxy(lines, '        ', upstreamUrl(spec.upstream));
    else if (spec.root) lines.push(`        root ${spec.root};`, '        try_files $uri $uri/ =404;');
    else lines.push('        return 404;');
    lines.push('    }');
  }
  if (!spec.locations.some((l) => l.path === '/')) {
    lines.push('    location / {');
    if (spec.upstream) proxy(lines, '        ', upstreamUrl(spec.upstream));
    else if (spec.root) lines.push(`        root ${spec.root};`, '        index index.html;', '        try_files $uri $uri/ =404;');
    else lines.push('        return 404;');
    lines.push('    }');
  }
  return lines;
}

// Access gates apply to the whole server; the ACME challenge location lifts them (the CA must reach it).
function gate(spec: SiteSpec): string[] {
  const lines: string[] = [];
  for (const cidr of spec.gate?.allow ?? []) lines.push(`    allow ${canonicalNetwork(cidr)!.text};`);
  if (spec.gate?.allow) lines.push('    deny all;');
  if (spec.gate?.basicAuth) lines.push(`    auth_basic "${spec.gate.basicAuth.realm}";`, `    auth_basic_user_file ${htpasswdFile(spec.site)};`);
  return lines;
}

function challenge(): string[] {
  return [
    '    location ^~ /.well-known/acme-challenge/ {',
    `        root ${ACME_WEBROOT};`,
    '        default_type text/plain;',
    '        auth_basic off;',
    '        allow all;',
    '        try_files $uri =404;',
    '    }',
  ];
}

function server(spec: SiteSpec, listen: string[], body: string[]): string[] {
  return [
    'server {',
    ...listen.map((l) => `    listen ${l};`),
    `    server_name ${spec.domains.join(' ')};`,
    `    add_header ${GENERATION_HEADER} "${GENERATION_MARK}" always;`,
    ...Object.entries(spec.headers ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => `    add_header ${name} "${value}" always;`),
    ...body,
    '}',
  ];
}

export interface RenderOptions {
  /**
   * For certificate files the manifest names, the digest of the certificate
   * (shared/inputs.ts). It is part of the file, so a replaced certificate makes a
   * new file and a reload. The key needs none: a new key comes with a new certificate.
   */
  certificateDigest?: string;
  /** The host has IPv6 (default): also listen on [::]. nginx refuses to start on a host without it otherwise. */
  ipv6?: boolean;
}

export function renderSite(spec: SiteSpec, origin: string, options: RenderOptions = {}): RenderedSite {
  const tls = siteTlsFiles(spec);
  const lines = [`# Managed by HostKit (${origin}): site ${spec.site}. Edits are overwritten; remove the site from the manifest instead.`];
  if (tls && options.certificateDigest) lines.push(`# HostKit inputs: ${tls.certificate} hmac:${options.certificateDigest}`);
  const ipv6 = options.ipv6 !== false;
  const plain = ipv6 ? ['80', '[::]:80'] : ['80'];
  if (!tls) {
    lines.push(...server(spec, plain, [...gate(spec), ...challenge(), ...content(spec)]));
  } else {
    const http = spec.redirectHttp ? ['    location / {', '        return 301 https://$host$request_uri;', '    }'] : [...gate(spec), ...content(spec)];
    lines.push(...server(spec, plain, [...challenge(), ...http]));
    lines.push('');
    lines.push(
      ...server(spec, ipv6 ? ['443 ssl', '[::]:443 ssl'] : ['443 ssl'], [
        `    ssl_certificate ${tls.certificate};`,
        `    ssl_certificate_key ${tls.key};`,
        ...gate(spec),
        ...challenge(),
        ...content(spec),
      ]),
    );
  }
  const text = lines.join('\n') + '\n';
  const generation = createHash('sha256').update(text).digest('hex').slice(0, 16);
  return { content: text.split(GENERATION_MARK).join(generation), generation };
}
