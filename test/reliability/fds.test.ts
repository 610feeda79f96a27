// fd hygiene: programs run in a pod's namespaces see only 0, 1 and 2, even
// when the calling process holds fds without O_CLOEXEC, and creating pods
// leaks no fd into this process.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { openFds, testPrefix, trackLeaks } from '../helpers/leaks.js';
import { execInNetns, runInNamespaces } from '../../src/exec.js';
import { createPodNetns, createPodNetnsSync, deletePodNetns } from '../../src/netns.js';

const prefix = testPrefix('fds');
trackLeaks(prefix);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(root, 'dist');
const MAP = [{ containerID: 0, hostID: 100000, size: 65536 }];

/** fd numbers `ls /proc/self/fd` printed; 3 is ls's own directory fd. */
function fdList(out: string): string[] {
  return out.split('\n').filter(Boolean).sort();
}

// Runs in a node child holding fds 20 and 300 without O_CLOEXEC (node marks
// the low fds it inherits close-on-exec itself, so a wrapper shell opens
// these high ones).
// Reports its own fd flags and what programs in the pod see. argv: dist, name.
const CHILD = `
import { readFileSync } from 'node:fs';
const { createPodNetnsSync, deletePodNetns } = await import(process.argv[1] + '/netns.js');
const { execInNetns, runInNamespaces } = await import(process.argv[1] + '/exec.js');
const flags = [20, 300].map((fd) => readFileSync('/proc/self/fdinfo/' + fd, 'utf8').match(/flags:\\s*(\\d+)/)[1]);
const ns = createPodNetnsSync({ name: process.argv[2], uidMap: '0:100000:65536' });
try {
  const a = await execInNetns(ns.name, ['ls', '/proc/self/fd']);
  const b = await runInNamespaces(['ls', '/proc/self/fd'], { netns: ns.path, ownerUserns: true, input: 'x' });
  const c = await runInNamespaces(['ls', '/proc/self/fd'], { netns: ns.path, stdio: 'inherit' });
  process.stdout.write('\\n' + JSON.stringify({ flags, a: a.stdout, b: b.stdout, c: c.exitCode }));
} finally {
  await deletePodNetns(ns.name);
}`;

describeRoot('fd hygiene', () => {
  it('a program run in a pod netns sees only 0, 1, 2', async () => {
    const ns = await createPodNetns({ name: `${prefix}-a`, uidMap: MAP });
    try {
      const r = await execInNetns(ns.name, ['ls', '/proc/self/fd']);
      expect(r.exitCode).toBe(0);
      expect(fdList(r.stdout)).toEqual(['0', '1', '2', '3']);
      const u = await runInNamespaces(['ls', '/proc/self/fd'], { netns: ns.path, ownerUserns: true, input: 'data' });
      expect(fdList(u.stdout)).toEqual(['0', '1', '2', '3']);
    } finally {
      await deletePodNetns(ns.name);
    }
  });

  it('fds the caller holds without O_CLOEXEC do not reach the program', async () => {
    expect(existsSync(path.join(DIST, 'netns.js')), 'dist missing: run `npx tsc -p .` first').toBe(true);
    // A fixed script; everything variable goes in as positional arguments.
    const wrapper = 'exec "$@" 20</dev/null 300</dev/null';
    const child = spawn('bash', ['-c', wrapper, 'bash', process.execPath, '--input-type=module', '-e', CHILD, DIST, `${prefix}-b`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    // With stdio 'inherit' the program's listing comes first, on the child's own stdout.
    const lines = out.split('\n');
    const r = JSON.parse(lines.pop()!) as { flags: string[]; a: string; b: string; c: number };
    expect(fdList(lines.join('\n'))).toEqual(['0', '1', '2', '3']);
    // O_CLOEXEC is 02000000 (octal) in fdinfo flags: the child really holds inheritable fds.
    expect(r.flags).toHaveLength(2);
    for (const f of r.flags) expect(parseInt(f, 8) & 0o2000000).toBe(0);
    expect(fdList(r.a)).toEqual(['0', '1', '2', '3']);
    expect(fdList(r.b)).toEqual(['0', '1', '2', '3']);
    expect(r.c).toBe(0);
  });

  it('creating and deleting pods, sync and async, leaves this process\'s fd table as it was', async () => {
    const before = openFds().filter((f) => !f.includes('/proc/self/fd'));
    for (let i = 0; i < 20; i++) {
      const name = `${prefix}-c${i}`;
      if (i % 2) createPodNetnsSync({ name, uidMap: MAP, pinUserns: true });
      else await createPodNetns({ name, uidMap: MAP, pinUserns: true });
      await deletePodNetns(name);
    }
    expect(openFds().filter((f) => !f.includes('/proc/self/fd'))).toEqual(before);
    // No namespace fd or pidfd outlives a call.
    const leaked = openFds()
      .map((f) => f.split(' -> ')[1]!)
      .filter((t) => t.startsWith('nsfs:') || t.includes('pidfd'));
    expect(leaked).toEqual([]);
  });
});
