// Values from untrusted input (annotations, plugin output, files) as they may
// appear in an error or a log line: capped in length, control characters
// escaped, so a hostile value can neither flood a runtime's log nor forge or
// repaint lines in it.

/** How many characters of a value an error quotes. */
export const SHOW_MAX = 200;
/** How many characters of a whole message (or field) reach a log. */
export const TEXT_MAX = 2000;

// JSON.stringify escapes C0, '"' and '\'; these it lets through.
const MORE_CONTROLS = /[\u007f-\u009f\u2028\u2029]/g;
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

function suffix(s: string, max: number): string {
  return s.length > max ? `…(${Buffer.byteLength(s)} bytes)` : '';
}

/** V quoted as a JSON string, at most MAX characters of it, e.g. "abc"…(20971520 bytes). */
export function showValue(v: unknown, max = SHOW_MAX): string {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.slice(0, max)).replace(MORE_CONTROLS, escape) + suffix(s, max);
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
