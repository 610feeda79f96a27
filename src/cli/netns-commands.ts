// nstool create-pod-netns | delete | list | inspect | exec
import { Command, Option } from 'commander';
import os from 'node:os';
import { execInNetns } from '../exec.js';
import { DEFAULT_ALLOC_DIR, DEFAULT_AUTO_SIZE, DEFAULT_AUTO_USER } from '../idalloc.js';
import { allocateFromSubid, formatIdMap, IdMapping } from '../idmap.js';
import { showName } from '../names.js';
import {
  CreatePodNetnsOptions,
  createPodNetns,
  DEFAULT_PIN_DIR,
  DEFAULT_USERNS_PIN_DIR,
  DeleteResult,
  deletePodNetns,
  inspectNetns,
  listNetns,
  NetnsInfo,
} from '../netns.js';
import { currentMode } from '../rootless/mode.js';
import { DEFAULT_STATE_DIR as SANDBOX_STATE_DIR } from '../sandbox/state.js';
import { summary } from './catalog.js';
import { emit, ExitCode, intOption, Io, table, UsageError, withJson } from './context.js';
import { netnsOrSandbox, SandboxFlags, sandboxFlags } from './sandbox-ref.js';
import { deleteView, inspectView, listEntryView, podNetnsView } from './views.js';

interface DirOpts {
  pinDir?: string;
  usernsPinDir?: string;
  allocDir?: string;
  json?: boolean;
}

function dirOptions(cmd: Command): Command {
  return cmd
    .option('--pin-dir <dir>', 'where netns pins live', DEFAULT_PIN_DIR)
    .option('--userns-pin-dir <dir>', 'where userns pins live', DEFAULT_USERNS_PIN_DIR);
}

function allocDirOption(cmd: Command): Command {
  return cmd.option('--alloc-dir <dir>', 'where the id allocation lock and index live', DEFAULT_ALLOC_DIR);
}

function showInfo(i: NetnsInfo): string {
  const owner = i.owner ? `${i.owner.host ? 'host' : 'pod'} userns ${i.owner.inode} (created by uid ${i.owner.uid})` : 'unknown';
  return [
    `path:      ${showName(i.path)}`,
    `type:      ${i.type}`,
    `inode:     ${i.inode}`,
    `owner:     ${owner}`,
    `uid map:   ${formatIdMap(i.uidMap)}`,
    `gid map:   ${formatIdMap(i.gidMap)}`,
    `setgroups: ${i.setgroups}`,
    ...(i.usernsPath ? [`userns:    ${showName(i.usernsPath)}`] : []),
  ].join('\n');
}

