// The --json contract, command by command: every outcome is exactly one JSON
// document on stdout, wrong usage (commander's own errors included) is
// {"error": {code, ...}} with exit 2, a failure the same with exit 1.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { containerIdOf } from '../../src/sandbox/names.js';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { removeTree, traversableTempDir } from '../helpers/rootfs.js';

const P = testPrefix('clijson');
trackLeaks(P);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

interface Run {
  code: number;
  out: string;
  err: string;
}

/** `nstool ARGV` in this process, as bin/nstool.js runs it; the hook's stdin is empty. */
async function nstool(argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io = { stdout: (s: string) => void (out += s), stderr: (s: string) => void (err += s), readStdin: async () => '' };
  const code = await main(argv, io);
  return { code, out, err };
}

/** The one document on stdout (JSON.parse refuses anything around or after it). */
function doc(r: Run): Record<string, unknown> {
  expect(r.out.trimStart().startsWith('{') || r.out.trimStart().startsWith('['), r.out).toBe(true);
  return JSON.parse(r.out) as Record<string, unknown>;
}

function expectError(r: Run, exit: number, code?: string): void {
  expect(r.code, `${r.out}\n${r.err}`).toBe(exit);
  const e = doc(r)['error'] as { code?: unknown; message?: unknown } | undefined;
  expect(typeof e?.code, r.out).toBe('string');
  expect(typeof e?.message).toBe('string');
  if (code) expect(e?.code, r.out).toBe(code);
}

