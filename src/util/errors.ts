/**
 * An error the user can fix: a bad flag, file, config, corpus or run folder. The command line prints
 * its message (no stack trace) and exits with its code; anything else is a defect and shows a stack.
 */
export class UserError extends Error {
  readonly exitCode: number = 2;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
