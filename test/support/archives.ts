import { buffer as collect } from 'node:stream/consumers';

/** A tar archive of `items`, made here (tar-stream): names exactly as given, `../x` and absolute ones included. */
export async function tarOf(items: { name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Promise<Buffer> {
  const { pack } = await import('tar-stream');
  const p = pack();
  for (const item of items) {
    const file = (item.type ?? 'file') === 'file';
    const body = item.body ?? '';
    await new Promise<void>((resolve, reject) =>
      p.entry(
        {
          name: item.name,
          type: item.type ?? 'file',
          mode: item.type === 'directory' ? 0o755 : 0o644,
          size: file ? body.length : 0,
          ...(item.linkname ? { linkname: item.linkname } : {}),
        },
        file ? body : undefined,
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  }
  p.finalize();
  return collect(p);
}
