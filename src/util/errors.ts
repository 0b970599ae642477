// One error type for what the user can fix (bad topology, missing tool, lab already up):
// the CLI prints it with its hint and exits 2. Anything else is a bug or a system failure (exit 1).
export class UserError extends Error {
  readonly hint?: string;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UserError';
    this.hint = hint;
  }
}

/** A command the lab ran failed; carries the command line and its stderr for the user. */
export class CommandError extends Error {
  constructor(readonly command: string, readonly stderr: string, readonly exitCode?: number) {
    super(`command failed (exit ${exitCode ?? '?'}): ${command}\n${stderr.trim()}`);
    this.name = 'CommandError';
  }
}
