// Which machine a Host manifest names: its metadata.name or one of its
// spec.hostnames, against the hostname the machine itself reports.

/** Whether `names` (lower case) include the machine's hostname or its part before the first dot. */
export function namesMachine(names: readonly string[], machine: string): boolean {
  const m = machine.toLowerCase();
  return names.includes(m) || names.includes(m.split('.')[0]!);
}
