import { HostKitError } from '../../core/errors.js';
import { describeExec, type ExecOptions, type ExecResult, type Host } from '../../hosts/types.js';

// Run a command that must succeed; a non-zero exit becomes an error that names
// the command and carries the tail of its output.
export async function run(host: Host, file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  const result = await host.exec(file, args, options);
  if (result.exitCode !== 0) {
    throw new HostKitError('COMMAND_FAILED', describeExec(file, args, result), {
      data: { file, args, exitCode: result.exitCode, stderr: result.stderr.slice(-2000) },
    });
  }
  return result;
}
