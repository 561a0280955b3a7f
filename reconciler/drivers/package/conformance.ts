import { idsOf, type ConformanceFixture, type Sizes } from '../../../test/support/conformance.js';
import { FakeApt } from '../../../test/support/fake-apt.js';
import { FakeHost } from '../../hosts/fake.js';
import type { Host } from '../../hosts/types.js';

// One static Project declaring `count` packages its Host grants it, each a small
// package of a local apt repository (the first one replaced by another name for
// the update). On a booted host, prepare builds those packages with dpkg-deb into
// a flat repository on the host itself and makes it the host's only apt source
// (a test host has no network); on a FakeHost, FakeApt offers them.
const MAX = 20;
const project = (set: string) => `ck-${set}-pkgs`;
const names = (set: string) => [...Array.from({ length: MAX }, (_, i) => `hostkit-ck-${set}-p${i + 1}`), `hostkit-ck-${set}-p1b`];
const declared = (set: string, count: number, changed?: boolean) =>
  names(set)
    .slice(0, count)
    .map((n, i) => (changed && i === 0 ? `${n}b` : n));
const KEPT = 'README, Packages and apt sources: every restore keeps what a run installed (purging can take data with it), reported as not undone';
const kept = (changed: boolean) => ({
  reason: KEPT,
  resources: (s: Sizes) => (changed ? [`package/hostkit-ck-${s.set}-p1b`] : idsOf('package', s.count, (i) => `hostkit-ck-${s.set}-p${i}`)),
  paths: () => [],
  asApplied: true,
});

const REPO = '/srv/hostkit-ck-apt';

// A flat repository of the set's packages (Packages and Release written by hand: no apt-utils on the host), the host's only source.
const BUILD = `set -eu
repo=${REPO}; mkdir -p "$repo"; cd "$repo"
for name in "$@"; do
  [ -e "$name.deb" ] && continue
  d=$(mktemp -d); mkdir "$d/DEBIAN"
  printf 'Package: %s\\nVersion: 1.0-1\\nArchitecture: all\\nMaintainer: HostKit tests <ck@hostkit.invalid>\\nDescription: a conformance fixture package\\n' "$name" >"$d/DEBIAN/control"
  dpkg-deb --build --root-owner-group -Zgzip "$d" "$name.deb" >/dev/null; rm -rf "$d"
done
: >Packages
for f in *.deb; do
  dpkg-deb -f "$f" >>Packages
  printf 'Filename: ./%s\\nSize: %s\\nSHA256: %s\\n\\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" >>Packages
done
printf 'Date: %s\\nSHA256:\\n %s %s Packages\\n' "$(date -Ru)" "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)" >Release
echo "deb [trusted=yes] file:$repo ./" >/etc/apt/sources.list.d/hostkit-ck-fixture.list
# The aptsource fixture's sources (left by its targets) name a host that does not exist.
rm -f /etc/apt/sources.list.d/hostkit-ck-*.sources
if [ -s /etc/apt/sources.list ]; then mv /etc/apt/sources.list /etc/apt/sources.list.ck-offline; fi
`;

async function localRepository(host: Host, set: string): Promise<void> {
  if (host instanceof FakeHost) return;
  const r = await host.exec('sh', ['-c', BUILD, 'sh', ...names(set)]);
  if (r.exitCode !== 0) throw new Error(`building the fixture's apt repository failed: ${r.stderr}`);
}

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'package',
    host: (set) => ({ policy: { grants: { [project(set)]: { packages: names(set) } } } }),
    declare: (set, count, changed) => [{ kind: 'Project', name: project(set), spec: { runtime: 'static', packages: declared(set, count, changed) } }],
    prepare: localRepository,
    paths: () => [],
    rollback: { create: kept(false), update: kept(true) },
    fake: (host) => {
      // Every target on the fake host is set "a" (test/conformance.spec.ts).
      new FakeApt(host, Object.fromEntries(names('a').map((n) => [n, ['1.0-1']])));
      return {};
    },
  },
];
