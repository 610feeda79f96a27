// Runs before every test file: fail (not skip) root-only suites under CI.
export {};
