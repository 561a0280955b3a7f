// A Diagnostic is an expected problem reported as a value. `summary` is a fixed
// phrase (so diagnostics can be grouped and tested); `detail` is free text.
export type Severity = 'error' | 'warning';

export interface Location {
  file: string;
  line?: number;
  column?: number;
  /** JSON pointer into the manifest document, e.g. /spec/service/port */
  pointer?: string;
}

export interface Diagnostic {
  severity: Severity;
  summary: string;
  detail: string;
  location?: Location;
}

export function error(summary: string, detail: string, location?: Location): Diagnostic {
  return location ? { severity: 'error', summary, detail, location } : { severity: 'error', summary, detail };
}

export function warning(summary: string, detail: string, location?: Location): Diagnostic {
  return location ? { severity: 'warning', summary, detail, location } : { severity: 'warning', summary, detail };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

export function formatLocation(location: Location | undefined): string {
  if (!location) return 'hostkit';
  const parts = [location.file];
  if (location.line !== undefined) parts.push(String(location.line));
  if (location.line !== undefined && location.column !== undefined) parts.push(String(location.column));
  return parts.join(':');
}

// Sort by file, then line, then column: the order a person reads a repository in.
export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort((a, b) => {
    const fa = a.location?.file ?? '';
    const fb = b.location?.file ?? '';
    if (fa !== fb) return fa < fb ? -1 : 1;
    return (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0);
  });
}
