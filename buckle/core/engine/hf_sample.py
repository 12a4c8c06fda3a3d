"""The HF backend's batched sampling, where every row has its own temperature and top-p.

One decode loop covers many (prompt, temperature, top_p) rows, so a whole
round of candidates costs a few batched loops instead of one `generate` per
candidate. Rows that share a prompt (every grid pair of one beam member)
share its prefill: the prompt runs through the model once and its KV cache is
copied to those rows, into buffers sized for the whole generation that each
step writes in place (transformers' DynamicCache concatenates, so copies, the
whole cache at every step). Distinct prompts that open alike (a chat
template's system turn: 24 of the embedded model's 43 tokens on AdvBench)
prefill that opening once. Each row draws its token from its own nucleus,
found among its likeliest tokens by a partial sort, by an inverse-CDF lookup:
no sort, mask or multinomial over the whole vocabulary per step.
"""
from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch

from buckle.core.engine.base import Sample

try:  # transformers >= 4.56 keeps a cache as layers
    from transformers.cache_utils import DynamicLayer
except ImportError:  # older ones: the cache stays as prefill returned it
    DynamicLayer = None

CANDIDATES = 256  # likeliest tokens searched for a nucleus; a row whose nucleus is wider sorts its whole vocabulary
MIN_SHARED_PREFIX = 8  # a shorter common opening is not worth its own forward


def _cache_arg(model: Any) -> str:
    """`cache` where the model's forward takes it (newer transformers 5), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


class PerRowSampling:
    """Temperature then nucleus (top-p) sampling with one setting per batch row.

    A row keeps its likeliest tokens while the probability mass before a token
    is below its top_p (so at least one); top_p >= 1 keeps the whole vocabulary.
    A row at temperature 0 is greedy: it takes its likeliest token.
    """

    def __init__(self, temperatures: Sequence[float], top_ps: Sequence[float], candidates: int = CANDIDATES):
        temps = torch.tensor(list(temperatures), dtype=torch.float32)
        self.greedy = temps <= 0
        self.temperatures = temps.masked_fill(self.greedy, 1.0)  # greedy rows' nuclei are computed, then unused
        self.top_ps = torch.tensor(list(top_ps), dtype=torch.float32)
        self.candidates = candidates

    def nuclei(self, logits: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Each row's nucleus, in groups of rows: (rows, cumulative probabilities, token ids, sizes).

        A group's cumulative probabilities and ids are [len(rows), width]; a row's
        nucleus is its first `size` entries, likeliest first (the whole vocabulary
        in id order where top_p >= 1). Probabilities are float32.
        """
        probs = (logits.float() / self.temperatures.to(logits.device)[:, None]).softmax(dim=-1)
        top_ps, vocab = self.top_ps.to(logits.device), probs.shape[-1]
        groups = []
        whole = (top_ps >= 1).nonzero()[:, 0]
        if whole.numel():
            ids = torch.arange(vocab, device=probs.device).expand(whole.numel(), vocab)
            groups.append((whole, probs[whole].cumsum(dim=-1), ids, torch.full_like(whole, vocab)))
        part = (top_ps < 1).nonzero()[:, 0]
        if part.numel():
            vals, ids = probs[part].topk(min(self.candidates, vocab), dim=-1)  # sorted, likeliest first
            cum = vals.cumsum(dim=-1)
            # the candidates' mass comes before every other token: short of top_p, the nucleus may go on
            wide = cum[:, -1] < top_ps[part]
            if wide.any():
                w_vals, w_ids = probs[part[wide]].sort(dim=-1, descending=True)
                w_cum = w_vals.cumsum(dim=-1)
                groups.append((part[wide], w_cum, w_ids, _sizes(w_cum, w_vals, top_ps[part[wide]])))
                part, vals, cum, ids = part[~wide], vals[~wide], cum[~wide], ids[~wide]
            if part.numel():
                groups.append((part, cum, ids, _sizes(cum, vals, top_ps[part])))
        return groups

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        """One token id per row from its nucleus, with one uniform number per row from torch's generator."""
        greedy = self.greedy.to(logits.device)
        if bool(greedy.all()):  # no nucleus to find, nor a random number to draw
            return logits.argmax(dim=-1)
        u = torch.rand(logits.shape[0], 1, device=logits.device)
        out = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
        for rows, cum, ids, size in self.nuclei(logits):
            last = (size - 1)[:, None]
            pick = torch.searchsorted(cum, u[rows] * cum.gather(1, last), right=True)
            out[rows] = ids.gather(1, torch.minimum(pick, last))[:, 0]
        return torch.where(greedy, logits.argmax(dim=-1), out)


