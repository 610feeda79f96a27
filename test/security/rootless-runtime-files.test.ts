// Attacks on the files nstool keeps in a user's runtime dir
// ($XDG_RUNTIME_DIR/nstool), as a stale or planted file would make them:
// nstool must not follow a link out of it, block on a fifo, or write
// through a hard link to another of the user's files.
import { chownSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, json, randomSubidBase, settle, TestUser, testUsers } from '../helpers/test-user.js';

const P = testPrefix('rlsec');
trackLeaks(P);

const { makeUserWithRange, lifecycle } = testUsers(P);

describeRoot('rootless runtime files: planted links and fifos', () => {
  let alice: TestUser;

  lifecycle(() => {
    alice = makeUserWithRange(P, randomSubidBase());
  });

  /** DIR (and its parents under the runtime dir) as alice's, 0700. */
  const aliceDir = (dir: string) => {
    for (let d = `${alice.run}/nstool`; ; ) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chownSync(d, alice.uid, alice.gid);
      if (d === dir) break;
      d = path.join(d, path.relative(d, dir).split('/')[0]!);
    }
  };
  const aliceFile = (p: string, text: string) => {
    writeFileSync(p, text, { mode: 0o600 });
    chownSync(p, alice.uid, alice.gid);
  };

  it("an id claim planted as a link, a hard link or a fifo: an auto create neither writes through it nor blocks on it", async () => {
    const claims = `${alice.run}/nstool/idalloc`;
    aliceDir(claims);
    // Two files of alice's outside the runtime dir that a claim must never reach.
    const victim = path.join(alice.run, 'victim'), hard = path.join(alice.run, 'hard');
    aliceFile(victim, 'keep me\n');
    aliceFile(hard, 'keep me too\n');
    const [viaLink, viaHard, viaFifo] = [`${P}-l`, `${P}-h`, `${P}-f`];
    symlinkSync(victim, path.join(claims, viaLink));
    linkSync(hard, path.join(claims, viaHard));
    expect(spawnSync('mkfifo', ['-m', '0600', path.join(claims, viaFifo)]).status).toBe(0);
    chownSync(path.join(claims, viaFifo), alice.uid, alice.gid);
    try {
      for (const name of [viaLink, viaHard]) {
        // The fifo is read (as a claim of another pod) by every auto create: it must not hang one.
        const r = as(alice, ['create-pod-netns', name, '--uidmap', 'auto', '--size', '4096', '--json'], {}, 20_000);
        expect(r.code, r.err).toBe(0);
        expect(json<{ name: string }>(r).name).toBe(name);
      }
      expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
      expect(readFileSync(hard, 'utf8')).toBe('keep me too\n');
    } finally {
      as(alice, ['delete', viaLink, viaHard]);
    }
    expect(await settle(alice.uid)).toEqual([]);
  });

  it('a sandbox state planted as a fifo, or as a link to one: list and inspect answer (an unreadable state) instead of blocking', () => {
    const states = `${alice.run}/nstool/sandboxes`;
    aliceDir(states);
    const fifo = path.join(alice.run, 'fifo');
    for (const f of [path.join(states, `${P}-f.json`), fifo]) {
      expect(spawnSync('mkfifo', ['-m', '0600', f]).status).toBe(0);
      chownSync(f, alice.uid, alice.gid);
    }
    symlinkSync(fifo, path.join(states, `${P}-l.json`));
    for (const id of [`${P}-f`, `${P}-l`]) {
      const r = as(alice, ['sandbox', 'inspect', id, '--json'], {}, 20_000);
      expect(r.code, r.err).toBe(1);
      expect(json<{ error: { code: string } }>(r).error.code).toBe('ERR_NSTOOL_STATE');
    }
    const l = as(alice, ['sandbox', 'list', '--json'], {}, 20_000);
    expect(l.code).not.toBeNull(); // ended by itself, not by the timeout
  });
});
