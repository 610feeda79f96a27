// ID mappings: parsing, formatting and validation, all before any side
// effect. One mapping is { containerID, hostID, size } as in the OCI spec.
import { readFile } from 'node:fs/promises';
import { invalidArg, NstoolError } from './errors.js';
import { showValue } from './names.js';

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}
/** "0:100000:65536", several joined by ",", kernel text, or objects. */
export type IdMapInput = string | IdMapping | ReadonlyArray<IdMapping | string>;

const U32_LIMIT = 2 ** 32;
/** Lines the kernel accepts in one uid_map/gid_map write (Linux 4.15+). */
export const MAX_MAP_LINES = 340;
const MAP_WRITE_LIMIT = 4096;

function parseOne(text: string, what: string): IdMapping {
  const parts = text.trim().split(/[:\s]+/);
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p))) {
    throw invalidArg(`${what}: ${showValue(text)} is not "containerID:hostID:size"`);
  }
  const [containerID, hostID, size] = parts.map(Number) as [number, number, number];
  return { containerID, hostID, size };
}

export function parseIdMap(input: IdMapInput, what = 'id map'): IdMapping[] {
  const items: Array<IdMapping | string> =
    typeof input === 'string'
      ? input.split(/[,\n]/).filter((s) => s.trim() !== '')
      : Array.isArray(input)
        ? [...(input as ReadonlyArray<IdMapping | string>)]
        : [input as IdMapping];
  // Counted before parsing, so a huge list costs nothing to refuse.
  if (items.length > MAX_MAP_LINES) throw invalidArg(`${what}: the kernel takes at most ${MAX_MAP_LINES} mappings, got ${items.length}`);
  const out = items.map((it) => {
    if (typeof it === 'string') return parseOne(it, what);
    if (it === null || typeof it !== 'object') throw invalidArg(`${what}: each mapping must be an object or a string, got ${showValue(it)}`);
    return { containerID: it.containerID, hostID: it.hostID, size: it.size };
  });
  validateIdMap(out, what);
  return out;
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[0] + b[1] && b[0] < a[0] + a[1];
}

export function validateIdMap(map: readonly IdMapping[], what = 'id map'): void {
  if (map.length === 0) throw invalidArg(`${what}: at least one mapping is needed`);
  if (map.length > MAX_MAP_LINES) throw invalidArg(`${what}: the kernel takes at most ${MAX_MAP_LINES} mappings`);
  for (const m of map) {
    for (const k of ['containerID', 'hostID', 'size'] as const) {
      const v = m[k];
      if (!Number.isInteger(v) || v < 0 || v >= U32_LIMIT) {
        throw invalidArg(`${what}: ${k} must be an integer from 0 to 4294967295, got ${showValue(v)}`);
      }
    }
    if (m.size === 0) throw invalidArg(`${what}: size must be greater than 0`);
    // The kernel keeps first+count within u32 and never maps id 4294967295.
    if (m.containerID + m.size >= U32_LIMIT || m.hostID + m.size >= U32_LIMIT) {
      throw invalidArg(`${what}: ${formatIdMap([m])} reaches 4294967295, which is not a valid id`);
    }
  }
  // The whole map goes in one write() of less than a page.
  if (Buffer.byteLength(toKernelMap(map)) >= MAP_WRITE_LIMIT) {
    throw invalidArg(`${what}: the map is longer than the ${MAP_WRITE_LIMIT - 1} bytes the kernel takes in one write`);
  }
  for (let i = 0; i < map.length; i++) {
    for (let j = i + 1; j < map.length; j++) {
      const a = map[i]!, b = map[j]!;
      if (overlaps([a.containerID, a.size], [b.containerID, b.size])) {
        throw invalidArg(`${what}: container ranges of ${formatIdMap([a])} and ${formatIdMap([b])} overlap`);
      }
      if (overlaps([a.hostID, a.size], [b.hostID, b.size])) {
        throw invalidArg(`${what}: host ranges of ${formatIdMap([a])} and ${formatIdMap([b])} overlap`);
      }
    }
  }
}

/** The error code for a map that gives a pod id to host uid or gid 0. */
export const HOST_ROOT_MAP = 'ERR_NSTOOL_HOST_ROOT_MAP';

/** The mapping whose host range holds host id 0 (root), if any. */
export function hostRootMapping(map: readonly IdMapping[]): IdMapping | undefined {
  // In a valid map (ids unsigned) that is the range starting at host id 0.
  return map.find((m) => m.hostID <= 0 && m.hostID + m.size > 0);
}

/**
 * Refuses a map under which some container id is host id 0: whatever that
 * id owns or writes inside the pod is host root's outside it. WHAT names the
 * map ("uidMap", "gidMap") in the error.
 */
export function assertNoHostRoot(map: readonly IdMapping[], what = 'id map'): void {
  const m = hostRootMapping(map);
  if (!m) return;
  throw new NstoolError(
    `${what} maps container id ${m.containerID} to host id 0 (root) through the range ${formatIdMap([m])}`,
    {
      code: HOST_ROOT_MAP,
      hint: 'map the pod to unprivileged host ids (e.g. 0:100000:65536 from /etc/subuid and /etc/subgid); pass allowHostRoot: true (--allow-host-root) only if the pod is meant to hold host root',
    },
  );
}

export function formatIdMap(map: readonly IdMapping[]): string {
  return map.map((m) => `${m.containerID}:${m.hostID}:${m.size}`).join(',');
}

/** The text written to /proc/<pid>/uid_map: one line per mapping. */
export function toKernelMap(map: readonly IdMapping[]): string {
  return map.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** Parses /proc/<pid>/uid_map text (columns padded with spaces). */
export function parseKernelMap(text: string): IdMapping[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => parseOne(l, 'kernel map'));
}

/** Maps a container id to the host through MAP; undefined when unmapped. */
export function toHostId(map: readonly IdMapping[], id: number): number | undefined {
  for (const m of map) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return undefined;
}

export function sameIdMap(a: readonly IdMapping[], b: readonly IdMapping[]): boolean {
  const key = (m: readonly IdMapping[]) => [...m].sort((x, y) => x.containerID - y.containerID).map((x) => `${x.containerID}:${x.hostID}:${x.size}`).join(',');
  return key(a) === key(b);
}

/**
 * The first range of at least SIZE ids that /etc/subuid (or /etc/subgid)
 * gives USER, mapped at container id 0. Entries may name the user or uid.
 */
export async function allocateFromSubid(
  user: string,
  opts: { file?: string; size?: number; uid?: number } = {},
): Promise<IdMapping[]> {
  const file = opts.file ?? '/etc/subuid';
  const size = opts.size ?? 65536;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalidArg(`cannot read ${file}: ${(err as Error).message}`, 'ERR_NSTOOL_SUBID');
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (!who || start === undefined || count === undefined) continue;
    if (who !== user && who !== String(opts.uid ?? '')) continue;
    const s = Number(start), c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c >= size) {
      const map = [{ containerID: 0, hostID: s, size }];
      validateIdMap(map, file);
      return map;
    }
  }
  throw invalidArg(`${file} has no range of ${size} ids for ${showValue(user)}`, 'ERR_NSTOOL_SUBID');
}
