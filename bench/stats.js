// What every bench measures with: per-cycle latencies (ns) in rounds, each
// round's ops/s, and a summary with the ratio to a reference measured in the
// same run.

export const nowNs = () => Number(process.hrtime.bigint());

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** One variant: per-cycle latencies (ns) of every round, and each round's ops/s. */
export class Series {
  constructor(name) {
    this.name = name;
    this.samples = [];
    this.roundOps = [];
  }
  addRound(lat) {
    this.samples.push(...lat);
    this.roundOps.push(lat.length / (lat.reduce((a, b) => a + b, 0) / 1e9));
  }
  /** RATIO_KEY: how many times REF's cost per cycle this one's is (ratioToC, ratioToPodman). */
  summary(ref, ratioKey = 'ratioToC') {
    const ops = median(this.roundOps);
    const out = {
      name: this.name,
      rounds: this.roundOps.length,
      cycles: this.samples.length,
      opsPerSec: ops,
      spreadPct: (100 * (Math.max(...this.roundOps) - Math.min(...this.roundOps))) / ops,
      p50us: pct(this.samples, 50) / 1e3,
      p99us: pct(this.samples, 99) / 1e3,
    };
    if (ref) out[ratioKey] = median(ref.roundOps) / ops;
    return out;
  }
}
