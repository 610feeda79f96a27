// The tracing helpers cost nothing when nobody listens: no context is built.
import dc from 'node:diagnostics_channel';
import { afterEach, expect, it } from 'vitest';
import { channels, NETNS_CREATE, SANDBOX_STEP, step, traced } from '../../src/trace.js';

const offs: Array<() => void> = [];
afterEach(() => {
  for (const o of offs.splice(0)) o();
});

it('builds no context and publishes nothing without subscribers', async () => {
  expect(process.env['NODE_DEBUG'] ?? '').not.toMatch(/nstool/);
  let built = 0;
  const r = await traced(channels.netnsCreate, () => ((built += 1), {}), async () => 42);
  expect(r).toBe(42);
  expect(built).toBe(0);
  expect(channels.step.hasSubscribers).toBe(false);
});

it('publishes the context with its result to tracing subscribers, and steps to step subscribers', async () => {
  const seen: string[] = [];
  const h = { start: (c: unknown) => seen.push(`start ${JSON.stringify(c)}`), asyncEnd: (c: unknown) => seen.push(`asyncEnd ${JSON.stringify(c)}`) };
  const ch = dc.tracingChannel(NETNS_CREATE);
  ch.subscribe(h);
  offs.push(() => ch.unsubscribe(h));
  await traced(channels.netnsCreate, () => ({ name: 'x' }), async () => 'ok');
  expect(seen).toEqual(['start {"name":"x"}', 'asyncEnd {"name":"x","result":"ok"}']);

  const steps: unknown[] = [];
  const fn = (m: unknown) => steps.push(m);
  dc.subscribe(SANDBOX_STEP, fn);
  offs.push(() => dc.unsubscribe(SANDBOX_STEP, fn));
  step('create', 'id1', 'netns', 'before');
  expect(steps).toEqual([{ op: 'create', id: 'id1', step: 'netns', at: 'before' }]);
});
