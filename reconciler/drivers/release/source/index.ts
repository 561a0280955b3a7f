// Fetching a project's source onto its host (spec.source): a git repository
// cached per project, or an archive checked by its sha256 and by its entries.
// Everything runs on the host through Host.exec as the project's user;
// credentials reach git only through files (credentials.ts), never an
// argument, a log line or an error.
export type { ArchiveSourceSpec, GitSourceSpec, ResolvedRef, SourceAccess } from './types.js';
export { cachedCommit, commitSubjects, fetchCommit, isCommitId, resolveRefs } from './git.js';
export { exportCommit } from './export.js';
export { unpackArchive } from './archive.js';
export { cacheDirectory, sourcesDirectory } from './cache.js';
export { displayUrl } from './urls.js';