def _sizes(cum: torch.Tensor, vals: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    """Tokens kept per row of sorted probabilities: those whose preceding mass is below top_p, at least one."""
    return ((cum - vals) < top_ps[:, None]).sum(dim=-1).clamp(min=1)


def sample(model: Any, prompts: Sequence[Sequence[int]], temperatures: Sequence[float],
           top_ps: Sequence[float], max_new_tokens: Sequence[int], pad_id: int,
           eos_ids: Sequence[int], batch_size: int = 64, seed: int | None = None,
           min_new_tokens: int = 0) -> list[Sample]:
    """Sample one continuation per row, batching rows of similar prompt length.

    Args:
        model: a causal LM.
        prompts: token ids of each row's prompt.
        temperatures, top_ps: per-row sampling settings.
        max_new_tokens: per-row token budget (a batch runs to its largest).
        pad_id: padding token id (prompts are left-padded).
        eos_ids: tokens that end a row.
        batch_size: rows per decode loop.
        seed: seeds torch once before the first batch, for reproducible runs.
        min_new_tokens: suppress end-of-sequence before this many tokens (benchmarks).

    Returns:
        One Sample per row, in input order.
    """
    if not (len(prompts) == len(temperatures) == len(top_ps) == len(max_new_tokens)):
        raise ValueError("prompts, temperatures, top_ps and max_new_tokens differ in length")
    if not all(len(p) for p in prompts):
        raise ValueError("a prompt has no tokens")
    if seed is not None:
        torch.manual_seed(seed)
    # similar lengths pad little; equal prompts side by side share a prefill
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), tuple(prompts[i])))
    out: list[Sample | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        rows = _generate(model, [prompts[i] for i in idx], [temperatures[i] for i in idx],
                         [top_ps[i] for i in idx], max(max_new_tokens[i] for i in idx),
                         pad_id, list(eos_ids), min_new_tokens)
        for i, ids in zip(idx, rows):
            out[i] = _cut(ids, eos_ids, max_new_tokens[i])
    return out  # type: ignore[return-value]


def _generate(model: Any, prompts: list[Sequence[int]], temps: list[float], top_ps: list[float],
              budget: int, pad_id: int, eos_ids: list[int], min_new: int) -> list[list[int]]:
    """`budget` new tokens per row; a row that ends (an eos token) is padded from then on, as in `generate`."""
    dev = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    sampler, eos = PerRowSampling(temps, top_ps), torch.tensor(eos_ids, dtype=torch.long, device=dev)
    out = torch.full((len(prompts), budget), pad_id, dtype=torch.long, device=dev)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=dev)
    with torch.inference_mode():
        logits, cache, mask = _shared_prefill(model, prompts, width + budget, pad_id)
        positions = mask[:, :width].sum(dim=-1, keepdim=True)  # where each row's first new token sits
        for step in range(budget):
            if step < min_new and eos.numel():
                logits[:, eos] = float("-inf")
            token = sampler.draw(logits).masked_fill(done, pad_id)
            out[:, step] = token
            done |= torch.isin(token, eos)
            if step + 1 == budget or bool(done.all()):
                break
            logits = model(input_ids=token[:, None], attention_mask=mask[:, :width + step + 1],
                           position_ids=positions + step, use_cache=True, logits_to_keep=1,
                           **{_cache_arg(model): cache}).logits[:, -1]
    return out.cpu().tolist()


