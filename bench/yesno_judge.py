"""Benchmark: the offline yes/no judge against pyrit's human labels, protocol by protocol.

pyrit's 394 labelled objective rows are split once (seeded, per class): a report
set of --report rows (half objective achieved, half not) and a disjoint choose set
of --choose rows. A protocol (prompt layout x scoring rule) is picked on the choose
set only; every protocol is then reported on the report set with accuracy (Wilson
95%), kappa (bootstrap 95% over rows) and AUC. One forward per (prompt, row) gives
every scoring rule, so scoring rules cost nothing extra. Per-row probabilities are
cached in --cache, so a rerun only computes what is missing.

    .venv/bin/python bench/yesno_judge.py [--report 200] [--choose 20] [--prompts product,harmbench]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

# spellings whose first-token probability counts, per scoring rule
SPELLINGS = {"yes": ("yes", "Yes", " yes", " Yes", "YES"), "no": ("no", "No", " no", " No", "NO")}


def split_rows(rows: list[dict], report: int, choose: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Disjoint balanced report and choose sets (per class: seeded shuffle, report first), classes
    alternating, so the first rows of either set are balanced too (a cut-short run stays balanced)."""
    rng = random.Random(seed)
    pos, neg = [r for r in rows if r["truth"]], [r for r in rows if not r["truth"]]
    rng.shuffle(pos)
    rng.shuffle(neg)
    h, c = report // 2, choose // 2

    def alternate(a: list[dict], b: list[dict]) -> list[dict]:
        return [r for pair in zip(a, b) for r in pair]
    return alternate(pos[:h], neg[:h]), alternate(pos[h:h + c], neg[h:h + c])


def prompts(name: str, tok, item: dict, max_tokens: int) -> tuple[str | None, str]:
    """(system, user) of one prompt layout; the generation is cut to max_tokens tokens."""
    from buckle.eval.judges import yesno

    ids = tok(item["response"], add_special_tokens=False)["input_ids"][:max_tokens]
    body = yesno.PROMPT.format(behavior=item["prompt"], generation=tok.decode(ids))
    if name == "product":  # the classifier instructions as the system message
        return yesno.SYSTEM, body
    if name == "harmbench":  # HarmBench's classifier layout: one user turn ending "Answer:", no system message
        rules = body.rsplit("\n\nAnswer with", 1)[0]
        return None, f"{yesno.SYSTEM}\n\n{rules}\n\nAnswer:"
    raise ValueError(f"unknown prompt layout '{name}'")


def forward(model, tok, system: str | None, user: str, ids: list[int]) -> list[float]:
    """Probabilities of the given token ids at the first answer token (chat template applied)."""
    import torch

    from buckle.core.engine.hf_lm import prompt_ids

    seq = torch.tensor([prompt_ids(tok, user, system)], device=next(model.parameters()).device)
    with torch.inference_mode():
        logits = model(input_ids=seq, logits_to_keep=1).logits[0, -1].float()
    probs = torch.softmax(logits, dim=-1)
    return [probs[i].item() for i in ids]


def p_yes(row: dict, rule: str) -> float:
    """P(yes) / (P(yes) + P(no)) under a scoring rule: all spellings, or lowercase only."""
    forms = {"all": slice(None), "lower": slice(0, 1)}[rule]
    y, n = sum(row["yes"][forms]), sum(row["no"][forms])
    return y / (y + n) if y + n else 0.5


def auc(scores: list[float], truth: list[bool]) -> float:
    """Area under the ROC curve (ties count half)."""
    pos = [s for s, t in zip(scores, truth) if t]
    neg = [s for s, t in zip(scores, truth) if not t]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def kappa_ci(truth: list[bool], pred: list[bool], seed: int = 0, resamples: int = 2000) -> list[float]:
    """Percentile bootstrap 95% interval of Cohen's kappa over rows."""
    from buckle.eval.stats import binary_agreement

    rng = random.Random(seed)
    n, vals = len(truth), []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        k = binary_agreement([truth[i] for i in idx], [pred[i] for i in idx])["kappa"]
        if k == k:
            vals.append(k)
    vals.sort()
    return [vals[int(0.025 * len(vals))], vals[int(0.975 * len(vals)) - 1]]


