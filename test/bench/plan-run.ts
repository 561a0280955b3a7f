// One measured process: load + validate + expand + observe + plan for one
// host of a generated repository, against the recording fake host.
// It starts the way the hostkit CLI does (V8 compile cache on).
import module from 'node:module';
module.enableCompileCache?.();
import { silentLogger } from '../../reconciler/core/log.js';
import { planHost } from '../../reconciler/diff/plan.js';
import { FakeHost } from '../../reconciler/hosts/fake.js';
import { validateRepository } from '../../reconciler/manifests/index.js';

const [repoDir, hostName] = process.argv.slice(2) as [string, string];
const t0 = performance.now();
const cacheDir = process.env.HOSTKIT_CACHE_DIR;
const repo = await validateRepository(repoDir, cacheDir ? { cacheDir } : {});
const t1 = performance.now();
if (!repo.valid) {
  process.stderr.write(JSON.stringify(repo.diagnostics.slice(0, 5), null, 2));
  process.exit(1);
}
const planned = await planHost({
  manifests: repo.manifests,
  hostName,
  host: new FakeHost(),
  mode: 'plan',
  log: silentLogger(),
  repository: repoDir,
  env: { BENCH_API_KEY: 'bench-secret-value' },
});
const t2 = performance.now();
process.stdout.write(
  JSON.stringify({
    manifests: repo.manifests.length,
    resources: planned.resources.length,
    changes: planned.plan.changes.length,
    validateMs: Math.round(t1 - t0),
    planMs: Math.round(t2 - t1),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }) + '\n',
);
