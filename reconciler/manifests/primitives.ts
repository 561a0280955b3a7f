import { KINDS } from '../drivers/kinds.js';
import type { AnyPrimitive } from '../drivers/manifest-types.js';
import type { PrimitiveKind } from './types.js';

// The manifest kinds besides Host and Project, each declared by the driver folder
// that expands it (drivers/NAME/manifest.ts), in registry order (drivers/kinds.ts).
export const PRIMITIVES: ReadonlyMap<PrimitiveKind, AnyPrimitive> = new Map(
  KINDS.flatMap((k): readonly AnyPrimitive[] => ('manifests' in k ? k.manifests : [])).map((p) => [p.kind as PrimitiveKind, p]),
);

export const PRIMITIVE_KINDS: readonly PrimitiveKind[] = [...PRIMITIVES.keys()];

/** The definition of a schema-valid manifest's kind (validation admits only registered kinds). */
export function primitive(kind: string): AnyPrimitive {
  const found = PRIMITIVES.get(kind as PrimitiveKind);
  if (!found) throw new Error(`no driver declares the manifest kind ${kind}`);
  return found;
}
