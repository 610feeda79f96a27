// Values from untrusted input (annotations, plugin output, files) as they may
// appear in an error or a log line: capped in length, control characters
// escaped, so a hostile value can neither flood a runtime's log nor forge or
// repaint lines in it.

/** How many characters of a value an error quotes. */
export const SHOW_MAX = 200;
/** How many characters of a whole message (or field) reach a log. */
export const TEXT_MAX = 2000;

const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

function suffix(s: string, max: number): string {
  return s.length > max ? `…(${Buffer.byteLength(s)} bytes)` : '';
}

// C0, DEL, C1, the Unicode line and paragraph separators, and the bidi
// controls that reorder what a terminal shows (U+061C, U+200E/F, U+202A-E,
// U+2066-9).
export const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// A surrogate half without its partner has no UTF-8 form: the kernel would
// get U+FFFD instead and the file would not have the name asked for.
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function hex(c: number): string {
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

/** Free text (a message) capped at MAX characters, control characters (newlines too) escaped. */
export function showText(s: string, max = TEXT_MAX): string {
  return s.slice(0, max).replace(CONTROLS, escape) + suffix(s, max);
}

/**
 * Caps, in place, the message and every string field of ERR (and of its
 * cause chain): the last guard before an error reaches a log, for messages
 * built by code that quotes values without showValue().
 */
export function capError<T>(err: T, max = TEXT_MAX): T {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== null && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const o = e as Record<string, unknown>;
    for (const k of new Set(['message', ...Object.keys(o)])) {
      const v = o[k];
      if (typeof v !== 'string' || (v.length <= max && !HAS_CONTROL.test(v))) continue;
      try {
        o[k] = showText(v, max);
      } catch {
        // a frozen error keeps its text
      }
    }
  }
  return err;
}
