// uidMap 'auto' without root: blocks from the caller's own subordinate ids,
// chosen against the live pods of that user (read from its keeper's pins),
// as users this file creates, through the CLI run by setpriv.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeRoot } from '../helpers/env.js';
import { testPrefix, trackLeaks } from '../helpers/leaks.js';
import { as, asAsync, CliResult, DIST, json, randomSubidBase, settle, TestUser, testUsers, userCommand, userEnv } from '../helpers/test-user.js';

const P = testPrefix('rla');
trackLeaks(P);

const { makeUser, addSubid, lifecycle } = testUsers(P);

type ErrorDoc = { error: { code: string; path?: string; message: string } };
interface Made {
  name: string;
  uidMap: Array<{ containerID: number; hostID: number; size: number }>;
  gidMap: Array<{ containerID: number; hostID: number; size: number }>;
  usernsPath: string;
}

const SIZE = 4096;
const BLOCKS = 65536 / SIZE; // 16

describeRoot('rootless uidMap auto, as an unprivileged user', () => {
  let alice: TestUser; // 65536 ids: 16 blocks of 4096
  let bob: TestUser; // no subordinate ids
  let carol: TestUser; // 65536 ids: one sandbox block
  let aliceBase: number;
  let carolBase: number;

  lifecycle(() => {
    aliceBase = randomSubidBase();
    carolBase = randomSubidBase();
    while (carolBase === aliceBase) carolBase = randomSubidBase();
    alice = makeUser(P);
    bob = makeUser(`${P}-b`);
    carol = makeUser(`${P}-c`);
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      addSubid(f, `${alice.name}:${aliceBase}:65536`);
      addSubid(f, `${carol.name}:${carolBase}:65536`);
    }
  });

  const auto = (u: TestUser, name: string, extra: string[] = []) => as(u, ['create-pod-netns', name, '--uidmap', 'auto', '--size', String(SIZE), ...extra, '--json']);
  const names = (u: TestUser) => json<Array<{ name: string }>>(as(u, ['list', '--json'])).map((e) => e.name).sort();
  const code = (r: CliResult) => json<ErrorDoc>(r).error.code;
  const deleteAll = async (u: TestUser) => {
    const all = names(u);
    if (all.length > 0) expect(as(u, ['delete', ...all]).code).toBe(0);
    expect(names(u)).toEqual([]);
    expect(await settle(u.uid)).toEqual([]);
  };
  /** The maps the kernel holds for a pod (its userns, read back). */
  const kernelMaps = (u: TestUser, name: string) => json<{ uidMap: Made['uidMap']; gidMap: Made['gidMap'] }>(as(u, ['inspect', name, '--json']));

  it('10 concurrent creates get disjoint blocks inside the user range; blocks run out with IDS_EXHAUSTED leaving nothing; a freed block is reused', async () => {
    const batch = Array.from({ length: 10 }, (_, i) => `${P}-p${i}`);
    const rs = await Promise.all(batch.map((n) => asAsync(alice, ['create-pod-netns', n, '--uidmap', 'auto', '--size', String(SIZE), '--json'])));
    for (const r of rs) expect(r.code, r.err).toBe(0);
    const made = rs.map((r) => json<Made>(r));
    const starts = made.map((m) => {
      expect(m.uidMap).toHaveLength(1);
      expect(m.uidMap[0]).toMatchObject({ containerID: 0, size: SIZE });
      expect(m.gidMap).toEqual(m.uidMap);
      return m.uidMap[0]!.hostID;
    });
    for (const s of starts) {
      expect(s).toBeGreaterThanOrEqual(aliceBase);
      expect(s + SIZE).toBeLessThanOrEqual(aliceBase + 65536);
      expect((s - aliceBase) % SIZE).toBe(0);
    }
    expect(new Set(starts).size).toBe(10);
    // What the kernel holds is what was reported.
    for (const m of made) expect(kernelMaps(alice, m.name).uidMap).toEqual(m.uidMap);

    // The rest of the range, then one too many.
    for (let i = 10; i < BLOCKS; i++) expect(auto(alice, `${P}-p${i}`).code).toBe(0);
    const over = auto(alice, `${P}-over`);
    expect(over.code).toBe(1);
    expect(code(over)).toBe('ERR_NSTOOL_IDS_EXHAUSTED');
    expect(names(alice)).not.toContain(`${P}-over`);
    expect(names(alice)).toHaveLength(BLOCKS);

    // Delete one: its block is the one a new create gets.
    const freed = made[3]!;
    expect(as(alice, ['delete', freed.name]).code).toBe(0);
    const again = auto(alice, `${P}-again`);
    expect(again.code, again.err).toBe(0);
    expect(json<Made>(again).uidMap).toEqual(freed.uidMap);
    await deleteAll(alice);
  });

  it('reads the ids in use from live pins: a keeper killed with its pods frees every block', async () => {
    expect(auto(alice, `${P}-k1`).code).toBe(0);
    const second = json<Made>(auto(alice, `${P}-k2`));
    expect(second.uidMap[0]!.hostID).toBe(aliceBase + SIZE);
    const keeper = JSON.parse(as(alice, ['list', '--json']).out)[0].keeperPid as number;
    process.kill(keeper, 'SIGKILL');
    expect(await settle(alice.uid)).toEqual([]);
    const fresh = json<Made>(auto(alice, `${P}-k3`));
    expect(fresh.uidMap[0]!.hostID).toBe(aliceBase);
    await deleteAll(alice);
  });

  it('refuses an explicit map overlapping a live auto pod, naming it; --allow-shared-ranges takes it', async () => {
    const a = json<Made>(auto(alice, `${P}-owner`));
    const block = a.uidMap[0]!.hostID;
    const overlapping = `0:${block + 100}:10`;
    const refused = as(alice, ['create-pod-netns', `${P}-x`, '--uidmap', overlapping, '--json']);
    expect(refused.code).toBe(1);
    const err = json<ErrorDoc>(refused).error;
    expect(err.code).toBe('ERR_NSTOOL_MAP_OVERLAP');
    expect(err.path).toContain(`/${P}-owner`);
    expect(names(alice)).toEqual([`${P}-owner`]);
    // An auto create never takes the ids of an explicit pod either.
    const shared = as(alice, ['create-pod-netns', `${P}-x`, '--uidmap', overlapping, '--allow-shared-ranges', '--json']);
    expect(shared.code, shared.err).toBe(0);
    expect(kernelMaps(alice, `${P}-x`).uidMap).toEqual([{ containerID: 0, hostID: block + 100, size: 10 }]);
    // Explicit pods share with each other as before.
    const free = `0:${aliceBase + 65536 - SIZE}:${SIZE}`;
    expect(as(alice, ['create-pod-netns', `${P}-e1`, '--uidmap', free, '--json']).code).toBe(0);
    expect(as(alice, ['create-pod-netns', `${P}-e2`, '--uidmap', free, '--json']).code).toBe(0);
    // ...but not with a pod that holds its ids alone (exclusive ranges).
    expect(code(as(alice, ['create-pod-netns', `${P}-e3`, '--uidmap', free, '--exclusive-ranges', '--json']))).toBe('ERR_NSTOOL_MAP_OVERLAP');
    // An auto block skips every live pod's ids, explicit ones included.
    const next = json<Made>(auto(alice, `${P}-next`));
    const h = next.uidMap[0]!.hostID;
    expect(h).not.toBe(block);
    expect(h).not.toBe(aliceBase + 65536 - SIZE);
    await deleteAll(alice);
  });

  it('refuses with typed errors before any side effect: no subordinate ids, autoRange outside them, another autoUser', async () => {
    const none = as(bob, ['create-pod-netns', `${P}-b`, '--uidmap', 'auto', '--json']);
    expect(code(none)).toBe('ERR_NSTOOL_SUBID');
    const outside = as(alice, ['create-pod-netns', `${P}-r`, '--uidmap', 'auto', '--auto-range', `${aliceBase + 65536}:${SIZE}`, '--json']);
    expect(code(outside)).toBe('ERR_NSTOOL_SUBID');
    const other = as(alice, ['create-pod-netns', `${P}-u`, '--uidmap', 'auto', '--subid-user', 'root', '--json']);
    expect(code(other)).toBe('ERR_NSTOOL_ROOTLESS_UNSUPPORTED');
    // A range inside narrows the pool.
    const narrow = as(alice, ['create-pod-netns', `${P}-n`, '--uidmap', 'auto', '--size', String(SIZE), '--auto-range', `${aliceBase + 8 * SIZE}:${2 * SIZE}`, '--json']);
    expect(narrow.code, narrow.err).toBe(0);
    expect(json<Made>(narrow).uidMap[0]!.hostID).toBe(aliceBase + 8 * SIZE);
    await deleteAll(alice);
    expect(await settle(bob.uid)).toEqual([]);
    expect(readdirSync(bob.run)).toEqual([]);
  });

  it('sandbox create --uidmap auto --no-network records its block; a second finds none; delete leaves nothing', async () => {
    const id = `${P}-sb`;
    const c = as(carol, ['sandbox', 'create', id, '--uidmap', 'auto', '--no-network', '--json']);
    expect(c.code, c.err).toBe(0);
    // The state records the block the netns step got (not the plan's stand-in).
    const st = JSON.parse(readFileSync(path.join(carol.run, 'nstool', 'sandboxes', `${id}.json`), 'utf8')) as { uidMap: Made['uidMap']; gidMap: Made['gidMap'] };
    expect(st.uidMap).toEqual([{ containerID: 0, hostID: carolBase, size: 65536 }]);
    expect(st.gidMap).toEqual(st.uidMap);
    const netns = json<Array<{ name: string }>>(as(carol, ['list', '--json']))[0]!.name;
    expect(kernelMaps(carol, netns).uidMap).toEqual(st.uidMap);
    const second = as(carol, ['sandbox', 'create', `${id}2`, '--uidmap', 'auto', '--no-network', '--json']);
    expect(code(second)).toBe('ERR_NSTOOL_IDS_EXHAUSTED');
    expect(json<Array<{ id: string }>>(as(carol, ['sandbox', 'list', '--json'])).map((s) => s.id)).toEqual([id]);
    // The API too, with a block size.
    const script = `
      import { createSandbox, deleteSandbox } from ${JSON.stringify(DIST)};
      try { await createSandbox({ id: ${JSON.stringify(`${id}3`)}, uidMap: 'auto', autoSize: 4096 }); console.log('made'); }
      catch (e) { console.log(e.code); }
    `;
    const a = userCommand(carol, [process.execPath, '--input-type=module', '-e', script]);
    const r = spawnSync(a[0]!, a.slice(1), { encoding: 'utf8', env: userEnv(carol, {}), timeout: 30_000 });
    expect(r.stdout.trim(), r.stderr).toBe('ERR_NSTOOL_IDS_EXHAUSTED');
    expect(as(carol, ['sandbox', 'delete', id]).code).toBe(0);
    expect(names(carol)).toEqual([]);
    expect(await settle(carol.uid)).toEqual([]);
    expect(json(as(carol, ['sandbox', 'list', '--json']))).toEqual([]);
  });
});
