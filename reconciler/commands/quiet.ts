// -q/--quiet, as eslint --quiet and git -q mean it: stderr carries errors only
// (no waiting-for-the-lock notes, no progress, no warnings), and text output
// leaves out what only says all went well. The data a command was asked for (a
// plan, a JSON document, the list of runs) is still printed on stdout.

let quiet = false;

export function setQuiet(on: boolean): void {
  quiet = on;
}

export function isQuiet(): boolean {
  return quiet;
}

/** A line for whoever is watching (waiting for the lock, a run recovered first): on stderr, unless -q. */
export function note(text: string): void {
  if (!quiet) process.stderr.write(`hostkit: ${text}\n`);
}
