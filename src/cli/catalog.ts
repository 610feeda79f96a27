// The top-level commands, declared once: name, usage, description and the
// module that implements them. `nstool --version` and `nstool --help` are
// answered from this table alone; running a command loads only its module
// (commander and the library come with it). A new command module adds a
// row here (test/unit/cli-catalog.test.ts checks rows against the modules).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Io } from './io.js';

export type Register = (program: Command, io: Io) => void;

export interface TopCommand {
  name: string;
  /** As commander's help shows it: name, "[options]", the arguments. */
  term: string;
  description: string;
  load: () => Promise<Register>;
}

const netns = (): Promise<Register> => import('./netns-commands.js').then((m) => m.registerNetnsCommands);
const pod = (): Promise<Register> => import('./pod-commands.js').then((m) => m.registerPodCommands);
const sandbox = (): Promise<Register> => import('./sandbox-commands.js').then((m) => m.registerSandboxCommands);
const hook = (): Promise<Register> => import('./hook-commands.js').then((m) => m.registerHookCommands as Register);

export const PROGRAM_DESCRIPTION = 'namespace plumbing for pods with user namespaces';

export const COMMANDS: readonly TopCommand[] = [
  { name: 'create-pod-netns', term: 'create-pod-netns [options] [name]', description: 'create a network namespace owned by a new user namespace and pin it', load: netns },
  { name: 'delete', term: 'delete [options] <names...>', description: 'unpin network namespaces (a missing one is not an error)', load: netns },
  { name: 'list', term: 'list [options]', description: 'list the pin dir, with each netns owner', load: netns },
  { name: 'inspect', term: 'inspect [options] <name|path>', description: 'show a namespace, its owning userns and id maps', load: netns },
  {
    name: 'exec',
    term: 'exec [options] [name|path] [command...]',
    description: "run a command inside a pinned netns (or a sandbox's) and the userns that owns it; exits with its status",
    load: netns,
  },
  {
    name: 'spec',
    term: 'spec [options] <command...>',
    description: "print (or write into --bundle) the config.json of a container joining a pod's netns and userns",
    load: pod,
  },
  { name: 'run-pod', term: 'run-pod [options] [netns] [command...]', description: "run a container in a pod's pinned netns (or a sandbox's) and the userns that owns it", load: pod },
  { name: 'rm-pod', term: 'rm-pod [options] <ids...>', description: 'kill and delete a container made by run-pod, unmount its staging mounts, remove its bundle', load: pod },
  { name: 'logs', term: 'logs [options] <id>', description: "print a run-pod container's stdout and stderr (-f: follow until it stops)", load: pod },
  { name: 'sandbox', term: 'sandbox', description: 'pod sandboxes: netns + CNI network + pause container', load: sandbox },
  { name: 'gc', term: 'gc [options]', description: 'remove what crashed creates and deletes of this instance (--state-dir) left behind', load: sandbox },
  { name: 'hook', term: 'hook', description: 'OCI hook mode: run CNI for a container from the state JSON on stdin', load: hook },
  {
    name: 'features',
    term: 'features [options]',
    description: 'probe user namespaces, idmapped mounts, the runtime and CNI plugins for pods with user namespaces (cached per boot and runtime binary)',
    load: () => import('./features-commands.js').then((m) => m.registerFeaturesCommands),
  },
];

/** The description of top-level command NAME (the modules take theirs from here). */
export function summary(name: string): string {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) throw new Error(`no top-level command ${name} in the catalog`);
  return c.description;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Greedy word wrap of TEXT to WIDTH columns (a word longer than that stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** Below this many columns for descriptions, they are not wrapped (commander's rule). */
const MIN_WRAP = 40;

/** `nstool --help`: the program's usage, options and commands, laid out as commander lays out help. */
export function topHelp(width = 80): string {
  const options: [string, string][] = [
    ['-V, --version', 'output the version number'],
    ['-h, --help', 'display help for command'],
  ];
  const commands: [string, string][] = [...COMMANDS.map((c): [string, string] => [c.term, c.description]), ['help [command]', 'display help for command']];
  const termWidth = Math.max(...[...options, ...commands].map(([t]) => t.length));
  const room = width - termWidth - 4;
  const item = ([term, desc]: [string, string]): string => {
    const lines = room < MIN_WRAP ? [desc] : wrap(desc, room);
    return [`  ${term.padEnd(termWidth)}  ${lines[0]}`, ...lines.slice(1).map((l) => `${' '.repeat(termWidth + 4)}${l}`)].join('\n');
  };
  return [
    'Usage: nstool [options] [command]',
    '',
    PROGRAM_DESCRIPTION,
    '',
    'Options:',
    ...options.map(item),
    '',
    'Commands:',
    ...commands.map(item),
    '',
    ...wrap('Every command takes --help, and --json for one JSON document on stdout. Exit status: 0 success, 1 failure, 2 wrong usage.', width),
    '',
  ].join('\n');
}
