// An undo stack: each step registers its undo *before* the step that can
// partly allocate, and a failure undoes everything in reverse.
export interface Undo {
  what: string;
  run: () => Promise<void>;
}

export class RollbackError extends Error {
  constructor(
    readonly undo: string,
    cause: unknown,
  ) {
    super(`rollback of "${undo}" failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'RollbackError';
  }
}

export class Rollback {
  private readonly stack: Undo[] = [];

  push(what: string, run: () => Promise<void>): void {
    this.stack.push({ what, run });
  }

  /** Names of the undos still pending, oldest first. */
  pending(): string[] {
    return this.stack.map((u) => u.what);
  }

  /**
   * Runs the undos newest first. Stops at the first that fails, leaving it
   * and the older ones pending (the caller persists them for gc), and
   * returns the failures.
   */
  async unwind(): Promise<RollbackError[]> {
    while (this.stack.length > 0) {
      const u = this.stack[this.stack.length - 1]!;
      try {
        await u.run();
      } catch (err) {
        return [new RollbackError(u.what, err)];
      }
      this.stack.pop();
    }
    return [];
  }
}
