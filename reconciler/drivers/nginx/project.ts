import type { CertificateSpec } from '../certificate/spec.js';
import type { ProjectPart } from '../manifest-types.js';
import type { SiteSpec } from './spec.js';

// spec.domains: a site each, after the project's units and web root, with the
// certificate its TLS mode asks for. A domain claimed twice is reported once,
// as such, not again as a duplicate site.
export const projectDomains: ProjectPart = {
  name: 'domains',
  expand(x) {
    const spec = x.project.spec;
    const root = x.webRoot?.path;
    const rootId = x.ids.webRoot;
    (spec.domains ?? []).forEach((d, i) => {
      const at = x.at(`/spec/domains/${i}`);
      const domains = [d.name, ...(d.aliases ?? [])];
      if (!domains.map((domain) => x.claim('domain', domain, at)).every(Boolean)) return;
      const tls = d.tls ?? 'acme';
      const siteDeps = [...x.ids.units, ...(rootId ? [rootId] : [])];
      if (tls === 'acme' || tls === 'self-signed') {
        siteDeps.push(x.add<CertificateSpec>('certificate', d.name, { name: d.name, domains, issuer: tls }, at));
      }
      if (typeof tls === 'object') {
        x.checkPath(tls.certificate, x.at(`/spec/domains/${i}/tls/certificate`));
        x.checkPath(tls.key, x.at(`/spec/domains/${i}/tls/key`));
      }
      const site: SiteSpec = {
        site: d.name,
        domains,
        tls,
        redirectHttp: d.redirectHttp ?? tls !== 'none',
        locations: d.locations ?? [],
        ...(d.responseHeaders && Object.keys(d.responseHeaders).length > 0 ? { headers: d.responseHeaders } : {}),
      };
      if (root !== undefined) {
        site.root = root;
        if (!rootId) site.rootMustExist = true;
      } else if (spec.service?.port !== undefined) {
        site.upstream = {
          host: spec.service.bind && spec.service.bind !== '0.0.0.0' && spec.service.bind !== '::' ? spec.service.bind : '127.0.0.1',
          port: spec.service.port,
          // blue-green: the upstream the deploy driver points at the instance in service (drivers/systemd/deploy).
          ...(spec.deploy?.strategy === 'blue-green' ? { group: `hostkit_deploy_${x.name.replace(/-/g, '_')}` } : {}),
        };
      }
      if (d.gate) {
        site.gate = {
          ...(d.gate.basicAuth ? { basicAuth: { realm: d.gate.basicAuth.realm ?? x.name, htpasswd: d.gate.basicAuth.htpasswd } } : {}),
          ...(d.gate.allow ? { allow: d.gate.allow } : {}),
        };
      }
      for (const [j, loc] of (d.locations ?? []).entries()) if (loc.root) x.checkPath(loc.root, x.at(`/spec/domains/${i}/locations/${j}/root`));
      x.add<SiteSpec>('site', d.name, site, at, {
        dependsOn: siteDeps,
        ...(site.rootMustExist ? { fieldOrigins: { root: x.webRoot!.origin } } : {}),
      });
    });
    if (spec.static?.root?.startsWith('/')) x.checkPath(spec.static.root, x.at('/spec/static/root'));
  },
};
