// nstool hook create-runtime | post-stop: OCI hooks that run CNI ADD / DEL
// for the container whose state the runtime writes on stdin.
// create-runtime fails loudly (non-zero) so the runtime aborts the container;
// post-stop always exits 0 (it also runs after a failed create-runtime, and a
// failure there helps nobody): what went wrong goes to stderr.
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { CniError, cniErrorJson } from '../cni/errors.js';
import { HookOutcome, HookStage, runCniHook } from '../hook/cni-hook.js';
import { AnnotatedSetting, CniHookSettings, HOOK_ANNOTATIONS, HOOK_FLAGS } from '../hook/settings.js';
import { parseOciState } from '../hook/state.js';
import { capError, showText } from '../show.js';
import { summary } from './catalog.js';
import { emit, errorJson, Io, UsageError, withJson } from './context.js';

/** Io that can also supply stdin (tests); process.stdin otherwise. */
export interface HookIo extends Io {
  readStdin?: () => Promise<string>;
}

async function readProcessStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('the OCI state is read from stdin (or give --state FILE)');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const OPTION_HELP: Record<keyof CniHookSettings, string> = {
  netns: 'netns path (default /proc/<pid>/ns/net; as an annotation it must be the container\'s own: that, or a pin of it in /run/netns or --netns-pin-dir)',
  conflist: 'network config list file (.conflist or .conf)',
  confDir: 'network config dir (default /etc/cni/net.d)',
  network: 'network name to pick in the config dir',
  result: 'file to write the ADD result to (atomically)',
  ifName: 'interface name in the container (default eth0)',
  pluginPath: 'plugin search path, colon-separated (default /usr/lib/cni:/opt/cni/bin)',
  cacheDir: 'CNI result cache dir (default /var/lib/cni)',
  nodeNetns: 'run the plugins inside this netns',
  netnsPinDir: 'a dir besides /run/netns whose pins an annotated netns may name (it must still be the container\'s own netns)',
  pidlessNetnsDir: 'where a runtime that gives no pid (a VM runtime) pins netns: an annotated pin there is taken without the pid check (off by default)',
};

function describe(o: HookOutcome): string {
  const ips = o.result?.ips?.map((i) => i.address).join(', ');
  return o.stage === 'create-runtime' ? `added ${o.id} to ${o.network}${ips ? ` (${ips})` : ''}` : `removed ${o.id} from ${o.network}`;
}

/** One line on stderr for ERR (capped, control characters escaped), plus a plugin's own error. */
function report(io: Io, stage: HookStage, err: unknown): void {
  if (err instanceof CniError) io.stderr(`nstool hook ${stage}: ${showText(JSON.stringify(cniErrorJson(err)))}\n`);
  if (stage === 'post-stop') {
    const code = (err as { code?: unknown }).code;
    io.stderr(`nstool hook post-stop: ${typeof code === 'string' ? `${showText(code, 64)}: ` : ''}${showText(String((err as Error).message ?? err))} (exit status 0: post-stop never fails)\n`);
  }
}

export function registerHookCommands(program: Command, io: HookIo): void {
  const hook = program
    .command('hook')
    .description(summary('hook'))
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const stages: [HookStage, string][] = [
    ['create-runtime', 'createRuntime hook: CNI DEL (stale state) then ADD'],
    ['post-stop', 'poststop hook: CNI DEL, remove the result file'],
  ];
  for (const [stage, desc] of stages) {
    const cmd = withJson(hook.command(stage).description(desc))
      .option('--state <file>', 'read the OCI state from FILE instead of stdin')
      .exitOverride()
      .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    for (const k of Object.keys(HOOK_FLAGS) as (keyof CniHookSettings)[]) {
      // Paths root acts on are flags only: annotations may come from a pod's author.
      const from = k in HOOK_ANNOTATIONS ? `annotation ${HOOK_ANNOTATIONS[k as AnnotatedSetting]}` : 'flag only, never an annotation';
      cmd.option(`${HOOK_FLAGS[k]} <value>`, `${OPTION_HELP[k]}; ${from}`);
    }
    cmd.action(async (o: CniHookSettings & { state?: string; json?: boolean }) => {
      const { state: stateFile, json, ...flags } = o;
      try {
        const text = stateFile ? await readFile(stateFile, 'utf8') : await (io.readStdin ?? readProcessStdin)();
        const out = await runCniHook(stage, parseOciState(text), flags);
        for (const w of out.warnings) io.stderr(`nstool hook ${stage}: warning: ${showText(w)}\n`);
        emit(io, json, out, () => describe(out));
      } catch (err) {
        // The runtime puts our stderr in its log: no value in it may be long or hold control characters.
        capError(err);
        report(io, stage, err);
        if (stage !== 'post-stop') throw err;
        if (json) io.stdout(JSON.stringify({ stage, error: errorJson(err) }, null, 2) + '\n');
      }
    });
  }
}
