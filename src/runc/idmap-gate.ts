// The idmap gate: a runtime that does not know idmapped mounts drops their
// uidMappings and makes a plain bind (files then show as nobody), so a spec
// asking for them is refused unless `features` says idmap is enabled.
import { realpath, stat } from 'node:fs/promises';
import { NstoolError } from '../errors.js';
import { which } from '../exec.js';
import type { RuncClient, RuntimeVersion } from './client.js';
import { specNeedsIdmap } from '../oci/build.js';

export const IDMAP_UNSUPPORTED = 'ERR_NSTOOL_IDMAP_UNSUPPORTED';

export interface IdmapSupport {
  supported: boolean;
  /** Why not, in words a person can act on. */
  reason?: string;
  binary: string;
  version: string;
}

/** Cache per binary (realpath + mtime + size), so a replaced binary is asked again. */
const cache = new Map<string, Promise<IdmapSupport>>();

async function binaryKey(binary: string): Promise<string> {
  try {
    const real = await realpath(which(binary));
    const st = await stat(real);
    return `${real}\0${st.mtimeMs}\0${st.size}`;
  } catch {
    // Not found: let the runtime call report it; do not cache.
    return '';
  }
}

async function probe(client: RuncClient): Promise<IdmapSupport> {
  let version: RuntimeVersion | undefined;
  try {
    version = await client.version();
  } catch {
    // reported as "unknown" below
  }
  const base = { binary: client.binary, version: version ? `${version.name} ${version.version}` : 'unknown version' };
  let features: Record<string, unknown>;
  try {
    features = await client.features();
  } catch (err) {
    return { ...base, supported: false, reason: `\`${client.binary} features\` failed: ${(err as Error).message}` };
  }
  const linux = features['linux'] as { mountExtensions?: { idmap?: { enabled?: unknown } } } | undefined;
  const enabled = linux?.mountExtensions?.idmap?.enabled;
  if (enabled === true) return { ...base, supported: true };
  const reason =
    linux?.mountExtensions === undefined
      ? 'its features document has no linux.mountExtensions (idmapped mounts came with runc 1.2)'
      : `its features document says linux.mountExtensions.idmap.enabled is ${JSON.stringify(enabled ?? null)}`;
  return { ...base, supported: false, reason };
}

/** Whether the client's runtime supports idmapped mounts (asked once per binary). */
export async function idmapSupport(client: RuncClient): Promise<IdmapSupport> {
  const key = await binaryKey(client.binary);
  if (!key) return probe(client);
  let p = cache.get(key);
  if (!p) {
    p = probe(client);
    cache.set(key, p);
  }
  return p;
}

/** Throws ERR_NSTOOL_IDMAP_UNSUPPORTED when SPEC needs idmapped mounts the runtime lacks. */
export async function assertIdmapGate(client: RuncClient, spec: unknown): Promise<void> {
  if (!specNeedsIdmap(spec)) return;
  const s = await idmapSupport(client);
  if (s.supported) return;
  throw new NstoolError(`${s.binary} (${s.version}) cannot make idmapped mounts: ${s.reason}`, {
    code: IDMAP_UNSUPPORTED,
    hint:
      'use a runtime with idmapped mount support (runc 1.2+, crun 1.9+), or let nstool make the idmapped mount ' +
      'itself and hand the runtime a plain bind (the pod helpers do this: idmap fallback)',
  });
}

/** Forgets cached answers (tests replace binaries in place). */
export function clearIdmapCache(): void {
  cache.clear();
}
