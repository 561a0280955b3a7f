// Loaded with `node --import` ahead of a command: when the process exits, the URL
// of every module it loaded is written, one a line, to the file named by
// HOSTKIT_LOADED_MODULES (for tests of what a command must not load).
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.HOSTKIT_LOADED_MODULES;
if (out) {
  const loaded: string[] = [];
  registerHooks({
    load(url, context, next) {
      loaded.push(url);
      return next(url, context);
    },
  });
  process.on('exit', () => writeFileSync(out, loaded.join('\n') + '\n'));
}
