import { execa } from 'execa';

// Unit tests that run the real `hostkit` binary need an up-to-date build.
export default async function setup(): Promise<void> {
  await execa('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
}
