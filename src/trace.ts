// Tracing for an embedding runtime: node:diagnostics_channel channels it can
// subscribe to (and time with), and NODE_DEBUG=nstool lines on stderr.
// With nobody subscribed and NODE_DEBUG unset, a traced call costs one
// boolean test: no message is built, nothing is published.
//
// Channels (the names are the exported constants below):
// - TracingChannels (start/end/asyncStart/asyncEnd/error, one context object
//   per call; Node sets context.result or context.error):
//     nstool:sandbox:create  { id }
//     nstool:sandbox:delete  { id }
//     nstool:sandbox:gc      { stateDir }
//     nstool:netns:create    { name, path }
//     nstool:netns:delete    { path }
//     nstool:pod:run         { id, netns }
//     nstool:pod:remove      { id }
//     nstool:cni:plugin      { plugin, command, containerId?, ifName?, netns? }
//     nstool:runtime:call    { binary, command, argv }
// - A plain channel for each step of a sandbox's create, rollback, delete and gc:
//     nstool:sandbox:step    StepEvent
import dc from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

export const SANDBOX_STEP = 'nstool:sandbox:step';
export const SANDBOX_CREATE = 'nstool:sandbox:create';
export const SANDBOX_DELETE = 'nstool:sandbox:delete';
export const SANDBOX_GC = 'nstool:sandbox:gc';
export const NETNS_CREATE = 'nstool:netns:create';
export const NETNS_DELETE = 'nstool:netns:delete';
export const POD_RUN = 'nstool:pod:run';
export const POD_REMOVE = 'nstool:pod:remove';
export const CNI_PLUGIN = 'nstool:cni:plugin';
export const RUNTIME_CALL = 'nstool:runtime:call';

/** One step of a sandbox operation, published on nstool:sandbox:step. */
export interface StepEvent {
  /** "rollback" is the undo of a create that failed or was aborted. */
  op: 'create' | 'rollback' | 'delete' | 'gc';
  /** The sandbox id. */
  id: string;
  /** The resource: "state", "netns", "userns", "ipc", "uts", "network", "pause" (gc: its action kind). */
  step: string;
  /** before and after the step; failed when it threw (error set). */
  at: 'before' | 'after' | 'failed';
  /** gc: what the action acts on, and why. */
  target?: string;
  reason?: string;
  error?: unknown;
}

const log = debuglog('nstool');
/** NODE_DEBUG is read once, at start, as Node reads it. */
const DEBUG = log.enabled;

export const channels = {
  step: dc.channel(SANDBOX_STEP),
  sandboxCreate: dc.tracingChannel(SANDBOX_CREATE),
  sandboxDelete: dc.tracingChannel(SANDBOX_DELETE),
  sandboxGc: dc.tracingChannel(SANDBOX_GC),
  netnsCreate: dc.tracingChannel(NETNS_CREATE),
  netnsDelete: dc.tracingChannel(NETNS_DELETE),
  podRun: dc.tracingChannel(POD_RUN),
  podRemove: dc.tracingChannel(POD_REMOVE),
  cniPlugin: dc.tracingChannel(CNI_PLUGIN),
  runtimeCall: dc.tracingChannel(RUNTIME_CALL),
};

type Tracing = dc.TracingChannel<object, object>;

function fields(o: object): string {
  let s = '';
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || k === 'result' || k === 'error') continue;
    s += ` ${k}=${Array.isArray(v) ? v.join(' ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
  }
  return s;
}

function errText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  return `${typeof e?.code === 'string' ? e.code : 'error'}: ${String(e?.message ?? err)}`;
}

/** Publishes one sandbox step (and logs it under NODE_DEBUG=nstool); free when nobody listens. */
export function step(op: StepEvent['op'], id: string, name: string, at: StepEvent['at'], extra?: Pick<StepEvent, 'target' | 'reason' | 'error'>): void {
  if (!DEBUG && !channels.step.hasSubscribers) return;
  const e: StepEvent = { op, id, step: name, at, ...extra };
  if (DEBUG) log('sandbox %s %s: %s %s%s', op, id, at, name, extra?.error !== undefined ? ` (${errText(extra.error)})` : extra?.target ? ` ${extra.target}` : '');
  channels.step.publish(e);
}

/**
 * Runs FN as one traced call on the tracing channel CH, with the context
 * CTX builds (built only when someone listens); logs start, end (with the
 * time taken) and error under NODE_DEBUG=nstool.
 */
export function traced<T>(ch: Tracing, ctx: () => object, fn: () => Promise<T>): Promise<T> {
  if (!DEBUG && !ch.hasSubscribers) return fn();
  const c = ctx();
  if (!DEBUG) return ch.tracePromise(fn, c);
  const name = (ch.start as unknown as { name: string }).name.replace(/^tracing:(.*):start$/, '$1');
  log('%s start%s', name, fields(c));
  const t0 = performance.now();
  return ch.tracePromise(fn, c).then(
    (r) => {
      log('%s end (%s ms)', name, (performance.now() - t0).toFixed(1));
      return r;
    },
    (err: unknown) => {
      log('%s failed (%s ms): %s', name, (performance.now() - t0).toFixed(1), errText(err));
      throw err;
    },
  );
}

/** A NODE_DEBUG=nstool line (printf-like); nothing is formatted when it is off. */
export function debug(fmt: string, ...args: unknown[]): void {
  if (DEBUG) log(fmt, ...args);
}
