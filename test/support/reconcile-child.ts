// A reconciler in its own process, for crash tests: it applies a repository to
// a booted test host and, when asked, stops dead at a chosen point (before the
// first `systemctl daemon-reload`, i.e. after unit files were written and
// before any restart; or before `nginx -t`, after site files were written and
// before any reload) and says so on stdout, so the test can SIGKILL it there.
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost } from '../../reconciler/engine.js';
import { NspawnHost } from '../../reconciler/hosts/nspawn.js';
import type { ExecOptions, Host } from '../../reconciler/hosts/types.js';

const [repoDir, hostName, leaderPid, machine, stopAt] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const real = new NspawnHost({ leaderPid: Number(leaderPid), machine });

const host: Host = Object.assign(Object.create(real) as Host, {
  exec: async (file: string, args: readonly string[], options?: ExecOptions) => {
    if (stopAt === 'before-daemon-reload' && file === 'systemctl' && args[0] === 'daemon-reload') {
      process.stdout.write('HOSTKIT-CHILD: stopped before daemon-reload\n');
      await new Promise(() => undefined); // wait here until killed
    }
    if (stopAt === 'before-nginx-test' && file === 'nginx' && args[0] === '-t') {
      process.stdout.write('HOSTKIT-CHILD: stopped before nginx -t\n');
      await new Promise(() => undefined);
    }
    return real.exec(file, args, options);
  },
});

const outcome = await reconcileHost({ repoDir, hostName, host, dryRun: false, log: silentLogger(), env: process.env });
process.stdout.write(`HOSTKIT-CHILD: ${outcome.stage === 'applied' ? outcome.result.status : outcome.stage}\n`);
