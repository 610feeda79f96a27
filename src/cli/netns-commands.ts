// nstool create-pod-netns | delete | list | inspect | exec
import { Command, Option } from 'commander';
import os from 'node:os';
import { execInNetns } from '../exec.js';
import { allocateFromSubid, formatIdMap, IdMapping } from '../idmap.js';
import { showName } from '../names.js';
import { createPodNetns, DeleteResult, deletePodNetns, inspectNetns, listNetns, NetnsInfo } from '../netns.js';
import { currentMode } from '../rootless/mode.js';
import { DEFAULT_STATE_DIR as SANDBOX_STATE_DIR } from '../sandbox/state.js';
import { summary } from './catalog.js';
import { emit, ExitCode, intOption, Io, table, UsageError, withJson } from './context.js';
import { netnsOrSandbox, SandboxFlags, sandboxFlags } from './sandbox-ref.js';
import { deleteView, inspectView, listEntryView, podNetnsView } from './views.js';

interface DirOpts {
  pinDir?: string;
  usernsPinDir?: string;
  json?: boolean;
}

function dirOptions(cmd: Command): Command {
  return cmd
    .option('--pin-dir <dir>', 'where netns pins live', '/run/netns')
    .option('--userns-pin-dir <dir>', 'where userns pins live', '/run/nstool/userns');
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
    dirOptions(
      program
        .command('create-pod-netns')
        .description(summary('create-pod-netns'))
        .argument('[name]', 'pin name (default: pod-<random>)'),
    ),
  )
    .option('--uidmap <map>', 'uid mappings, containerID:hostID:size[,...]')
    .option('--gidmap <map>', 'gid mappings (default: the uid mappings)')
    .option('--subid-user <user>', 'take the maps from /etc/subuid and /etc/subgid for USER')
    .option('--size <n>', 'ids to take with --subid-user', '65536')
    .addOption(new Option('--setgroups <mode>', 'setgroups in the pod userns (default: allow; rootless with only your own gid mapped: deny)').choices(['allow', 'deny']))
    .option('--pin-userns', 'also pin the user namespace under --userns-pin-dir')
    .option('--allow-host-root', 'accept maps under which a pod id is host uid or gid 0 (refused by default)')
    .action(async (name: string | undefined, o: DirOpts & { uidmap?: string; gidmap?: string; subidUser?: string; size: string; setgroups?: 'allow' | 'deny'; pinUserns?: boolean; allowHostRoot?: boolean }) => {
      let uidMap: string | IdMapping[] | undefined = o.uidmap;
      let gidMap: string | IdMapping[] | undefined = o.gidmap;
      if (o.subidUser) {
        const size = intOption(o.size, '--size');
        uidMap ??= await allocateFromSubid(o.subidUser, { file: '/etc/subuid', size });
        gidMap ??= await allocateFromSubid(o.subidUser, { file: '/etc/subgid', size });
      }
      if (uidMap === undefined) throw new UsageError('--uidmap or --subid-user is required');
      const r = await createPodNetns({
        ...(name !== undefined ? { name } : {}),
        uidMap,
        ...(gidMap !== undefined ? { gidMap } : {}),
        ...(o.setgroups ? { setgroups: o.setgroups } : {}),
        pinUserns: !!o.pinUserns,
        allowHostRoot: !!o.allowHostRoot,
        ...(o.pinDir ? { pinDir: o.pinDir } : {}),
        ...(o.usernsPinDir ? { usernsPinDir: o.usernsPinDir } : {}),
      });
      emit(io, o.json, { ...podNetnsView(r), mode: currentMode() }, () => r.name);
    });

  withJson(dirOptions(program.command('delete').description(summary('delete')).argument('<names...>', 'pin names or paths')))
    .action(async (names: string[], o: DirOpts) => {
      const out: DeleteResult[] = [];
      for (const n of names) out.push(await deletePodNetns(n, { pinDir: o.pinDir, usernsPinDir: o.usernsPinDir }));
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

function signalNumber(sig: string): number {
  return (os.constants.signals as Record<string, number>)[sig] ?? 0;
}
