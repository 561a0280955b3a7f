// What a checkpoint resource is (checkpoint/DATABASE), as the backup folder's parts expand it.

export interface CheckpointSpec {
  database: string;
  /** The project whose database it is (absent for a PostgresDatabase manifest of its own). */
  project?: string;
  /** The database's resource: when the run creates it there is nothing to keep yet. */
  databaseId: string;
  /** Its owner role, for a database restored after it was dropped. */
  owner: string;
  /** The changes it is taken before: any of them pending in a run makes the run take it first. */
  guards: string[];
  /** database.restoreDataOnRollback: a failed run of the project restores the data too. */
  restoreDataOnRollback: boolean;
  /** The project's units: stopped while its data is restored. */
  units: string[];
}
