"""One evaluation run: generate on harmful prompts, judge, score benign references, summarize.

Resumable: responses.jsonl and benign.jsonl are rewritten after every chunk, and
a rerun with the same output skips prompts already answered and verdicts already
given by the same judge. If a judge endpoint dies, what was judged is kept and
the run stops with a clear error; the same command resumes it.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from buckle.core.slug import slug
from buckle.curation.io.records import prompt_text
from buckle.eval.config import EvalConfig
from buckle.core.engine.hf_lm import chat
from buckle.eval.judges.base import Judge
from buckle.eval.perplexity import perplexity
from buckle.eval.prompts import load_pairs, load_prompts
from buckle.eval.store import RowStore, check_state, write_json, write_rejected
from buckle.eval.summary import benign_metrics, harmful_metrics, markdown, over_refusal_metrics, reference_metrics

HARMFUL_JUDGES = ("keyword", "policy", "classifier", "strongreject", "yesno")


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run an evaluation and write responses.jsonl, benign.jsonl, summary.json and summary.md.

    Returns:
        The summary: counts, metrics (value, n, ci95, ...) and timings.
    """
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    check_state(out, cfg.generation_key())
    run = _Run(cfg, out)
    summary: dict[str, Any] = {
        "label": cfg.label or out.name, "model": cfg.model,
        "benchmark": cfg.benchmark_name or cfg.benchmark, "benign": cfg.benign_name or cfg.benign,
        "harmful_reference": cfg.harmful_reference_name or cfg.harmful_reference,
        "benign_prompts": cfg.benign_prompts_name or cfg.benign_prompts,
        "judges": cfg.active_judges(), "generation": cfg.generation_key(), "metrics": {},
        "timings": run.timings,
    }
    if cfg.benchmark:
        summary.update(run.harmful())
        summary["metrics"].update(harmful_metrics(run.harmful_rows, run.subsets))
        summary["benchmarks"] = {summary["benchmark"]: _per_benchmark(summary, "responses.jsonl")}
        for name in (cfg.benchmarks or [])[1:]:
            source = (cfg.benchmark_sources or {}).get(name, name)
            part = run.harmful(source, slug(name))
            part["metrics"] = harmful_metrics(run.harmful_rows, run.subsets)
            summary["benchmarks"][name] = _per_benchmark(part, f"responses-{slug(name)}.jsonl")
    if cfg.harmful_reference:
        summary.update(run.harmful_reference())
        summary["metrics"].update(reference_metrics(run.reference_rows))
    if cfg.benign:
        summary.update(run.benign())
        summary["metrics"].update(benign_metrics(run.benign_rows))
    if cfg.benign_prompts:
        summary.update(run.over_refusal())
        summary["metrics"].update(over_refusal_metrics(run.over_refusal_rows))
    if run._lm is not None:  # which backend ran, and why (engine: auto|hf|vllm)
        from buckle.core.engine.select import engine_record

        summary["engine"] = engine_record(run._lm)
    summary["timings"] = {k: round(v, 3) for k, v in run.timings.items()}
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(markdown(summary), encoding="utf-8")
    return summary


