// Where HostKit's nginx and TLS files live. One namespace: only names with the
// HostKit prefix are ever written or removed.
export const NGINX_SITE_DIR = '/etc/nginx/conf.d';
export const SITE_PREFIX = 'hostkit-';
export const HTPASSWD_DIR = '/etc/nginx/hostkit-htpasswd';
/** Served to anyone at /.well-known/acme-challenge/ on port 80 of every HostKit site. */
export const ACME_WEBROOT = '/var/www/hostkit-acme';
export const CHALLENGE_DIR = `${ACME_WEBROOT}/.well-known/acme-challenge`;
export const TLS_DIR = '/etc/hostkit/tls';
export const NGINX_ERROR_LOG = '/var/log/nginx/error.log';
/** The response header that carries the generation of the site's config, for the post-reload probe. */
export const GENERATION_HEADER = 'X-HostKit-Generation';

export function siteFile(site: string): string {
  return `${NGINX_SITE_DIR}/${SITE_PREFIX}${site}.conf`;
}

export function htpasswdFile(site: string): string {
  return `${HTPASSWD_DIR}/${site}`;
}

export function certificatePaths(name: string): { dir: string; certificate: string; key: string } {
  const dir = `${TLS_DIR}/${name}`;
  return { dir, certificate: `${dir}/fullchain.pem`, key: `${dir}/privkey.pem` };
}
