// The README's TypeScript blocks, as a consumer would paste them.
import { readFileSync } from 'node:fs';

export interface TsBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** Words after ```ts, e.g. "runnable". */
  flags: string[];
  code: string;
}

/** Every ```ts (or ```typescript) block of a markdown file. */
export function tsBlocks(markdownPath: string): TsBlock[] {
  const lines = readFileSync(markdownPath, 'utf8').split('\n');
  const out: TsBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript)(?:\s+(.*))?$/.exec(lines[i]!.trim());
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`${markdownPath}:${start + 1}: unclosed code block`);
    out.push({ line: start + 1, flags: (open[2] ?? '').split(/\s+/).filter(Boolean), code: body.join('\n') + '\n' });
  }
  return out;
}
