// Every rule for a name or id nstool takes from a caller (or reads back from
// disk), in one pure module, so each is checked before any side effect. Names
// end up as file names, in argv of other tools, in `ip netns list` and in
// logs: control characters and a leading "-" are refused wherever they could
// be taken for something else. Errors quote input through showValue, so a
// hostile value can neither flood a log nor drive a terminal.
import { invalidArg } from './errors.js';
import { CONTROL, hex, LONE_SURROGATE, showValue } from './show.js';

export { hasControlChars, showName, showValue, SHOW_MAX } from './show.js';

/** Longest file name component (NAME_MAX), in bytes. */
export const NAME_MAX = 255;
/** Longest container id, in characters (runc's own bound is the file name). */
export const CONTAINER_ID_MAX = 1024;
/** Longest interface name, in bytes (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;

/** The container id rule runc and the CNI plugins share; CNI network names follow it too. */
export const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw invalidArg(`${what} must be a string, got ${showValue(v)}`, 'ERR_INVALID_ARG_TYPE');
  return v;
}

function describeControl(s: string): string {
  const i = s.search(CONTROL);
  return `${hex(s.charCodeAt(i))} at index ${i}`;
}

/**
 * One plain file name component that no other tool can take for something
 * else: 1 to 255 bytes, well-formed Unicode, no "/", NUL or control
 * character, not "." or "..", and no leading "-" (an option to `ip`, `rm`).
 */
function validateComponent(v: unknown, what: string): string {
  const s = requireString(v, what);
  if (s === '') throw invalidArg(`${what} must not be empty`);
  if (Buffer.byteLength(s) > NAME_MAX) throw invalidArg(`${what} ${showValue(s)} is longer than ${NAME_MAX} bytes`);
  if (s.includes('\0')) throw invalidArg(`${what} ${showValue(s)} must not contain NUL`);
  if (s.includes('/')) throw invalidArg(`${what} ${showValue(s)} must not contain "/"`);
  if (s === '.' || s === '..') throw invalidArg(`${what} must not be "." or ".."`);
  if (CONTROL.test(s)) throw invalidArg(`${what} ${showValue(s)} must not contain control characters (${describeControl(s)})`);
  if (LONE_SURROGATE.test(s)) throw invalidArg(`${what} ${showValue(s)} is not well-formed Unicode (a lone surrogate)`);
  if (s.startsWith('-')) throw invalidArg(`${what} ${showValue(s)} must not start with "-"`);
  return s;
}

/** A pin name: one file name under the pin dir, shown by `ip netns list`. */
export function validatePinName(name: unknown, what = 'name'): string {
  return validateComponent(name, what);
}

/** A container id as runc and the CNI plugins take it: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, at most 1024 characters. */
export function validateContainerId(id: unknown, what = 'container id'): string {
  const s = requireString(id, what);
  if (s.length > CONTAINER_ID_MAX || !CONTAINER_ID_RE.test(s)) {
    throw invalidArg(`${what} ${showValue(s)} must match ${CONTAINER_ID_RE.source} and be at most ${CONTAINER_ID_MAX} characters`);
  }
  return s;
}

/**
 * An interface name: 1 to 15 bytes of printable ASCII without space, "/"
 * or ":", not "." or "..". The kernel's own rule is looser about bytes
 * above 0x7f but refuses some of them as spaces; ASCII is never ambiguous.
 */
export function validateIfName(name: unknown, what = 'ifName'): string {
  const s = requireString(name, what);
  if (s.length === 0 || Buffer.byteLength(s) > IFNAME_MAX) throw invalidArg(`${what} ${showValue(s)} must be 1 to ${IFNAME_MAX} bytes`);
  if (!/^[\x21-\x7e]+$/.test(s)) throw invalidArg(`${what} ${showValue(s)} must be printable ASCII without spaces`);
  if (/[/:]/.test(s)) throw invalidArg(`${what} ${showValue(s)} must not contain "/" or ":"`);
  if (s === '.' || s === '..') throw invalidArg(`${what} must not be "." or ".."`);
  return s;
}

/**
 * A CNI network name, as the CNI spec defines it (the container id
 * pattern), at most 255 bytes: it keys result cache file names.
 */
export function validateNetworkName(name: unknown, what = 'network name'): string {
  const s = requireString(name, what);
  if (s === '') throw invalidArg(`${what} must not be empty`);
  if (Buffer.byteLength(s) > NAME_MAX || !CONTAINER_ID_RE.test(s)) {
    throw invalidArg(`${what} ${showValue(s)} must match ${CONTAINER_ID_RE.source} and be at most ${NAME_MAX} bytes`);
  }
  return s;
}

/** A CNI plugin type: a program name looked up on the plugin path, never a path. */
export function validatePluginType(type: unknown, what = 'plugin type'): string {
  return validateComponent(type, what);
}