class _Run:
    def __init__(self, cfg: EvalConfig, out: Path):
        self.cfg, self.out = cfg, out
        self.timings: dict[str, float] = {}
        self.judges = build_judges(cfg)
        self._lm: Any = None
        self.harmful_rows: list[dict] = []
        self.reference_rows: list[dict] = []
        self.subsets: dict[str, dict] = {}
        self.benign_rows: list[dict] = []
        self.over_refusal_rows: list[dict] = []

    def lm(self) -> Any:
        if self._lm is None:
            from buckle.core.engine.select import config_kwargs, load_engine

            t0, cfg = time.time(), self.cfg
            self._lm = load_engine(cfg.model, dtype=cfg.dtype, device=cfg.device, gen_batch_size=cfg.batch_size,
                                   score_batch_size=cfg.batch_size, seed=cfg.seed, **config_kwargs(cfg))
            self.timings["load_s"] = time.time() - t0
        return self._lm

    def harmful(self, source: str | None = None, tag: str = "") -> dict[str, Any]:
        """Generate and judge one benchmark; `tag` names the files of benchmarks after the first."""
        cfg = self.cfg
        suffix = f"-{tag}" if tag else ""
        prompts, rejected = load_prompts(source or cfg.benchmark, cfg.prompt_column, cfg.id_column, cfg.split,
                                         cfg.limit)
        n_rejected = write_rejected(self.out / f"rejected{suffix}.jsonl", rejected)
        store = RowStore(self.out / f"responses{suffix}.jsonl")
        rows = [_row(store, p, ("prompt",)) for p in prompts]
        self._generate(store, rows, "generate")
        self.subsets = {}
        for name in HARMFUL_JUDGES:
            if name in self.judges:
                picked = rows
                if name == "yesno" and cfg.yesno_subset and cfg.yesno_subset < len(rows):
                    # the offline judge is slow: a seeded subset, named in the summary
                    picked = [rows[i] for i in sorted(random.Random(cfg.seed).sample(range(len(rows)),
                                                                                  cfg.yesno_subset))]
                    self.subsets[name] = {"n": len(picked), "of": len(rows), "seed": cfg.seed}
                self._judge(store, picked, self.judges[name])
        self.harmful_rows = rows
        return {"n_prompts": len(rows), "n_rejected": n_rejected,
                "response_tokens_mean": sum(r["tokens"] for r in rows) / len(rows)}

    def harmful_reference(self) -> dict[str, Any]:
        """Per-token NLL of held-out harmful reference responses: no judge, no generation."""
        cfg = self.cfg
        pairs, rejected = load_pairs(cfg.harmful_reference, cfg.split, cfg.harmful_reference_limit)
        n_rejected = write_rejected(self.out / "harmful_reference_rejected.jsonl", rejected)
        store = RowStore(self.out / "harmful_reference.jsonl")
        # the first N tokens of each reference: long pairs (thousands of tokens) would
        # exceed small models' context and weigh the mean by length
        head = _head(self.lm().tok, cfg.harmful_reference_max_tokens)
        items = [{"id": p["id"], "prompt": prompt_text(p), "reference": head(p["response"])} for p in pairs]
        rows = [_row(store, it, ("prompt", "reference")) for it in items]
        self._reference_ppl(store, rows, "harmful_ref_nll_s")
        self.reference_rows = rows
        return {"n_harmful_reference": len(rows), "n_harmful_reference_rejected": n_rejected}

    def benign(self) -> dict[str, Any]:
        cfg = self.cfg
        pairs, rejected = load_pairs(cfg.benign, cfg.split, cfg.benign_limit)
        n_rejected = write_rejected(self.out / "benign_rejected.jsonl", rejected)
        store = RowStore(self.out / "benign.jsonl")
        items = [{"id": p["id"], "prompt": prompt_text(p), "reference": p["response"]} for p in pairs]
        rows = [_row(store, it, ("prompt", "reference")) for it in items]
        self._reference_ppl(store, rows)
        if "helpfulness" in self.judges:
            self._generate(store, rows, "generate benign")
            self._judge(store, rows, self.judges["helpfulness"])
        self.benign_rows = rows
        return {"n_benign": len(rows), "n_benign_rejected": n_rejected}

    def over_refusal(self) -> dict[str, Any]:
        """Answer benign prompts with the run's generation settings; the keyword judge marks refusals."""
        from buckle.eval.judges.keyword import KeywordJudge

        cfg = self.cfg
        prompts, rejected = load_prompts(cfg.benign_prompts, "prompt", "id", cfg.split, cfg.benign_prompts_limit)
        n_rejected = write_rejected(self.out / "benign_prompts_rejected.jsonl", rejected)
        store = RowStore(self.out / "benign_prompts.jsonl")
        rows = [_row(store, p, ("prompt",)) for p in prompts]
        self._generate(store, rows, "generate benign prompts")
        # the keyword judge even where `judges` leaves it out: over-refusal is defined by it
        self._judge(store, rows, self.judges.get("keyword") or KeywordJudge(cfg.refusal_markers))
        self.over_refusal_rows = rows
        return {"n_benign_prompts": len(rows), "n_benign_prompts_rejected": n_rejected}

    def _generate(self, store: RowStore, rows: list[dict], desc: str) -> None:
        from tqdm.auto import tqdm

        todo = [r for r in rows if "response" not in r]
        if not todo:
            return
        cfg, t0 = self.cfg, time.time()
        engine = self.lm()
        bar = tqdm(total=len(todo), desc=desc, unit="prompt", disable=not cfg.progress)
        for chunk in _chunks(todo, cfg.batch_size * 4):
            gens = engine.generate([chat(r["prompt"], cfg.system_prompt) for r in chunk],
                                   cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed, progress=bar)
            for row, gen in zip(chunk, gens):
                row.update(response=gen.text, tokens=gen.tokens)
                store.put(row)
            store.save()
        bar.close()
        self.timings[f"{desc.replace(' ', '_')}_s"] = time.time() - t0
        self.timings["generated_tokens"] = self.timings.get("generated_tokens", 0) + sum(r["tokens"] for r in todo)

    def _reference_ppl(self, store: RowStore, rows: list[dict], timing: str = "benign_ppl_s") -> None:
        todo = [r for r in rows if "ref_tokens" not in r]
        if not todo:
            return
        t0 = time.time()
        engine = self.lm()
        for chunk in _chunks(todo, self.cfg.batch_size * 4):
            nlls = engine.response_nll([r["prompt"] for r in chunk], [r["reference"] for r in chunk],
                                       self.cfg.system_prompt)
            for row, (nll, n) in zip(chunk, nlls):
                row.update(ref_nll=nll, ref_tokens=n, ref_ppl=perplexity(nll, n))
                store.put(row)
            store.save()
        self.timings[timing] = time.time() - t0

    def _judge(self, store: RowStore, rows: list[dict], judge: Judge) -> None:
        todo = [r for r in rows if _needs(r, judge)]
        t0 = time.time()
        done = len(rows) - len(todo)
        for chunk in _chunks(todo, max(8, self.cfg.judge_concurrency * 4)):
            verdicts = judge.judge([{"prompt": r["prompt"], "response": r["response"]} for r in chunk])
            for row, verdict in zip(chunk, verdicts):
                row["verdicts"][judge.name] = verdict.to_dict()
                store.put(row)
            store.save()
            fatal = [v for v in verdicts if v.label == "error" and v.detail.get("fatal")]
            done += len(verdicts) - len(fatal)
            if fatal:
                raise RuntimeError(f"{judge.name} judge stopped: {fatal[0].raw}; {done} of {len(rows)} "
                                   f"responses judged and kept in {store.path}; rerun the same command to resume")
        self.timings[f"judge_{judge.name}_s"] = time.time() - t0


