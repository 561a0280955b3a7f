// Colour only for a terminal that wants it: NO_COLOR, TERM=dumb or a non-TTY turn it off.
export interface Style {
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  magenta(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

export const COLOR: Style = {
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  red: wrap(31, 39),
  magenta: wrap(35, 39),
  dim: wrap(2, 22),
  bold: wrap(1, 22),
};

const id = (s: string) => s;
export const PLAIN: Style = { green: id, yellow: id, red: id, magenta: id, dim: id, bold: id };

export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}
