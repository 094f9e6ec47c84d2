"""Write benchmark/data/REFERENCE.md from the three reference submissions (run `make reference` first).

Compares helpful-only, harmless-only and mixed miniature reward models with arXiv 2606.13209's
claim that mixed-objective RMs underperform single-objective ones on each objective."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ("helpful", "harmless", "mixed")


def load(objective: str) -> dict:
    path = REPO / "submissions" / f"tension-bench__reference-{objective}.json"
    if not path.is_file():
        sys.exit(f"reference_report: {path} is missing; run `make reference` first")
    return json.loads(path.read_text(encoding="utf-8"))


def ci(doc: dict, name: str) -> str:
    lo, hi = doc["scores"]["ci95"][name]
    return f"{doc['scores'][name]:.3f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    docs = {o: load(o) for o in OBJECTIVES}
    rows = []
    for o, d in docs.items():
        p = d["probe"]
        rows.append(f"| {o} | {ci(d, 'helpful')} | {ci(d, 'harmless')} | {ci(d, 'balance')} | "
                    f"{d['scores']['over_refusal']:.3f} | {d['scores']['under_refusal']:.3f} | "
                    f"{p['neurons']['shared_fraction']:.3f} (chance {p['neurons']['k'] / p['total_units']:.3f}) | "
                    f"{p['tension_index']:+.3f} | {p['gradient_conflict']:+.3f} | {p['ablations']['interference']:+.3f} |")
    h, s, m = (docs[o]["scores"] for o in OBJECTIVES)
    gap_helpful = m["helpful"] - h["helpful"]
    gap_harmless = m["harmless"] - s["harmless"]

    def separated(a, b, name):
        lo_a, hi_a = a["ci95"][name]
        lo_b, hi_b = b["ci95"][name]
        return hi_a < lo_b or hi_b < lo_a

    verdict_h = ("below" if gap_helpful < 0 else "above") + (" (CIs do not overlap)" if separated(m, h, "helpful") else " (CIs overlap)")
    verdict_s = ("below" if gap_harmless < 0 else "above") + (" (CIs do not overlap)" if separated(m, s, "harmless") else " (CIs overlap)")
    reproduces = gap_helpful < 0 and gap_harmless < 0
    clear = [name for name, gap, a, b in (("helpfulness", gap_helpful, m, h), ("harmlessness", gap_harmless, m, s))
             if gap < 0 and separated(a, b, "helpful" if name == "helpfulness" else "harmless")]
    if reproduces:
        summary = ("So the mixed model is below the single-objective model on both objectives, the direction the "
                   "paper reports; the gap is outside the bootstrap noise for " + (" and ".join(clear) or "neither")
                   + " and within it otherwise.")
    else:
        summary = ("So the miniature does not reproduce the paper's direction on both objectives: the mixed model "
                   "is not below the single-objective model on "
                   + " and ".join(n for n, g in (("helpfulness", gap_helpful), ("harmlessness", gap_harmless)) if g >= 0) + ".")
    probes = {o: d["probe"] for o, d in docs.items()}
    max_delta = max(abs(c[f"{side}_delta"]) for p in probes.values() for c in p["ablations"]["conditions"]
                    for side in ("helpful", "harmless"))
    probe_text = (
        f"In the probe, the single-objective models show the conflict at the reward head: their gradient "
        f"conflict is {probes['helpful']['gradient_conflict']:+.2f} (helpful-only) and "
        f"{probes['harmless']['gradient_conflict']:+.2f} (harmless-only) - a step that improves one objective "
        f"worsens the other - against {probes['mixed']['gradient_conflict']:+.2f} for the mixed model; their refusal "
        f"flip is {probes['helpful']['refusal_flip']:+.2f} and {probes['harmless']['refusal_flip']:+.2f} (the "
        f"same 'complies' direction whatever the prompt) against {probes['mixed']['refusal_flip']:+.2f} for the mixed "
        f"model, which has learned to separate benign from harmful compliance. Neuron sets are small (k = "
        f"{probes['mixed']['neurons']['k']} of {probes['mixed']['total_units']} units) and no ablation moves "
        f"accuracy by more than {max_delta:.3f}, so interference is near zero in all three; the whitened direction "
        f"cosines are positive (tension index {probes['helpful']['tension_index']:+.2f}, "
        f"{probes['harmless']['tension_index']:+.2f}, {probes['mixed']['tension_index']:+.2f}), i.e. the shared "
        f"encoder's helpful and harmless preference directions still point the same way.")
    text = f"""# Reference reward models: the paper's experiment in miniature

arXiv 2606.13209 trains reward models on helpfulness only, harmlessness only, and both, and finds
that the mixed models underperform the single-objective ones on each objective (interference), with
objective-specific neurons, a large shared set, and ablations that help one objective while hurting
the other. `tension-bench train-reference` repeats the experiment offline on a small scale: the
packaged MiniLM (all-MiniLM-L6-v2, 22.7M parameters) fine-tuned with the Bradley-Terry loss on the
TensionBench train split, with the same number of steps and examples for all three objectives (only
the objective differs), then evaluated on the test split with the probe.

| objective | helpful [95% CI] | harmless [95% CI] | balance [95% CI] | over-refusal | under-refusal | shared fraction | tension index | gradient conflict | interference |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

**Against the paper's claim.** On its own objective the mixed model scores {m['helpful']:.3f} helpful vs
{h['helpful']:.3f} for the helpful-only model ({gap_helpful:+.3f}, {verdict_h}) and {m['harmless']:.3f}
harmless vs {s['harmless']:.3f} for the harmless-only model ({gap_harmless:+.3f}, {verdict_s}).
{summary}
The single-objective models pay for their focus on the other side: the helpful-only model's
harmless score is {h['harmless']:.3f} and the harmless-only model's helpful score is {s['helpful']:.3f},
which is the conflict the benchmark is built to expose. A 22M-parameter encoder trained for
100 steps of 8 pairs drawn from 620 train pairs is far from the paper's
scale; read these as a working demonstration of the measurements, not as a replication.

{probe_text}

Reproduce (about 9 minutes per model on 2 CPU cores):

```bash
make reference                              # trains the three models, evaluates them into submissions/
.venv/bin/python benchmarks/reference_report.py   # rewrites this file
```
"""
    out = REPO / "benchmark" / "data" / "REFERENCE.md"
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