export function registerNetnsCommands(program: Command, io: Io): void {
  withJson(
    allocDirOption(
      dirOptions(
        program
          .command('create-pod-netns')
          .description(summary('create-pod-netns'))
          .argument('[name]', 'pin name (default: pod-<random>)'),
      ),
    ),
  )
    .option('--uidmap <map>', `uid mappings, containerID:hostID:size[,...], or "auto": ${DEFAULT_AUTO_SIZE} host ids no live pod uses`)
    .option('--gidmap <map>', 'gid mappings (default: the uid mappings)')
    .option('--subid-user <user>', `take the maps from /etc/subuid and /etc/subgid for USER; with --uidmap auto, the user whose ranges blocks come from (default ${DEFAULT_AUTO_USER})`)
    .option('--size <n>', 'ids to take with --subid-user or --uidmap auto', String(DEFAULT_AUTO_SIZE))
    .option('--auto-range <start:count>', 'with --uidmap auto: take blocks from this host range instead of /etc/subuid and /etc/subgid')
    .addOption(new Option('--setgroups <mode>', 'setgroups in the pod userns (default: allow; rootless with only your own gid mapped: deny)').choices(['allow', 'deny']))
    .option('--pin-userns', 'also pin the user namespace under --userns-pin-dir')
    .option('--allow-host-root', 'accept maps under which a pod id is host uid or gid 0 (refused by default)')
    .option('--allow-shared-ranges', 'accept an explicit map that overlaps host ids a live pod holds alone (an auto pod)')
    .option('--exclusive-ranges', 'refuse an explicit map that overlaps any live pod, and hold its ids alone like an auto block')
    .action(async (name: string | undefined, o: DirOpts & CreateFlags) => {
      const r = await createPodNetns(await createOptions(name, o));
      emit(io, o.json, { ...podNetnsView(r), mode: currentMode() }, () => r.name);
    });

  withJson(allocDirOption(dirOptions(program.command('delete').description(summary('delete')).argument('<names...>', 'pin names or paths'))))
    .action(async (names: string[], o: DirOpts) => {
      const out: DeleteResult[] = [];
      for (const n of names) out.push(await deletePodNetns(n, { pinDir: o.pinDir, usernsPinDir: o.usernsPinDir, allocDir: o.allocDir }));
      emit(io, o.json, out.map(deleteView), () => out.map((r) => `${showName(r.path)}: ${r.existed ? (r.stale ? 'removed (stale)' : 'deleted') : 'already gone'}`).join('\n'));
    });

  withJson(program.command('list').description(summary('list')).option('--pin-dir <dir>', 'where netns pins live', '/run/netns'))
    .action(async (o: DirOpts) => {
      const l = await listNetns(o.pinDir);
      const owner = (e: (typeof l)[number]) => (e.kind === 'netns' ? (e.owner ? (e.owner.host ? 'host' : `userns:${e.owner.inode}`) : 'unknown') : e.kind);
      const mode = currentMode();
      emit(io, o.json, l.map((e) => ({ ...listEntryView(e), mode })), () => table(io, ['NAME', 'OWNER'], l.map((e) => [showName(e.name), owner(e)])));
    });

  withJson(dirOptions(program.command('inspect').description(summary('inspect')).argument('<name|path>')))
    .action(async (target: string, o: DirOpts) => {
      const i = await inspectNetns(target, { pinDir: o.pinDir, usernsPinDir: o.usernsPinDir });
      emit(io, o.json, { ...inspectView(i), mode: currentMode() }, () => showInfo(i));
    });

  sandboxFlags(
    withJson(
      program
        .command('exec')
        .description(summary('exec'))
        .argument('[name|path]', 'the netns (none with --sandbox)')
        .argument('[command...]', 'the command, after --'),
    ),
    SANDBOX_STATE_DIR,
  )
    .option('--pin-dir <dir>', 'where netns pins live', '/run/netns')
    .option('--no-userns', 'join only the netns, stay in this user namespace')
    .option('--timeout <ms>', 'kill the command after this many milliseconds')
    .action(async (first: string | undefined, rest: string[], o: SandboxFlags & { pinDir?: string; userns: boolean; timeout?: string; json?: boolean }) => {
      // With --sandbox every operand is the command.
      const command = o.sandbox !== undefined && first !== undefined ? [first, ...rest] : rest;
      if (command.length === 0) throw new UsageError('give the command to run, after --', 'ERR_MISSING_ARGS');
      const timeoutMs = o.timeout !== undefined ? intOption(o.timeout, '--timeout') : undefined;
      const pins = await netnsOrSandbox(o, o.sandbox !== undefined ? undefined : first, 'a netns name or path');
      // --json captures the output into the document; otherwise the command has this terminal.
      const r = await execInNetns(pins ? pins.netnsPath : first!, command, {
        pinDir: pins ? pins.pinDir : o.pinDir,
        userns: o.userns,
        stdio: o.json ? 'pipe' : 'inherit',
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
      if (o.json) emit(io, true, r, () => '');
      throw new ExitCode(r.exitCode ?? 128 + (r.signal ? signalNumber(r.signal) : 0));
    });
}

interface CreateFlags {
  uidmap?: string;
  gidmap?: string;
  subidUser?: string;
  size: string;
  autoRange?: string;
  setgroups: 'allow' | 'deny';
  pinUserns?: boolean;
  allowHostRoot?: boolean;
  allowSharedRanges?: boolean;
  exclusiveRanges?: boolean;
}

async function createOptions(name: string | undefined, o: DirOpts & CreateFlags): Promise<CreatePodNetnsOptions> {
  const common = {
    ...(name !== undefined ? { name } : {}),
    setgroups: o.setgroups,
    pinUserns: !!o.pinUserns,
    allowHostRoot: !!o.allowHostRoot,
    ...(o.pinDir ? { pinDir: o.pinDir } : {}),
    ...(o.usernsPinDir ? { usernsPinDir: o.usernsPinDir } : {}),
    ...(o.allocDir ? { allocDir: o.allocDir } : {}),
  };
  if (o.uidmap === 'auto') {
    if (o.gidmap !== undefined && o.gidmap !== 'auto') throw new UsageError('--gidmap cannot be given with --uidmap auto (the pod gets one block for both)');
    if (o.allowSharedRanges) throw new UsageError('--allow-shared-ranges does not apply to --uidmap auto');
    if (o.subidUser !== undefined && o.autoRange !== undefined) throw new UsageError('--subid-user and --auto-range are alternatives: give one');
    return {
      ...common,
      uidMap: 'auto',
      autoSize: intOption(o.size, '--size'),
      ...(o.subidUser !== undefined ? { autoUser: o.subidUser } : {}),
      ...(o.autoRange !== undefined ? { autoRange: o.autoRange } : {}),
    };
  }
  if (o.autoRange !== undefined) throw new UsageError('--auto-range needs --uidmap auto');
  let uidMap: string | IdMapping[] | undefined = o.uidmap;
  let gidMap: string | IdMapping[] | undefined = o.gidmap;
  if (o.subidUser) {
    const size = intOption(o.size, '--size');
    uidMap ??= await allocateFromSubid(o.subidUser, { file: '/etc/subuid', size });
    gidMap ??= await allocateFromSubid(o.subidUser, { file: '/etc/subgid', size });
  }
  if (uidMap === undefined) throw new UsageError('--uidmap or --subid-user is required');
  return {
    ...common,
    uidMap,
    ...(gidMap !== undefined ? { gidMap } : {}),
    ...(o.allowSharedRanges ? { allowSharedRanges: true } : {}),
    ...(o.exclusiveRanges ? { exclusiveRanges: true } : {}),
  };
}

function signalNumber(sig: string): number {
  return (os.constants.signals as Record<string, number>)[sig] ?? 0;
}