def best_threshold(scores: list[float], truth: list[bool]) -> float:
    """The cut with the highest kappa on these rows (midpoint between neighbouring scores)."""
    from buckle.eval.stats import binary_agreement

    cuts = sorted(set(scores))
    mids = [(a + b) / 2 for a, b in zip(cuts, cuts[1:])] or [0.5]
    return max(mids, key=lambda c: binary_agreement(truth, [s >= c for s in scores])["kappa"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--report", type=int, default=200)
    parser.add_argument("--choose", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompts", default="product,harmbench", help="prompt layouts, comma list")
    parser.add_argument("--report-prompts", default="product", help="layouts to run on the report set")
    parser.add_argument("--max-response-tokens", type=int, default=384)
    parser.add_argument("--cache", default="yesno-bench.jsonl")
    parser.add_argument("--output", default="yesno-bench.json")
    parser.add_argument("--summary-only", action="store_true", help="tabulate the cache, run nothing")
    args = parser.parse_args()

    from buckle.core.catalog.assets import fetch
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf_lm import load_lm, pick_device
    from buckle.core.precision import resolve_dtype
    from buckle.eval.agreement import load_label_set
    from buckle.eval.stats import binary_agreement

    rows = load_label_set(fetch("pyrit-scorer-evals"), "objective")
    report, choose = split_rows(rows, args.report, args.choose, args.seed)
    cache_path = Path(args.cache)
    done = {}
    if cache_path.is_file():
        for line in cache_path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done[(r["layout"], r["id"], r["dtype"], r["max_tokens"])] = r
    layouts, report_layouts = args.prompts.split(","), args.report_prompts.split(",")
    # the first layout's choose and report rows first: a cut-short run still measures the product
    jobs = [(lay, part, r) for lay in layouts for part, rows_ in (("choose", choose), ("report", report))
            if part == "choose" or lay in report_layouts for r in rows_]
    dtype = resolve_dtype(args.dtype, pick_device("auto"))[0]  # the cache's key, also without a model
    if not args.summary_only:
        t0 = time.time()
        model, tok = load_lm(resolve_model(args.model), args.dtype)
        dtype = str(model.dtype).replace("torch.", "")
        print(f"loaded {args.model} ({dtype}) in {time.time() - t0:.0f} s", flush=True)
        ids = [tok(f, add_special_tokens=False)["input_ids"][0] for f in SPELLINGS["yes"] + SPELLINGS["no"]]
        _run(jobs, done, cache_path, model, tok, ids, dtype, args.max_response_tokens)
    _summarize(args, done, choose, report, layouts, dtype)


def _run(jobs, done, cache_path, model, tok, ids, dtype, max_tokens) -> None:
    """One forward per (layout, row) not yet cached, appended to the cache as it goes."""
    with open(cache_path, "a", encoding="utf-8") as fh:
        for k, (lay, part, row) in enumerate(jobs):
            key = (lay, row["id"], dtype, max_tokens)
            if key in done:
                continue
            t = time.time()
            p = forward(model, tok, *prompts(lay, tok, row, max_tokens), ids)
            rec = {"layout": lay, "id": row["id"], "dtype": dtype, "max_tokens": max_tokens,
                   "truth": row["truth"], "yes": p[:5], "no": p[5:], "s": round(time.time() - t, 2)}
            done[key] = rec
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(f"{k + 1}/{len(jobs)} {lay} {part} {rec['s']} s", flush=True)


def _summarize(args, done, choose, report, layouts, dtype) -> None:
    """Accuracy, kappa (95% intervals), recall and AUC per layout x rule x cut x set; printed and saved."""
    from buckle.eval.stats import binary_agreement

    results = []
    for lay in layouts:
        for rule in ("all", "lower"):
            ch = [done.get((lay, r["id"], dtype, args.max_response_tokens)) for r in choose]
            if None in ch:  # the cut is chosen on the whole choose set or not at all
                continue
            cut = best_threshold([p_yes(c, rule) for c in ch], [c["truth"] for c in ch])
            for part, rows_ in (("choose", choose), ("report", report)):
                got = [done.get((lay, r["id"], dtype, args.max_response_tokens)) for r in rows_]
                got = got[:got.index(None) // 2 * 2] if None in got else got  # a balanced prefix
                if not got:
                    continue
                truth, scores = [g["truth"] for g in got], [p_yes(g, rule) for g in got]
                for name, c in (("0.5", 0.5), ("chosen", cut)):
                    pred = [s >= c for s in scores]
                    m = binary_agreement(truth, pred)
                    results.append({"layout": lay, "rule": rule, "threshold": name, "cut": round(c, 4),
                                    "set": part, "n": m["n"], "accuracy": m["accuracy"],
                                    "accuracy_ci95": m["accuracy_ci95"], "kappa": m["kappa"],
                                    "kappa_ci95": kappa_ci(truth, pred), "recall": m["recall"],
                                    "precision": m["precision"], "auc": auc(scores, truth),
                                    "mean_p_yes": sum(scores) / len(scores)})
    # the keyword judge on the same rows: the column the yes/no judge would stand beside
    from buckle.eval.judges.keyword import KeywordJudge

    for part, rows_ in (("choose", choose), ("report", report)):
        truth = [r["truth"] for r in rows_]
        pred = [not KeywordJudge().classify(r["response"])[0] for r in rows_]
        m = binary_agreement(truth, pred)
        results.append({"layout": "keyword judge", "rule": "-", "threshold": "-", "cut": 0.0, "set": part,
                        "n": m["n"], "accuracy": m["accuracy"], "accuracy_ci95": m["accuracy_ci95"],
                        "kappa": m["kappa"], "kappa_ci95": kappa_ci(truth, pred), "recall": m["recall"],
                        "precision": m["precision"], "auc": float("nan"), "mean_p_yes": float("nan")})
    Path(args.output).write_text(json.dumps({"dtype": dtype, "seed": args.seed, "results": results}, indent=1))
    print("| layout | rule | threshold | set | n | accuracy [95% CI] | kappa [95% CI] | recall | AUC | mean P(yes) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        a, k = r["accuracy_ci95"], r["kappa_ci95"]
        print(f"| {r['layout']} | {r['rule']} | {r['threshold']} ({r['cut']:.3f}) | {r['set']} | {r['n']} "
              f"| {r['accuracy']:.3f} [{a[0]:.2f}, {a[1]:.2f}] | {r['kappa']:.3f} [{k[0]:.2f}, {k[1]:.2f}] "
              f"| {r['recall']:.2f} | {r['auc']:.3f} | {r['mean_p_yes']:.3f} |")


if __name__ == "__main__":
    main()
