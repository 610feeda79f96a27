// nstool spec | run-pod | rm-pod | logs: containers in a pod's pinned namespaces.
import { Command } from 'commander';
import { constants } from 'node:fs';
import { FileHandle, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { invalidArg, NstoolError } from '../errors.js';
import { validateContainerId } from '../names.js';
import { rootlessSpec, writeBundle } from '../oci/index.js';
import { currentMode } from '../rootless/mode.js';
import type { MountRequest } from '../oci/index.js';
import { DEFAULT_STATE_DIR, podSpec, podStateDir, readRecord, removePodContainer, runPodContainer } from '../pod/container.js';
import type { PodContainerRecord } from '../pod/container.js';
import { podUserns } from '../pod/userns.js';
import { RuncClient, RuncClientOptions } from '../runc/client.js';
import { isNotFound } from '../runc/error.js';
import { DEFAULT_STATE_DIR as SANDBOX_STATE_DIR } from '../sandbox/state.js';
import { showName } from '../show.js';
import { summary } from './catalog.js';
import { emit, Io, UsageError, withJson } from './context.js';
import { onSignals, testStepHook } from './sandbox-commands.js';
import { netnsOrSandbox, SandboxFlags, sandboxFlags } from './sandbox-ref.js';
import { containerView } from './views.js';

const MOUNT_FLAGS = new Set(['ro', 'rw', 'idmap', 'rbind']);

/** "SRC:DST[:ro,idmap,rbind]" to a mount request. */
export function parseMountFlag(text: string): MountRequest {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw invalidArg(`--mount "${text}" is not SRC:DST[:OPTIONS]`);
  const [source, destination, opts = ''] = parts as [string, string, string?];
  if (!path.isAbsolute(source) || !path.isAbsolute(destination)) throw invalidArg(`--mount "${text}": SRC and DST must be absolute paths`);
  const flags = opts.split(',').filter(Boolean);
  for (const f of flags) if (!MOUNT_FLAGS.has(f)) throw invalidArg(`--mount "${text}": unknown option "${f}" (known: ${[...MOUNT_FLAGS].join(', ')})`);
  const m: MountRequest = { source, destination };
  if (flags.includes('ro')) m.readonly = true;
  if (flags.includes('idmap')) m.idmap = true;
  if (flags.includes('rbind')) m.recursive = true;
  return m;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface RuntimeOpts {
  runtime?: string;
  runtimeRoot?: string;
  stateDir: string;
  json?: boolean;
}

function runtimeOptions(cmd: Command): Command {
  return cmd
    .option('--runtime <binary>', 'OCI runtime binary', 'runc')
    .option('--runtime-root <dir>', "runtime state dir (its --root; the runtime's default when omitted)")
    .option('--state-dir <dir>', 'where nstool keeps bundles', DEFAULT_STATE_DIR);
}

function runtimeOf(o: RuntimeOpts): RuncClientOptions {
  return { ...(o.runtime ? { binary: o.runtime } : {}), ...(o.runtimeRoot ? { root: path.resolve(o.runtimeRoot) } : {}) };
}

export function registerPodCommands(program: Command, io: Io): void {
  sandboxFlags(
    withJson(
      program
        .command('spec')
        .description(summary('spec'))
        .option('--netns <name|path>', 'the pod netns (its userns is pinned if it is not yet); or --sandbox')
        .requiredOption('--rootfs <dir>', 'root filesystem')
        .option('--mount <src:dst[:opts]>', 'bind mount; opts: ro, idmap, rbind (repeatable)', collect, [] as string[])
        .option('--bundle <dir>', 'write <dir>/config.json instead of printing it')
        .argument('<command...>', 'the command, after --'),
    ),
    SANDBOX_STATE_DIR,
  ).action(async (command: string[], o: SandboxFlags & { netns?: string; rootfs: string; mount: string[]; bundle?: string; json?: boolean }) => {
    const mounts = o.mount.map(parseMountFlag);
    const pins = await netnsOrSandbox(o, o.netns, '--netns');
    const pod = pins ? await podUserns(pins.netnsPath, pins) : await podUserns(o.netns!);
    const spec = podSpec({
      rootfs: path.resolve(o.rootfs),
      command,
      netnsPath: pod.netns.path,
      usernsPath: pod.usernsPath,
      uidMap: pod.netns.uidMap,
      gidMap: pod.netns.gidMap,
      mounts,
    });
    // Without root: the spec run-pod would hand the rootless runtime.
    if (currentMode() === 'rootless') rootlessSpec(spec, { rootfs: path.resolve(o.rootfs), readonlyRootfs: true, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
    if (!o.bundle) {
      io.stdout(`${JSON.stringify(spec, null, 2)}\n`);
      return;
    }
    const dir = path.resolve(o.bundle);
    // config.json carries the env: a bundle made here is root's alone.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = await writeBundle(dir, spec);
    const out = {
      config: file,
      netns: { path: pod.netns.path, inode: pod.netns.inode },
      userns: { path: pod.usernsPath, ...(pod.netns.owner ? { inode: pod.netns.owner.inode } : {}) },
      usernsPath: pod.usernsPath,
    };
    emit(io, o.json, out, () => file);
  });

  sandboxFlags(
    withJson(
      runtimeOptions(
        program
          .command('run-pod')
          .description(summary('run-pod'))
          .argument('[netns]', 'pod netns name or path (none with --sandbox)')
          .argument('[command...]', 'the command, after --')
          .requiredOption(
            '--rootfs <dir>',
            "root filesystem (as root: read-only and idmapped to the pod's root, under a writable overlay of the container's own; " +
              'without root: read-only, with tmpfs on /tmp, /run and /var/tmp)',
          )
          .option('--id <id>', 'container id (default: the netns name; required with --sandbox)')
          .option('--mount <src:dst[:opts]>', 'bind mount; opts: ro, idmap, rbind (repeatable)', collect, [] as string[])
          .option('--no-idmap-rootfs', 'hand the rootfs to the runtime as it is')
          .option(
            '--allow-unsafe-idmap-volumes',
            "allow writable idmap mounts whose source other host users can reach (the pod's root writes there as host root)",
          ),
      ),
    ),
    SANDBOX_STATE_DIR,
  ).action(
    async (
      first: string | undefined,
      rest: string[],
      o: RuntimeOpts & SandboxFlags & { rootfs: string; id?: string; mount: string[]; idmapRootfs: boolean; allowUnsafeIdmapVolumes?: boolean },
    ) => {
      // With --sandbox every operand is the command.
      const command = o.sandbox !== undefined && first !== undefined ? [first, ...rest] : rest;
      if (command.length === 0) throw new UsageError('give the command to run, after --', 'ERR_MISSING_ARGS');
      if (o.sandbox !== undefined && o.id === undefined) throw new UsageError('--sandbox needs --id: the sandbox\'s own container has its name', 'ERR_MISSING_OPTION');
      const mounts = o.mount.map(parseMountFlag);
      const pins = await netnsOrSandbox(o, o.sandbox !== undefined ? undefined : first, 'the pod netns');
      const netns = pins ? pins.netnsPath : first!;
      // The first SIGINT/SIGTERM removes what was made so far; a second exits at once (rm-pod finishes).
      const ac = new AbortController();
      const off = onSignals(ac);
      let rec: PodContainerRecord;
      try {
        const hook = testStepHook(ac.signal);
        rec = await runPodContainer({
        id: o.id ?? path.basename(netns),
        netns,
        ...(pins ? { pinDir: pins.pinDir, ...(pins.usernsPinDir ? { usernsPinDir: pins.usernsPinDir } : {}) } : {}),
        rootfs: path.resolve(o.rootfs),
        command,
        mounts,
        runtime: runtimeOf(o),
        stateDir: path.resolve(o.stateDir),
        idmapRootfs: o.idmapRootfs,
        allowUnsafeIdmapVolumes: o.allowUnsafeIdmapVolumes === true,
        signal: ac.signal,
        ...(hook ? { onStep: hook } : {}),
      });
      } finally {
        off();
      }
      emit(io, o.json, containerView(rec), () => `${rec.id} running (pid ${rec.pid ?? '?'}); output in ${rec.stdout} and ${rec.stderr} (\`nstool logs ${rec.id}\`)`);
    },
  );

  withJson(runtimeOptions(program.command('rm-pod').description(summary('rm-pod')).argument('<ids...>', 'container ids'))).action(async (ids: string[], o: RuntimeOpts) => {
    const out: Array<{ id: string; existed: boolean }> = [];
    for (const id of ids) {
      out.push(
        await removePodContainer(id, {
          stateDir: path.resolve(o.stateDir),
          ...(runtimeGiven(o) ? { runtime: runtimeOf(o) } : {}),
        }),
      );
    }
    emit(io, o.json, out, () => out.map((r) => `${r.id}: ${r.existed ? 'removed' : 'already gone'}`).join('\n'));
  });

  withJson(runtimeOptions(program.command('logs').description(summary('logs')).argument('<id>', 'container id (as run-pod made it)')))
    .option('-f, --follow', 'keep printing what it writes until it stops (or Ctrl-C)')
    .action(async (id: string, o: RuntimeOpts & { follow?: boolean }) => {
      if (o.follow && o.json) throw new UsageError('--follow prints as the container writes: it takes no --json');
      // Without root the default state dir stands for the user's own (podStateDir).
      const bundle = path.join(podStateDir(path.resolve(o.stateDir)), validateContainerId(id));
      // The record is checked (root's, naming files inside the bundle) before any path in it is used.
      const rec = await readRecord(bundle, id);
      if (!rec) {
        throw new NstoolError(`no container ${id} in ${showName(path.dirname(bundle))}`, {
          code: 'ENOENT',
          path: bundle,
          hint: 'give the --state-dir run-pod used; a bundle without a valid nstool record is not read',
        });
      }
      const files: FileHandle[] = [];
      try {
        for (const f of [rec.stdout, rec.stderr]) files.push(await openLog(f));
        if (o.json) {
          const [out, err] = await Promise.all(files.map((f) => readTail(f, LOG_JSON_MAX)));
          emit(io, true, { id, stdout: out!.text, stderr: err!.text, truncated: out!.truncated || err!.truncated }, () => '');
          return;
        }
        const streams: LogStream[] = [
          { fh: files[0]!, pos: 0, write: logWriter(io, 'stdout') },
          { fh: files[1]!, pos: 0, write: logWriter(io, 'stderr') },
        ];
        // Ctrl-C is caught before the first byte is printed: a caller that
        // signals after seeing output must get the follow's clean exit.
        const stop = o.follow ? new FollowStop() : undefined;
        try {
          for (const s of streams) await drain(s);
          if (stop) await follow(streams, new RuncClient(runtimeGiven(o) ? runtimeOf(o) : rec.runtime), id, stop);
        } finally {
          stop?.dispose();
        }
      } finally {
        await Promise.all(files.map((f) => f.close()));
      }
    });
}

function runtimeGiven(o: RuntimeOpts): boolean {
  return o.runtime !== 'runc' || o.runtimeRoot !== undefined;
}

// ---- logs ---------------------------------------------------------------

/** How much of each log --json holds (its end). */
const LOG_JSON_MAX = 16 << 20;
const FOLLOW_POLL_MS = 250;
/** Every this many polls, the runtime is asked whether the container still runs. */
const STATE_EVERY = 4;

interface LogStream {
  fh: FileHandle;
  pos: number;
  write: (b: Buffer) => void;
}

/** A log file of the bundle: never through a symbolic link, never anything but a regular file. */
async function openLog(p: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new NstoolError(`cannot open the log ${showName(p)}: ${(err as Error).message}`, {
      code,
      syscall: 'open',
      path: p,
      ...(code === 'ELOOP' ? { hint: 'a symbolic link stands where the log should be; nstool does not follow it' } : {}),
    });
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new NstoolError(`the log ${showName(p)} is not a regular file; it was not read`, { code: 'ERR_NSTOOL_LOG_FILE', path: p });
  }
  return fh;
}

async function readTail(fh: FileHandle, max: number): Promise<{ text: string; truncated: boolean }> {
  const size = (await fh.stat()).size;
  const start = Math.max(0, size - max);
  const buf = Buffer.alloc(size - start);
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return { text: buf.subarray(0, got).toString('utf8'), truncated: start > 0 };
}

/** Writes what S has past its position (from the start again if the file was cut short). */
async function drain(s: LogStream): Promise<void> {
  if ((await s.fh.stat()).size < s.pos) s.pos = 0;
  const buf = Buffer.alloc(64 << 10);
  for (;;) {
    const { bytesRead } = await s.fh.read(buf, 0, buf.length, s.pos);
    if (bytesRead === 0) return;
    s.pos += bytesRead;
    s.write(Buffer.from(buf.subarray(0, bytesRead)));
  }
}

// What a pod writes must not drive the operator's terminal: everything but
// newline and tab that could move the cursor, recolour or reorder is escaped.
const LOG_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const escapeControls = (s: string): string => s.replace(LOG_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Bytes as they are when piped; on a terminal, UTF-8 text with control characters escaped. */
function logWriter(io: Io, which: 'stdout' | 'stderr'): (b: Buffer) => void {
  const tty = which === 'stdout' ? io.isTTY : io.stderrIsTTY;
  const bytes = which === 'stdout' ? io.stdoutBytes : io.stderrBytes;
  const text = which === 'stdout' ? io.stdout : io.stderr;
  if (bytes && !tty) return bytes;
  const dec = new StringDecoder('utf8');
  return (b) => text(tty ? escapeControls(dec.write(b)) : dec.write(b));
}

async function stopped(rt: RuncClient, id: string): Promise<boolean> {
  try {
    return (await rt.state(id)).status === 'stopped';
  } catch (err) {
    // A runtime that cannot answer is asked again; one that says "no such container" ends the follow.
    return isNotFound(err);
  }
}

/** SIGINT/SIGTERM turned into a flag (and a wake-up) for the follow loop. */
class FollowStop {
  stopped = false;
  wake = (): void => {};
  private readonly onSignal = (): void => {
    this.stopped = true;
    this.wake();
  };
  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** Prints what the container writes until the runtime says it stopped, or STOP is signalled. */
async function follow(streams: LogStream[], rt: RuncClient, id: string, stop: FollowStop): Promise<void> {
  for (let i = 0; !stop.stopped; i++) {
    if (i % STATE_EVERY === 0 && (await stopped(rt, id))) break;
    await new Promise<void>((r) => {
      const t = setTimeout(r, FOLLOW_POLL_MS);
      stop.wake = () => {
        clearTimeout(t);
        r();
      };
    });
    for (const s of streams) await drain(s);
  }
  // What it wrote just before it stopped.
  for (const s of streams) await drain(s);
}
