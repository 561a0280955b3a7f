import { error, type Diagnostic } from '../core/diagnostics.js';
import { addressClass, bindProblem, headerNameProblem } from '../core/strict-values.js';
import { placedOn } from './expand.js';
import { toPointer } from './source-map.js';
import type { HostManifest, Manifest, ProjectManifest } from './types.js';

// Strict values that need more than one manifest to judge (a bind address
// against the Host's declared addresses) or a list too long for a schema
// pattern (response header names). The drivers check the same again before
// rendering (systemd/render.ts, nginx/validate.ts).
export function checkValues(manifests: readonly Manifest[]): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const hosts = manifests.filter((m): m is Manifest<HostManifest> => m.kind === 'Host');
  for (const h of hosts) {
    (h.value.spec?.addresses ?? []).forEach((address, i) => {
      const cls = addressClass(address);
      if (cls !== 'unicast')
        diagnostics.push(
          error(
            'address not allowed',
            `spec.addresses ${address} is a ${cls} address; list the machine's own unicast addresses (loopback needs no listing)`,
            h.source.locate(`/spec/addresses/${i}`),
          ),
        );
    });
  }
  for (const m of manifests) {
    if (m.kind !== 'Project') continue;
    const spec = (m.value as ProjectManifest).spec;
    const bind = spec.service?.bind;
    if (bind !== undefined) {
      const placed = hosts.filter((h) => placedOn(spec.placement, { name: h.name, labels: h.value.metadata.labels ?? {} }));
      // A bind must suit every host the project runs on; placed nowhere, only loopback and all-addresses suit.
      const problem = (placed.length > 0 ? placed : [undefined]).map((h) => bindProblem(bind, h?.value.spec?.addresses ?? [])).find((p) => p !== undefined);
      if (problem)
        diagnostics.push(
          error(
            'address not allowed',
            `spec.service.bind ${problem}; a service may bind loopback (127.0.0.1, ::1), all addresses (0.0.0.0, ::) or an address the Host lists in spec.addresses`,
            m.source.locate('/spec/service/bind'),
          ),
        );
    }
    (spec.domains ?? []).forEach((d, i) => {
      for (const name of Object.keys(d.responseHeaders ?? {})) {
        const problem = headerNameProblem(name);
        if (problem)
          diagnostics.push(
            error(
              'response header not allowed',
              `spec.domains.${i}.responseHeaders: ${problem}`,
              m.source.locate(toPointer(['spec', 'domains', i, 'responseHeaders', name]), true),
            ),
          );
      }
    });
  }
  return diagnostics;
}