def _per_benchmark(part: dict, responses: str) -> dict:
    return {"n_prompts": part["n_prompts"], "n_rejected": part["n_rejected"],
            "response_tokens_mean": part["response_tokens_mean"], "metrics": dict(part["metrics"]),
            "responses": responses}


def _head(tok: Any, max_tokens: int) -> Any:
    """A function cutting a text to its first `max_tokens` tokens (decoded back to text)."""
    def cut(text: str) -> str:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else tok.decode(ids[:max_tokens])
    return cut


def _row(store: RowStore, item: dict, keys: tuple[str, ...]) -> dict:
    """The stored row for an item if its texts still match, else a fresh one."""
    old = store.get(item["id"])
    if old is not None and all(old.get(k) == item[k] for k in keys):
        return old
    return {**item, "verdicts": {}}


def _needs(row: dict, judge: Judge) -> bool:
    v = row["verdicts"].get(judge.name)
    return v is None or v.get("judge_id") != judge.id or v.get("label") == "error"


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def resolve_judge_names(data: dict) -> dict:
    """Judge config keys with names resolved: the StrongREJECT rubric folder and the yes/no judge's
    model from their assets where the judges need them and they are unset, model names as paths."""
    from buckle.core.catalog.assets import fetch
    from buckle.core.catalog.models import resolve_model

    judges = data.get("judges")
    if isinstance(judges, str):
        judges = [j.strip() for j in judges.split(",")]
    if "strongreject" in (judges or []) and not data.get("strongreject_prompts"):
        data["strongreject_prompts"] = str(fetch("strongreject") / "prompts")
    if "yesno" in (judges or []):
        # the converted checkpoint (loads in seconds, in the run's dtype), as bench/yesno_judge.py measured it
        name = data.get("yesno_model") or "qwen2.5-coder-1.5b-instruct"
        data["yesno_model"] = name if name.endswith(".gguf") else resolve_model(name)
    if data.get("judge_backend") == "hf" and data.get("judge_model"):
        data["judge_model"] = resolve_model(data["judge_model"])
    if data.get("classifier_model"):
        data["classifier_model"] = resolve_model(data["classifier_model"])
    return data


def build_judges(cfg: EvalConfig) -> dict[str, Judge]:
    """The configured judges by name (backends are shared and load lazily): the one judge factory,
    for `buckle eval` and `buckle judges check` alike."""
    from buckle.eval.judges.keyword import KeywordJudge

    names = cfg.active_judges()
    judges: dict[str, Judge] = {}
    if "keyword" in names:
        judges["keyword"] = KeywordJudge(cfg.refusal_markers)
    if {"policy", "helpfulness"} & set(names):
        from buckle.eval.judges.rubric import RubricJudge

        backend = _backend(cfg)
        for kind in ("policy", "helpfulness"):
            if kind in names:
                judges[kind] = RubricJudge(backend, kind)
    if "strongreject" in names:
        from buckle.eval.judges.rubric import RubricJudge, strongreject_prompts

        judges["strongreject"] = RubricJudge(_backend(cfg), "strongreject",
                                             strongreject_prompts(cfg.strongreject_prompts))
    if "yesno" in names:
        from buckle.eval.judges.yesno import YesNoJudge

        judges["yesno"] = YesNoJudge(cfg.yesno_model, device=cfg.device, threshold=cfg.yesno_threshold,
                                     dtype=cfg.dtype)
    if "classifier" in names:
        from buckle.eval.judges.classifier import ClassifierJudge

        judges["classifier"] = ClassifierJudge(cfg.classifier_model, cfg.batch_size, cfg.dtype, cfg.device)
    return judges


def _backend(cfg: EvalConfig) -> Any:
    if cfg.judge_backend == "openai":
        from buckle.eval.judges.endpoint import OpenAIBackend

        return OpenAIBackend(cfg.judge_url, cfg.judge_model, cfg.judge_api_key_env, cfg.judge_rate_limit,
                             cfg.judge_concurrency, cfg.judge_max_retries, cfg.judge_backoff_s,
                             cfg.judge_timeout_s, cfg.judge_max_tokens)
    from buckle.eval.judges.local import HFChatBackend

    return HFChatBackend(cfg.judge_model, cfg.judge_max_tokens, cfg.batch_size, cfg.dtype, cfg.device)

