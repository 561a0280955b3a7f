// What the web-facing drivers (nginx sites, certificates) agree on without
// importing each other: where TLS pairs live, where ACME challenges are served
// from, and what a domain name may be.

/** Served to anyone at /.well-known/acme-challenge/ on port 80 of every HostKit site. */
export const ACME_WEBROOT = '/var/www/hostkit-acme';
export const CHALLENGE_DIR = `${ACME_WEBROOT}/.well-known/acme-challenge`;
export const TLS_DIR = '/etc/hostkit/tls';

/** A lower-case DNS name: letters, digits and "-" in labels, a letter-led top-level label. */
export const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

/** The certificate pair named `name`: a site serves the pair named after it. */
export function certificatePaths(name: string): { dir: string; certificate: string; key: string } {
  const dir = `${TLS_DIR}/${name}`;
  return { dir, certificate: `${dir}/fullchain.pem`, key: `${dir}/privkey.pem` };
}
