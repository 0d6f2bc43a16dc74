// Wiring of the operator. The reconcilers arrive with the operator issue (#7).
export async function main(_args: string[]): Promise<void> {
  process.stderr.write('mailfleet operator: the controllers are not part of this build yet (issue #7)\n');
  process.exitCode = 1;
}
