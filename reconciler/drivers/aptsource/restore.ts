import type { Change } from '../../diff/model.js';
import { backupPath, fileRestore } from '../shared/undo.js';
import type { ChangeJournal } from '../types.js';
import type { AptSourceOp } from './index.js';

// The undo of an apt source change: the run journal backs up each file it writes or
// removes (the source and its key), as the file driver's does; a restore puts them
// back or removes what the run created. The apt lists are not updated back: the next
// install updates them first (the sources differ from those of the last update).

type AptSourceChange = Change<unknown, unknown, unknown, AptSourceOp>;

export const aptSourceRestore = {
  ...fileRestore<AptSourceChange>(() => undefined),
  // Both files it changes, each once (a file's restore is the journal's).
  async backup(change: AptSourceChange, journal: ChangeJournal) {
    for (const p of new Set(change.ops.map((o) => o.path))) await backupPath(journal, p);
  },
};
