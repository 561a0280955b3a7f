// The one way tests write manifests: as objects, serialised with the yaml package
// the way the README writes them (metadata and spec.placement on one line each, a
// field a line after that), so a test names what differs instead of editing YAML text.
import { Document, isCollection } from 'yaml';

/** A manifest as a test declares it. */
export interface ManifestInput {
  kind: string;
  name: string;
  /** spec.placement: the hosts it is placed on, or a label selector. A Host has none. */
  on?: readonly string[] | { matchLabels: Record<string, string> };
  /** metadata.project: a primitive that a project declares. */
  project?: string;
  labels?: Record<string, string>;
  dependsOn?: readonly string[];
  spec?: Record<string, unknown>;
}

/** The manifest as it parses: apiVersion, kind, metadata, then its spec with the placement first. */
export function manifest(m: ManifestInput): { apiVersion: 'hostkit.dev/v1'; kind: string; metadata: Record<string, unknown>; spec?: Record<string, unknown> } {
  const metadata = {
    name: m.name,
    ...(m.project ? { project: m.project } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    ...(m.dependsOn ? { dependsOn: m.dependsOn } : {}),
  };
  const placement = m.on === undefined ? undefined : 'matchLabels' in m.on ? { selector: m.on } : { hosts: m.on };
  const spec = placement ? { placement, ...m.spec } : m.spec;
  return { apiVersion: 'hostkit.dev/v1', kind: m.kind, metadata, ...(spec ? { spec } : {}) };
}

/** The manifests as one YAML file: a document each, `---` between them. */
export function manifestYaml(...manifests: readonly ManifestInput[]): string {
  return manifests
    .map((m) => {
      const doc = new Document(manifest(m));
      for (const path of [['metadata'], ['spec', 'placement']]) {
        const node = doc.getIn(path, true);
        if (isCollection(node)) node.flow = true;
      }
      return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
    })
    .join('---\n');
}
