// Where HostKit's nginx and TLS files live. One namespace: only names with the
// HostKit prefix are ever written or removed. The TLS and ACME paths are
// shared with the certificate driver (shared/web.ts).
export { ACME_WEBROOT, CHALLENGE_DIR, TLS_DIR, certificatePaths } from '../shared/web.js';
export const NGINX_SITE_DIR = '/etc/nginx/conf.d';
export const SITE_PREFIX = 'hostkit-';
export const HTPASSWD_DIR = '/etc/nginx/hostkit-htpasswd';
export const NGINX_ERROR_LOG = '/var/log/nginx/error.log';
/** The response header that carries the generation of the site's config, for the post-reload probe. */
export const GENERATION_HEADER = 'X-HostKit-Generation';

export function siteFile(site: string): string {
  return `${NGINX_SITE_DIR}/${SITE_PREFIX}${site}.conf`;
}

export function htpasswdFile(site: string): string {
  return `${HTPASSWD_DIR}/${site}`;
}