describeRoot('nstool --json: one document for every outcome', () => {
  let tmp: string;
  let file: string;
  let loop: string;
  let garbage: string;
  let sb: string[];
  beforeAll(() => {
    tmp = traversableTempDir(P);
    file = path.join(tmp, 'file');
    writeFileSync(file, 'not a pin\n');
    loop = path.join(tmp, 'loop');
    symlinkSync(loop, loop);
    garbage = path.join(tmp, 'garbage-state');
    mkdirSync(garbage, { mode: 0o700 });
    writeFileSync(path.join(garbage, 'torn.json'), '{"version": 1, "id": ');
    sb = [
      '--state-dir', path.join(tmp, 'state'),
      '--bundle-dir', path.join(tmp, 'bundles'),
      '--pin-dir', path.join(tmp, 'netns'),
      '--userns-pin-dir', path.join(tmp, 'userns'),
      '--cni-cache-dir', path.join(tmp, 'cni'),
      '--runtime-root', path.join(tmp, 'runc'),
    ];
  });
  afterAll(() => removeTree(tmp));

  // [argv, exit, code?] for wrong usage of every command.
  const usage = (): Array<[string[], string?]> => [
    [['--bogus', '--json'], 'ERR_PARSE_ARGS_UNKNOWN_OPTION'],
    [['no-such-command', '--json'], 'ERR_NSTOOL_UNKNOWN_COMMAND'],
    [['create-pod-netns', '--setgroups', 'sometimes', '--json'], 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'],
    [['create-pod-netns', `${P}-u`, '--json']], // no map
    [['delete', '--json'], 'ERR_MISSING_ARGS'],
    [['list', '--bogus', '--json'], 'ERR_PARSE_ARGS_UNKNOWN_OPTION'],
    [['inspect', 'a', 'b', '--json'], 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'],
    [['exec', 'x', '--timeout', 'soon', '--json', '--', 'true'], 'ERR_INVALID_ARG_VALUE'],
    [['exec', '--json'], 'ERR_MISSING_ARGS'],
    [['spec', '--rootfs', '/', '--json', '--', 'true'], 'ERR_MISSING_ARGS'],
    [['spec', '--netns', 'x', '--json', '--', 'true'], 'ERR_MISSING_OPTION'],
    [['run-pod', '--rootfs', '/', '--sandbox', 'x', '--json', '--', 'true'], 'ERR_MISSING_OPTION'],
    [['rm-pod', '--json'], 'ERR_MISSING_ARGS'],
    [['logs', 'x', '-f', '--json'], 'ERR_NSTOOL_USAGE'],
    [['logs', '../x', '--json'], 'ERR_INVALID_ARG_VALUE'],
    [['sandbox', 'create', `${P}-s`, '--no-pause', '--rootfs', tmp, '--no-network', ...sb, '--json']],
    [['sandbox', 'create', 'bad/id', '--rootfs', tmp, '--no-network', ...sb, '--json'], 'ERR_INVALID_ARG_VALUE'],
    [['sandbox', 'delete', '--json'], 'ERR_MISSING_ARGS'],
    [['sandbox', 'list', '--state-dir', 'relative', '--json'], 'ERR_INVALID_ARG_VALUE'],
    [['sandbox', 'inspect', 'bad/id', '--json'], 'ERR_INVALID_ARG_VALUE'],
    [['sandbox', 'check', '--json'], 'ERR_MISSING_ARGS'],
    [['gc', '--state-dir', 'relative', '--json'], 'ERR_INVALID_ARG_VALUE'],
    [['hook', 'create-runtime', '--bogus', '--json'], 'ERR_PARSE_ARGS_UNKNOWN_OPTION'],
    [['hook', 'post-stop', '--bogus', '--json'], 'ERR_PARSE_ARGS_UNKNOWN_OPTION'],
  ];

  it('wrong usage of every command: {"error": {code}} and exit 2, also from commander', async () => {
    for (const [argv, code] of usage()) {
      const r = await nstool(argv);
      expectError(r, 2, code);
      // What a person reads is on stderr, once.
      expect(r.err, argv.join(' ')).not.toBe('');
    }
  });

  it('a failure of every command: {"error": {code}} and exit 1', async () => {
    const cases: Array<[string[], string]> = [
      [['create-pod-netns', `${P}-f`, '--uidmap', '0:100000:65536', '--pin-dir', path.join(file, 'sub'), '--json'], 'ENOTDIR'],
      [['delete', file, '--json'], 'ENOTEMPTY'],
      [['list', '--pin-dir', file, '--json'], 'ENOTDIR'],
      [['inspect', file, '--json'], 'EINVAL'],
      [['exec', path.join(tmp, 'none'), '--json', '--', 'true'], 'ENOENT'],
      [['spec', '--netns', file, '--rootfs', tmp, '--json', '--', 'true'], 'EINVAL'],
      [['spec', '--sandbox', `${P}-none`, '--sandbox-state-dir', path.join(tmp, 'state'), '--rootfs', tmp, '--json', '--', 'true'], 'ENOENT'],
      [['run-pod', file, '--rootfs', tmp, '--state-dir', path.join(tmp, 'containers'), '--json', '--', 'true'], 'EINVAL'],
      [['rm-pod', `${P}-c`, '--state-dir', path.join(tmp, 'containers'), '--runtime', path.join(tmp, 'no-runc'), '--json'], 'ENOENT'],
      [['logs', `${P}-c`, '--state-dir', path.join(tmp, 'containers'), '--json'], 'ENOENT'],
      [['sandbox', 'create', `${P}-s`, '--rootfs', path.join(tmp, 'no-rootfs'), '--no-network', ...sb, '--json'], 'ENOENT'],
      [['sandbox', 'delete', 'torn', '--state-dir', garbage, '--json'], 'ERR_NSTOOL_STATE'],
      [['sandbox', 'list', '--state-dir', loop, '--json'], 'ERR_NSTOOL_STATE_DIR'],
      [['sandbox', 'inspect', 'torn', '--state-dir', garbage, '--json'], 'ERR_NSTOOL_STATE'],
      [['sandbox', 'check', `${P}-none`, ...sb, '--json'], 'ENOENT'],
      [['sandbox', 'check', 'torn', '--state-dir', garbage, '--json'], 'ERR_NSTOOL_STATE'],
      [['hook', 'create-runtime', '--state', path.join(tmp, 'no-state'), '--json'], 'ENOENT'],
    ];
    for (const [argv, code] of cases) expectError(await nstool(argv), 1, code);
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(P))).toEqual([]);
  });

  it('gc that cannot remove something: one error document holding every action', async () => {
    // A file with content where this instance's pin would be: gc must not remove it, and says so.
    const stateDir = path.join(tmp, 'gc-state');
    const pinDir = path.join(tmp, 'gc-netns');
    mkdirSync(pinDir);
    const name = containerIdOf('x', { stateDir });
    writeFileSync(path.join(pinDir, name), 'content');
    const r = await nstool(['gc', '--state-dir', stateDir, '--pin-dir', pinDir, '--userns-pin-dir', path.join(tmp, 'gc-userns'), '--bundle-dir', path.join(tmp, 'gc-b'), '--cni-cache-dir', path.join(tmp, 'gc-cni'), '--json']);
    expectError(r, 1, 'ERR_NSTOOL_GC');
    const actions = (doc(r)['error'] as { actions: Array<{ target: string; error?: string }> }).actions;
    expect(actions.find((a) => a.target === path.join(pinDir, name))?.error).toBeTruthy();
  });

  it('post-stop never fails: its failure is a document with exit 0', async () => {
    const r = await nstool(['hook', 'post-stop', '--state', path.join(tmp, 'no-state'), '--json']);
    expect(r.code).toBe(0);
    expect(doc(r)).toMatchObject({ stage: 'post-stop', error: { code: 'ENOENT' } });
  });

  it('--help and --version with --json are documents too', async () => {
    expect(doc(await nstool(['--version', '--json']))).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    for (const argv of [['--help', '--json'], ['sandbox', 'create', '--help', '--json'], ['help', 'logs', '--json']]) {
      const r = await nstool(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(doc(r)['help']).toMatch(/^Usage: nstool/);
    }
  });

  it('spawned as a user runs it: stdout holds the one document and nothing else', () => {
    for (const [argv, exit] of [
      [['list', '--bogus', '--json'], 2],
      [['logs', `${P}-c`, '--state-dir', path.join(tmp, 'containers'), '--json'], 1],
    ] as Array<[string[], number]>) {
      const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', timeout: 30_000 });
      expectError({ code: r.status!, out: r.stdout, err: r.stderr }, exit);
    }
    const ok = spawnSync(process.execPath, [BIN, 'list', '--pin-dir', path.join(tmp, 'empty'), '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual([]);
  });
});

describe('wantsJson', () => {
  it('takes --json only before --: after it the words are the command\'s', async () => {
    const { wantsJson } = await import('../../src/cli/program.js');
    expect(wantsJson(['list', '--json'])).toBe(true);
    expect(wantsJson(['exec', 'x', '--', 'tool', '--json'])).toBe(false);
  });
});
