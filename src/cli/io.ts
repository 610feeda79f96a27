// Where the CLI writes: the process's stdout and stderr, or a test's buffers.
// Kept apart from the command modules so `nstool --version` loads nothing else.

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Bytes as they are (a container's log); stdout() of their UTF-8 text when absent. */
  stdoutBytes?: (b: Uint8Array) => void;
  stderrBytes?: (b: Uint8Array) => void;
  /** stdout / stderr is a terminal: lists get a header row, logs have control characters escaped. */
  isTTY?: boolean;
  stderrIsTTY?: boolean;
  /** The terminal's width, for help text. */
  columns?: number;
}

export const processIo: Io = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  stdoutBytes: (b) => void process.stdout.write(b),
  stderrBytes: (b) => void process.stderr.write(b),
  get isTTY() {
    return process.stdout.isTTY === true;
  },
  get stderrIsTTY() {
    return process.stderr.isTTY === true;
  },
  get columns() {
    return process.stdout.isTTY ? process.stdout.columns : undefined;
  },
};