def _shared_prefill(model: Any, prompts: list[Sequence[int]], capacity: int,
                    pad_id: int) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """Run each distinct prompt once (left-padded); return every row's next-token logits, a KV cache
    with room for `capacity` positions per row, and the rows' attention mask over those positions.

    Where the distinct prompts open alike (a chat template's system turn), that prefix runs once and
    each row holds [prefix][padding][rest]: the mask skips the padding, positions count only real tokens.
    """
    dev = next(model.parameters()).device
    slot: dict[tuple, int] = {}
    rows = torch.tensor([slot.setdefault(tuple(p), len(slot)) for p in prompts], device=dev)
    width = max(len(p) for p in prompts)
    shared = _common_prefix(list(slot)) if len(slot) > 1 else 0
    shared = shared if shared >= MIN_SHARED_PREFIX else 0
    ids = torch.full((len(slot), width - shared), pad_id, dtype=torch.long)
    mask = torch.zeros((len(slot), capacity), dtype=torch.long)
    mask[:, :shared] = 1
    for row, p in enumerate(slot):
        ids[row, width - len(p):] = torch.tensor(p[shared:])
        mask[row, width - len(p) + shared:] = 1  # the new tokens' columns too: every row decodes every step
    ids, mask = ids.to(dev), mask.to(dev)
    positions = (mask[:, :width].cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
    cache = None
    if shared:
        head = model(input_ids=ids.new_tensor([list(next(iter(slot))[:shared])]), use_cache=True, logits_to_keep=1)
        cache = _cache_of(head)
        cache.reorder_cache(torch.zeros(len(slot), dtype=torch.long, device=dev))  # one copy per prompt
    out = model(input_ids=ids, attention_mask=mask[:, :width], position_ids=positions[:, shared:], use_cache=True,
                logits_to_keep=1, **({_cache_arg(model): cache} if shared else {}))
    return out.logits[rows, -1], _to_rows(_cache_of(out), rows, capacity), mask[rows]


def _common_prefix(prompts: list[tuple]) -> int:
    """Tokens every prompt opens with, leaving each at least one of its own (its last position's logits)."""
    limit = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for k in range(limit):
        if any(p[k] != first[k] for p in prompts):
            return k
    return max(limit, 0)


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return out.past_key_values if cache is None else cache


def _to_rows(cache: Any, rows: torch.Tensor, capacity: int) -> Any:
    """The cache copied to `rows` (each output row's distinct prompt), each full-attention layer into a
    buffer of `capacity` positions; other layers (sliding windows, older transformers) copied as they are."""
    layers = getattr(cache, "layers", None)
    if DynamicLayer is None or layers is None:
        cache.reorder_cache(rows)
        return cache
    for k, layer in enumerate(layers):
        if type(layer) is DynamicLayer and layer.get_seq_length() > 0:
            layers[k] = _BufferedLayer(layer.keys[rows], layer.values[rows], capacity)
        else:
            layer.reorder_cache(rows)
    return cache


class _BufferedLayer(DynamicLayer or object):  # type: ignore[misc]
    """A DynamicLayer whose keys and values live in buffers of a fixed capacity: a step writes its
    positions in place and the layer hands out views of the filled part."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self._keys = keys.new_empty((*keys.shape[:2], capacity, keys.shape[-1]))
        self._values = values.new_empty((*values.shape[:2], capacity, values.shape[-1]))
        self.device, self.is_initialized, self._filled = keys.device, True, 0
        self._write(keys, values)

    def _write(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        start, end = self._filled, self._filled + keys.shape[-2]
        if end > self._keys.shape[-2]:
            raise RuntimeError(f"KV buffer of {self._keys.shape[-2]} positions cannot take position {end}")
        self._keys[:, :, start:end] = keys
        self._values[:, :, start:end] = values
        self._filled = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions after the filled ones; return all filled keys and values."""
        self._write(key_states, value_states)
        return self.keys, self.values


def _cut(ids: list[int], eos_ids: Sequence[int], limit: int) -> Sample:
    for pos, tok in enumerate(ids[:limit]):
        if tok in eos_ids:
            return Sample(ids[:pos], True)
    return Sample(ids[:limit], False)
