// What manifests expand into for this kind, defaults applied (a plan compares it with the host): an nginx site.
import type { SecretRef } from '../../manifests/types.js';

export interface SiteSpec {
  site: string;
  domains: string[];
  /** `group`: an nginx upstream of that name defined elsewhere (a blue-green project's, drivers/systemd/deploy) is proxied to instead of host:port. */
  upstream?: { host: string; port: number; group?: string };
  root?: string;
  /** The root is not HostKit's to create (outside its project's own paths): the plan checks that it exists. */
  rootMustExist?: boolean;
  tls: 'acme' | 'self-signed' | 'none' | { certificate: string; key: string };
  redirectHttp: boolean;
  locations: { path: string; port?: number; root?: string }[];
  /** Response headers added to everything the site serves. */
  headers?: Record<string, string>;
  gate?: { basicAuth?: { realm: string; htpasswd: SecretRef }; allow?: string[] };
}
