// nstool spec | run-pod | rm-pod: containers in a pod's pinned namespaces.
import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { invalidArg } from '../errors.js';
import { writeBundle } from '../oci/index.js';
import type { MountRequest } from '../oci/index.js';
import { DEFAULT_STATE_DIR, podSpec, removePodContainer, runPodContainer } from '../pod/container.js';
import type { PodContainerRecord } from '../pod/container.js';
import { podUserns } from '../pod/userns.js';
import { RuncClientOptions } from '../runc/client.js';
import { emit, Io, withJson } from './context.js';
import { onSignals, testStepHook } from './sandbox-commands.js';

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
  withJson(
    program
      .command('spec')
      .description("print (or write into --bundle) the config.json of a container joining a pod's netns and userns")
      .requiredOption('--netns <name|path>', 'the pod netns (its userns is pinned if it is not yet)')
      .requiredOption('--rootfs <dir>', 'root filesystem')
      .option('--mount <src:dst[:opts]>', 'bind mount; opts: ro, idmap, rbind (repeatable)', collect, [] as string[])
      .option('--bundle <dir>', 'write <dir>/config.json instead of printing it')
      .argument('<command...>', 'the command, after --'),
  ).action(async (command: string[], o: { netns: string; rootfs: string; mount: string[]; bundle?: string; json?: boolean }) => {
    const mounts = o.mount.map(parseMountFlag);
    const pod = await podUserns(o.netns);
    const spec = podSpec({
      rootfs: path.resolve(o.rootfs),
      command,
      netnsPath: pod.netns.path,
      usernsPath: pod.usernsPath,
      uidMap: pod.netns.uidMap,
      gidMap: pod.netns.gidMap,
      mounts,
    });
    if (!o.bundle) {
      io.stdout(`${JSON.stringify(spec, null, 2)}\n`);
      return;
    }
    const dir = path.resolve(o.bundle);
    // config.json carries the env: a bundle made here is root's alone.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = await writeBundle(dir, spec);
    emit(io, o.json, { config: file, usernsPath: pod.usernsPath }, () => file);
  });

  withJson(
    runtimeOptions(
      program
        .command('run-pod')
        .description("run a container in a pod's pinned netns and the userns that owns it")
        .argument('<netns>', 'pod netns name or path')
        .argument('<command...>', 'the command, after --')
        .requiredOption('--rootfs <dir>', "root filesystem (read-only and idmapped to the pod's root, under a writable overlay of the container's own)")
        .option('--id <id>', 'container id (default: the netns name)')
        .option('--mount <src:dst[:opts]>', 'bind mount; opts: ro, idmap, rbind (repeatable)', collect, [] as string[])
        .option('--no-idmap-rootfs', 'hand the rootfs to the runtime as it is')
        .option(
          '--allow-unsafe-idmap-volumes',
          "allow writable idmap mounts whose source other host users can reach (the pod's root writes there as host root)",
        ),
    ),
  ).action(async (netns: string, command: string[], o: RuntimeOpts & { rootfs: string; id?: string; mount: string[]; idmapRootfs: boolean; allowUnsafeIdmapVolumes?: boolean }) => {
    const mounts = o.mount.map(parseMountFlag);
    const id = o.id ?? path.basename(netns);
    // The first SIGINT/SIGTERM removes what was made so far; a second exits at once (rm-pod finishes).
    const ac = new AbortController();
    const off = onSignals(ac);
    let rec: PodContainerRecord;
    try {
      const hook = testStepHook(ac.signal);
      rec = await runPodContainer({
        id,
        netns,
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
    emit(io, o.json, rec, () => `${rec.id} running (pid ${rec.pid ?? '?'}); output in ${rec.stdout} and ${rec.stderr}`);
  });

  withJson(
    runtimeOptions(
      program
        .command('rm-pod')
        .description('kill and delete a container made by run-pod, unmount its staging mounts, remove its bundle')
        .argument('<ids...>', 'container ids'),
    ),
  ).action(async (ids: string[], o: RuntimeOpts) => {
    const out: Array<{ id: string; existed: boolean }> = [];
    for (const id of ids) {
      out.push(
        await removePodContainer(id, {
          stateDir: path.resolve(o.stateDir),
          ...(o.runtime !== 'runc' || o.runtimeRoot ? { runtime: runtimeOf(o) } : {}),
        }),
      );
    }
    emit(io, o.json, out, () => out.map((r) => `${r.id}: ${r.existed ? 'removed' : 'already gone'}`).join('\n'));
  });
}
