import { defineConfig } from 'vitest/config';

// Two suites: fast unit tests beside the code (and under test/), and the
// real-host suite that boots a Debian host with systemd-nspawn (test/host/).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['reconciler/**/*.spec.ts', 'scripts/**/*.spec.ts', 'test/**/*.spec.ts'],
          exclude: ['test/host/**', 'node_modules/**', 'dist/**'],
          globalSetup: ['test/support/build.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          // The simulated fleet: many agent processes on this machine (npm run test:fleet; FLEET_AGENTS=N).
          name: 'fleet',
          include: ['test/fleet/**/*.test.ts'],
          globalSetup: ['test/support/build.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
      {
        test: {
          name: 'host',
          include: ['test/host/**/*.test.ts'],
          // The build gives crash tests a compiled reconciler to run (and kill) in a child process.
          globalSetup: ['test/support/build.ts', 'test/host/global-setup.ts'],
          // Each file boots its own host; two cores, so one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
