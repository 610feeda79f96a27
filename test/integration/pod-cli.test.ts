// nstool spec / run-pod / rm-pod through commander, against real runc.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseMountFlag, registerPodCommands } from '../../src/cli/pod-commands.js';
import { createPodNetns, deletePodNetns, PodNetns } from '../../src/netns.js';
import { RuncClient } from '../../src/runc/client.js';
import { describeRoot } from '../helpers/env.js';
import { mountPoints, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { buildBusyboxRootfs, removeTree, traversableTempDir } from '../helpers/rootfs.js';

const prefix = testPrefix('podcli');
trackLeaks(prefix);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

async function cli(args: string[], extra: { isTTY?: boolean; bytes?: Buffer[] } = {}): Promise<string> {
  let out = '';
  const io = {
    stdout: (s: string) => void (out += s),
    stderr: (s: string) => void (out += s),
    ...(extra.isTTY ? { isTTY: true, stderrIsTTY: true } : {}),
    ...(extra.bytes ? { stdoutBytes: (b: Uint8Array) => void extra.bytes!.push(Buffer.from(b)), stderrBytes: (b: Uint8Array) => void extra.bytes!.push(Buffer.from(b)) } : {}),
  };
  const program = new Command('nstool').exitOverride();
  registerPodCommands(program, io);
  await program.parseAsync(args, { from: 'user' });
  return out;
}

it('parses --mount SRC:DST[:opts]', () => {
  expect(parseMountFlag('/a:/b')).toEqual({ source: '/a', destination: '/b' });
  expect(parseMountFlag('/a:/b:ro,idmap,rbind')).toEqual({ source: '/a', destination: '/b', readonly: true, idmap: true, recursive: true });
  for (const bad of ['/a', 'a:/b', '/a:/b:rw,zap', '/a:/b:ro:x', ':/b']) {
    expect(() => parseMountFlag(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  }
});

describeRoot('pod commands', () => {
  let dir: string;
  let rootfs: string;
  let pod: PodNetns;
  let runcRoot: string;
  let stateDir: string;

  beforeAll(async () => {
    dir = traversableTempDir(prefix);
    rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
    mkdirSync(path.join(dir, 'vol'));
    runcRoot = path.join(dir, 'runc-root');
    stateDir = path.join(dir, 'state');
    pod = await createPodNetns({ name: `${prefix}-pod`, uidMap: '0:200000:65536', pinUserns: true });
  });

  afterAll(async () => {
    const runc = new RuncClient({ root: runcRoot, logDir: dir });
    await cli(['rm-pod', `${prefix}-c`, `${prefix}-v`, `${prefix}-l`, `${prefix}-f`, '--state-dir', stateDir, '--runtime-root', runcRoot]).catch(() => {});
    const left = await runc.list().catch(() => []);
    if (pod) await deletePodNetns(pod.name);
    removeTree(dir);
    expect(left).toEqual([]);
  });

  it('spec prints a config joining the pod namespaces with their maps', async () => {
    const spec = JSON.parse(await cli(['spec', '--netns', pod.name, '--rootfs', rootfs, '--mount', `${dir}/vol:/vol:ro,idmap`, '--', 'sleep', '5'])) as {
      process: { args: string[] };
      linux: { namespaces: Array<{ type: string; path?: string }>; uidMappings: unknown };
      mounts: Array<{ destination: string; uidMappings?: unknown; options?: string[] }>;
    };
    expect(spec.process.args).toEqual(['sleep', '5']);
    expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: pod.path });
    expect(spec.linux.namespaces).toContainEqual({ type: 'user', path: pod.usernsPath });
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
    const vol = spec.mounts.find((m) => m.destination === '/vol')!;
    expect(vol.uidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
    expect(vol.options).toContain('ro');

    const bundle = path.join(dir, 'b');
    const out = JSON.parse(await cli(['spec', '--netns', pod.name, '--rootfs', rootfs, '--bundle', bundle, '--json', '--', 'true'])) as { config: string };
    expect(out.config).toBe(path.join(bundle, 'config.json'));
    expect(out).toMatchObject({ netns: { path: pod.path, inode: pod.netnsInode }, userns: { path: pod.usernsPath, inode: pod.usernsInode } });
    expect(JSON.parse(readFileSync(out.config, 'utf8')).process.args).toEqual(['true']);
  });

  it('run-pod starts a container in the pod, rm-pod removes every trace', async () => {
    const id = `${prefix}-c`;
    const rec = JSON.parse(
      await cli(['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--json', '--', 'sleep', '1000']),
    ) as { id: string; pid: number; bundle: string; staged: string[] };
    expect(rec.id).toBe(id);
    expect(rec).toMatchObject({ netns: { path: pod.path }, userns: { path: pod.usernsPath, pinned: false }, netnsPath: pod.path, usernsPath: pod.usernsPath });
    const runc = new RuncClient({ root: runcRoot, logDir: dir });
    expect(await runc.state(id)).toMatchObject({ status: 'running', pid: rec.pid });
    expect(mountPoints()).toContain(path.join(stateDir, id, 'rootfs'));

    const removed = JSON.parse(await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot, '--json'])) as unknown;
    expect(removed).toEqual([{ id, existed: true }]);
    expect(await runc.list()).toEqual([]);
    expect(existsSync(rec.bundle)).toBe(false);
    expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
  });

  it('run-pod refuses a writable idmap volume other users can reach unless --allow-unsafe-idmap-volumes', async () => {
    const id = `${prefix}-v`;
    const args = ['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--mount', `${dir}/vol:/vol:idmap`];
    await expect(cli([...args, '--', 'sleep', '1000'])).rejects.toMatchObject({ code: 'ERR_NSTOOL_VOLUME_UNSAFE', path: `${dir}/vol` });
    expect(existsSync(path.join(stateDir, id))).toBe(false);
    // Read-only is fine as it is; writable only with the opt-in.
    const ro = ['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir, '--mount', `${dir}/vol:/vol:ro,idmap`];
    expect(JSON.parse(await cli([...ro, '--json', '--', 'sleep', '1000']))).toMatchObject({ id });
    await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot]);
    expect(JSON.parse(await cli([...args, '--allow-unsafe-idmap-volumes', '--json', '--', 'sleep', '1000']))).toMatchObject({ id });
    await cli(['rm-pod', id, '--state-dir', stateDir, '--runtime-root', runcRoot]);
    expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
  });

  const runArgs = (id: string) => ['run-pod', pod.name, '--rootfs', rootfs, '--id', id, '--runtime-root', runcRoot, '--state-dir', stateDir];
  const logArgs = (): string[] => ['--state-dir', stateDir, '--runtime-root', runcRoot];

  /** Bounded wait until the container's stdout log holds TEXT. */
  async function logged(id: string, text: string): Promise<void> {
    const f = path.join(stateDir, id, 'stdout.log');
    for (let n = 0; n < 200 && !readFileSync(f, 'utf8').includes(text); n++) await new Promise((r) => setTimeout(r, 25));
    expect(readFileSync(f, 'utf8')).toContain(text);
  }

  it('logs prints what the container wrote: bytes as they are when piped, control characters escaped on a terminal', async () => {
    const id = `${prefix}-l`;
    await cli([...runArgs(id), '--', 'sh', '-c', 'echo out1; echo err1 >&2; printf "\\033[31mred\\n"; echo done; exec sleep 1000']);
    try {
      await logged(id, 'done');
      const bytes: Buffer[] = [];
      await cli(['logs', id, ...logArgs()], { bytes });
      expect(Buffer.concat(bytes).toString()).toBe('out1\n\x1b[31mred\ndone\nerr1\n');
      const tty = await cli(['logs', id, ...logArgs()], { isTTY: true });
      expect(tty).toBe('out1\n\\u001b[31mred\ndone\nerr1\n');
      expect(tty).not.toContain('\x1b');
      expect(JSON.parse(await cli(['logs', id, ...logArgs(), '--json']))).toEqual({ id, stdout: 'out1\n\x1b[31mred\ndone\n', stderr: 'err1\n', truncated: false });

      // The attack: a link (or a FIFO) where a log should be; neither is followed or read.
      const secret = path.join(dir, 'secret');
      writeFileSync(secret, 'root-only-secret\n', { mode: 0o600 });
      const stderrLog = path.join(stateDir, id, 'stderr.log');
      rmSync(stderrLog);
      symlinkSync(secret, stderrLog);
      const linked = await cli(['logs', id, ...logArgs(), '--json']).catch((e: unknown) => e as { code?: string; message?: string });
      expect(linked).toMatchObject({ code: 'ELOOP' });
      rmSync(stderrLog);
      execFileSync('mkfifo', [stderrLog]);
      await expect(cli(['logs', id, ...logArgs()])).rejects.toMatchObject({ code: 'ERR_NSTOOL_LOG_FILE' });
    } finally {
      await cli(['rm-pod', id, ...logArgs()]);
    }
  });

  it('logs -f follows until the container stops, or until Ctrl-C', async () => {
    const id = `${prefix}-f`;
    await cli([...runArgs(id), '--', 'sh', '-c', 'echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two']);
    const follow = (): { child: ChildProcess; out: () => string; done: Promise<number | null> } => {
      let out = '';
      const child = spawn(process.execPath, [BIN, 'logs', id, '-f', ...logArgs()], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (b: Buffer) => void (out += b.toString()));
      const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      return { child, out: () => out, done };
    };
    const waitFor = async (f: () => string, text: string) => {
      for (let n = 0; n < 400 && !f().includes(text); n++) await new Promise((r) => setTimeout(r, 25));
      expect(f()).toContain(text);
    };
    try {
      // Ctrl-C ends a follow with exit 0.
      const a = follow();
      await waitFor(a.out, 'one\n');
      a.child.kill('SIGINT');
      expect(await a.done).toBe(0);
      // The container stopping ends it too, after the last of its output.
      const b = follow();
      await waitFor(b.out, 'one\n');
      execFileSync('runc', ['--root', runcRoot, 'exec', id, 'touch', '/tmp/go']);
      expect(await b.done).toBe(0);
      expect(b.out()).toBe('one\ntwo\n');
    } finally {
      await cli(['rm-pod', id, ...logArgs()]);
    }
  });
});
