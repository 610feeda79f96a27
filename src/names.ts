// Every rule for a name or id nstool takes from a caller (or reads back from
// disk), in one pure module, so each is checked before any side effect. Names
// end up as file names, in argv of other tools, in `ip netns list` and in
// logs: control characters and a leading "-" are refused wherever they could
// be taken for something else. Errors quote input through showValue, so a
// hostile value can neither flood a log nor drive a terminal.
import { invalidArg } from './errors.js';

/** Longest file name component (NAME_MAX), in bytes. */
export const NAME_MAX = 255;
/** Longest container id, in characters (runc's own bound is the file name). */
export const CONTAINER_ID_MAX = 1024;
/** Longest interface name, in bytes (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;
/** Characters of a value quoted in an error message; the rest is counted. */
export const SHOW_MAX = 200;

/** The container id rule runc and the CNI plugins share; CNI network names follow it too. */
export const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

// C0, DEL, C1, the Unicode line and paragraph separators, and the bidi
// controls that reorder what a terminal shows (U+061C, U+200E/F, U+202A-E,
// U+2066-9).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// A surrogate half without its partner has no UTF-8 form: the kernel would
// get U+FFFD instead and the file would not have the name asked for.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function hex(c: number): string {
  return `\\u${c.toString(16).padStart(4, '0')}`;
}

/** Up to MAX characters of S, escaped; `more` tells whether any were left out. */
function escapeHead(s: string, max: number): { text: string; more: boolean } {
  let text = '';
  let n = 0;
  for (const ch of s) {
    if (n++ === max) return { text, more: true };
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') text += `\\${ch}`;
    else if (ch === '\n') text += '\\n';
    else if (ch === '\t') text += '\\t';
    else if (ch === '\r') text += '\\r';
    else if (CONTROL.test(ch) || (c >= 0xd800 && c <= 0xdfff)) text += hex(c);
    else text += ch;
  }
  return { text, more: false };
}

function capped(s: string, quote: boolean, max = SHOW_MAX): string {
  const { text, more } = escapeHead(s, max);
  const q = quote ? '"' : '';
  return `${q}${text}${q}${more ? `…(${Buffer.byteLength(s)} bytes)` : ''}`;
}

/**
 * VALUE as it may appear in an error message or on a terminal: strings
 * quoted with control characters escaped, and at most SHOW_MAX characters
 * of it followed by its full size in bytes; other values by their kind.
 */
export function showValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return capped(value, true);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint':
      return capped(`${value}n`, false);
    case 'symbol':
      return capped(value.toString(), false);
    case 'function':
      return capped(`function ${value.name || '(anonymous)'}`, false);
    default:
      break;
  }
  if (value === null) return 'null';
  try {
    if (Array.isArray(value)) return `an array of ${value.length} items`;
    const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof ctor === 'string' && ctor !== '' && ctor !== 'Object' ? capped(`an instance of ${ctor}`, false) : 'an object';
  } catch {
    // a proxy or a getter that throws: its kind is all we say
    return 'an object';
  }
}

/**
 * A name or path read from the system (bounded by the kernel) as a terminal
 * line may show it: itself when plain, else quoted with control characters
 * escaped, like showValue but cut only past PATH_MAX.
 */
export function showName(name: string): string {
  return !CONTROL.test(name) && !LONE_SURROGATE.test(name) && !name.startsWith('"') ? name : capped(name, true, 4096);
}

/** True when S holds a character that could change what a terminal or a log shows. */
export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}

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
