// The one door to the addon. src/native.ts loads it and types its surface;
// only the modules of src/kernel/ reach it, through core(), and everything
// else in nstool calls their small typed functions, which wrap the core's
// errors (code, errno, syscall, path, and a hint) with the caller's context.
import { fromNative } from '../errors.js';
import { loadNative } from '../native.js';
import type { NativeCore } from '../native.js';

export type { CreateParams, CreateResult, HeldHandle, HeldHelper, NativeIdMaps, NativeNsInfo, PodNsParams, PodNsResult, ResolveHow, RootFile, SpawnExit, SpawnHandle, UnpinResult } from '../native.js';

/** What a failure is about: CONTEXT prefixes the message; HINTS (by code) override the default hints. */
export interface Why {
  context?: string;
  hints?: Record<string, string>;
}

/** The loaded addon (when and how it loads is native.ts's business). */
export function core(): NativeCore {
  // The addon itself, not native.ts's lazy proxy: a proxy trap on every call
  // is a cost the hot paths (create, delete) need not pay.
  return loadNative();
}

/**
 * A call to the pool for the hot paths (a pod netns's create and delete),
 * without callAsync's stack captured beforehand: that costs ~2 us warm and
 * ~25 us in a create cycle, whose kernel work leaves the caches cold. The
 * error is made after the await instead, where V8's async stack trace
 * still names the awaiting callers, the application's own among them.
 */
export async function poolCall<T>(fn: () => Promise<T>, context?: string | ((err: unknown) => string), hints?: Record<string, string>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromNative(err, typeof context === 'function' ? context(err) : context, hints);
  }
}
