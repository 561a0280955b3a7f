import { parseMode } from '../../manifests/primitive.js';
import type { ProjectPart } from '../manifest-types.js';
import type { FileSpec } from './spec.js';

// spec.files: root's, readable by the project's group, in its working directory.
export const projectFiles: ProjectPart = {
  name: 'files',
  expand(x) {
    (x.project.spec.files ?? []).forEach((f, i) => {
      const filePath = `${x.workingDirectory}/${f.name}`;
      x.reads.push(filePath);
      x.ids.files.push(
        x.add<FileSpec>(
          'file',
          filePath,
          { path: filePath, content: f.content, owner: 'root', group: x.user, mode: parseMode(f.mode, 0o640) },
          x.at(`/spec/files/${i}`),
          { dependsOn: [x.ids.directory] },
        ),
      );
    });
  },
};
