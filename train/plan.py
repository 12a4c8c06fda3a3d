"""Memory per GPU for fine-tuning a decoder: full vs LoRA, ZeRO-2/3, with and without offload.

Model states follow DeepSpeed's own accounting (`estimate_zero2_model_states_mem_needs`,
`estimate_zero3_model_states_mem_needs`: 2 bytes of 16-bit weights plus 18 bytes
of gradients, fp32 master weights and Adam moments per trainable parameter,
1.5x buffer on CPU), so the two agree; activations and LoRA are added on top.
Architectures are Llama-style (Llama, Mistral, Qwen2, SmolLM); Llama-3-8B and
-70B ship here so planning works offline. A LoRA run that merges its adapter
also counts the merge's host memory (train.merge: every rank merges its share
of the shards, tensor by tensor) on top of the training's host-side states,
which are still held while it runs.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from buckle.train.merge import shard_bytes as merge_shard_bytes

_L3 = dict(vocab_size=128256, num_key_value_heads=8, tie_word_embeddings=False)
KNOWN = {
    "llama-3-8b": dict(_L3, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32),
    "llama-3-70b": dict(_L3, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                        num_attention_heads=64),
}
ALIASES = {f"meta-llama/{p}-{s}{i}": f"llama-3-{s.lower()}"
           for p in ("Meta-Llama-3", "Llama-3.1", "Meta-Llama-3.1") for s in ("8B", "70B")
           for i in ("", "-Instruct")}
GIB = 2 ** 30
HEADROOM = 0.9  # share of GPU memory a plan may use (allocator fragmentation, CUDA context)


@dataclass
class Arch:
    """The numbers of a Llama-style decoder that memory depends on."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    tie_word_embeddings: bool = False
    head_dim: int = 0

    def __post_init__(self):
        self.head_dim = self.head_dim or self.hidden_size // self.num_attention_heads

    def _linears(self) -> list[tuple[int, int]]:
        h, i, q, kv = self.hidden_size, self.intermediate_size, \
            self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    def total_params(self) -> int:
        """All parameters, tied embeddings counted once."""
        layer = sum(a * b for a, b in self._linears()) + 2 * self.hidden_size
        embed = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return embed + self.num_hidden_layers * layer + self.hidden_size

    def largest_layer_params(self) -> int:
        """The most parameters one module holds directly (what ZeRO-3 gathers at once)."""
        return max([self.vocab_size * self.hidden_size] + [a * b for a, b in self._linears()])

    def largest_linear_params(self) -> int:
        """The most parameters of one linear layer of a block (what a LoRA merge adapts at once)."""
        return max(a * b for a, b in self._linears())

    def lora_params(self, r: int) -> int:
        """Trainable parameters of rank-r LoRA on every linear layer of the blocks."""
        return self.num_hidden_layers * sum(r * (a + b) for a, b in self._linears())


def architecture(name_or_config: str) -> Arch:
    """An Arch from a shipped name/alias, a config.json (or its directory), or a hub id."""
    key = ALIASES.get(name_or_config, name_or_config).lower()
    if key in KNOWN:
        return Arch(**KNOWN[key])
    path = Path(name_or_config).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return _from_config(json.loads(path.read_text(encoding="utf-8")), str(path))
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(name_or_config).to_dict()
    except Exception as exc:  # offline or unknown id: say which names work without the hub
        raise ValueError(f"model '{name_or_config}': no config found ({type(exc).__name__}); offline "
                         f"names: {', '.join(KNOWN)}, or a config.json path") from None
    return _from_config(config, name_or_config)


def _from_config(config: dict, where: str) -> Arch:
    config = config.get("text_config", config)
    fields = [f for f in Arch.__dataclass_fields__ if f != "head_dim"]
    missing = [f for f in fields[:5] if f not in config]
    if missing:
        raise ValueError(f"config '{where}' lacks {missing[0]} (only Llama-style decoders are planned)")
    values = {f: config[f] for f in fields if config.get(f) is not None}
    values.setdefault("num_key_value_heads", config["num_attention_heads"])
    return Arch(**values, head_dim=config.get("head_dim") or 0)


def zero2_states(params: int, gpus_per_node: int = 1, nodes: int = 1, offload: bool = False,
                 buffer: float = 1.5) -> tuple[int, int]:
    """(cpu bytes per node, gpu bytes per GPU) of ZeRO-2 model states."""
    gpus = gpus_per_node * nodes
    if offload:
        return int(params * max(4 * gpus, 16) * buffer), int(2 * params)
    return int(params * 4 * gpus_per_node * buffer), int(2 * params + int(18 * params / gpus))


def zero3_states(params: int, largest: int, gpus_per_node: int = 1, nodes: int = 1,
                 offload_optimizer: bool = False, offload_params: bool = False,
                 buffer: float = 1.5) -> tuple[int, int]:
    """(cpu bytes per node, gpu bytes per GPU) of ZeRO-3 model states (zero.Init loading)."""
    gpus, gathered = gpus_per_node * nodes, 4 * largest
    if offload_optimizer and offload_params:
        return int(params * 18 / nodes * buffer), gathered
    if offload_optimizer:
        return int(params * 16 / nodes * buffer), gathered + int(2 * params / gpus)
    return int(largest * 4 * gpus_per_node * buffer), gathered + int(18 * params / gpus)


def activation_bytes(arch: Arch, micro_batch: int, seq_len: int, checkpointing: bool) -> int:
    """16-bit activations of one micro-batch (fused attention, no s^2 term), plus the logits.

    Per layer about 34*b*s*h bytes (Korthikanti et al. 2022); with checkpointing only
    each layer's input (2*b*s*h) is kept and one layer is recomputed at a time.
    Logits: 16-bit values plus fp32 copies for the loss and its gradient.
    """
    bsh, layers = micro_batch * seq_len * arch.hidden_size, arch.num_hidden_layers
    blocks = layers * 2 * bsh + 34 * bsh if checkpointing else layers * 34 * bsh
    return int(blocks + micro_batch * seq_len * arch.vocab_size * 10)


def merge_host_bytes(arch: Arch, ranks_per_node: int, bytes_per_param: int = 2,
                     shard_bytes: int | None = None) -> int:
    """Host bytes per node of the LoRA merge (train.merge) with every rank merging its shards.

    Per rank: the output shard being filled (or one tensor larger than the budget) plus,
    for the largest adapted linear, the weight read, its float32 sum and the cast back.
    """
    budget = merge_shard_bytes() if shard_bytes is None else shard_bytes
    shard = max(budget, bytes_per_param * arch.largest_layer_params())
    per_rank = shard + (2 * bytes_per_param + 4) * arch.largest_linear_params()
    return ranks_per_node * per_rank


@dataclass
class Row:
    """One way to train, and whether it fits (`why` names the numbers when it does not)."""

    method: str
    zero: int
    offload: str
    gpu_gib: float
    states_gib: float
    activations_gib: float
    cpu_gib_per_node: float
    fits: bool
    merge_cpu_gib: float = 0.0  # LoRA merge's host memory per node, on top of cpu_gib_per_node
    why: str = ""


def _why(gpu: int, gpu_memory: float, cpu: int, merge: int, cpu_memory: float | None) -> str:
    out = []
    if gpu > HEADROOM * gpu_memory:
        out.append(f"GPU {gpu / GIB:.1f} GiB > {HEADROOM * gpu_memory / GIB:.1f} GiB usable "
                   f"({HEADROOM:.0%} of {gpu_memory / GIB:.1f})")
    if cpu_memory is not None and cpu + merge > cpu_memory:
        parts = f" (training {cpu / GIB:.1f} + LoRA merge {merge / GIB:.1f})" if merge else ""
        out.append(f"host {(cpu + merge) / GIB:.1f} GiB/node{parts} > {cpu_memory / GIB:.1f} GiB")
    return "; ".join(out)


def plan(arch: Arch, gpus: int, gpu_memory: float, nodes: int = 1, micro_batch: int = 1,
         seq_len: int = 2048, lora_r: int = 16, checkpointing: bool = True,
         cpu_memory: float | None = None, lora_merge: bool = True) -> list[Row]:
    """Rows for full and LoRA fine-tuning under ZeRO-2/3 and each offload choice.

    Args:
        gpus: GPUs per node; gpu_memory and cpu_memory in bytes (cpu per node, optional).
        lora_merge: LoRA rows count the merge's host memory (`merge_host_bytes`) against cpu_memory.
    """
    total, largest = arch.total_params(), arch.largest_layer_params()
    act = activation_bytes(arch, micro_batch, seq_len, checkpointing)
    merge_bytes = merge_host_bytes(arch, gpus) if lora_merge else 0
    rows = []
    for method in ("full", "lora"):
        train_p = total if method == "full" else arch.lora_params(lora_r)
        for zero, offload in ((2, "none"), (2, "optimizer"), (3, "none"), (3, "optimizer"), (3, "all")):
            if zero == 2:
                cpu, gpu = zero2_states(train_p, gpus, nodes, offload != "none")
                frozen = 2 * (total - train_p)  # 16-bit frozen base weights, replicated
            else:
                cpu, gpu = zero3_states(train_p, largest, gpus, nodes, offload != "none", offload == "all")
                frozen = 0 if offload == "all" else int(2 * (total - train_p) / (gpus * nodes))
                if offload == "all" and method == "lora":
                    cpu += int(2 * (total - train_p) / nodes)
            states = gpu + frozen
            merge = merge_bytes if method == "lora" else 0
            why = _why(states + act, gpu_memory, cpu, merge, cpu_memory)
            rows.append(Row(method, zero, offload, round((states + act) / GIB, 2), round(states / GIB, 2),
                            round(act / GIB, 2), round(cpu / GIB, 1), not why, round(merge / GIB, 1), why))
    return rows


def parse_size(text: str) -> float:
    """Bytes of a size like '80GB', '80GiB', '81920MB' or '1.5TB' (GB read as GiB, as GPUs are sold)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"size '{text}' is not like 80GB")
    return float(m.group(1)) * 1024 ** "BKMGT".index((m.group(2) or "B").upper())


def as_dicts(rows: list[Row]) -> list[dict]:
    """Rows as plain dicts (for JSON output)."""
    return [asdict(r) for r in rows]


@dataclass
class ServingRow:
    """Memory per GPU of one inference engine (curation's sampling or evaluation's generation)."""

    use: str
    tp: int
    batch: int
    seq_len: int
    weights_gib: float
    kv_cache_gib: float
    gpu_gib: float
    fits: bool


def serving_memory(arch: Arch, gpus: int, gpu_memory: float, bytes_per_param: int = 2,
                   uses: tuple = (("curate", 64, 1024), ("eval", 32, 576)), headroom: float = 0.9) -> list[ServingRow]:
    """Weights plus KV cache per GPU for each use, at the smallest tensor-parallel degree that fits.

    Args:
        arch: the model's architecture.
        gpus: GPUs available to one engine (tp is a power of two up to this, dividing the KV heads).
        gpu_memory: bytes of one GPU; `headroom` of it may be used (vLLM's gpu_memory_utilization).
        bytes_per_param: 2 for bfloat16 weights and KV cache.
        uses: (name, concurrent sequences, tokens per sequence); defaults: curation's gen_batch_size
            64 x (revision prompt + 160 new tokens, rounded up), eval's 32 x (prompt + 64 new tokens).

    Returns:
        One row per use; `tp` is the recommended degree (the largest tried when none fits).
    """
    kv_per_token = 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * bytes_per_param
    degrees = [d for d in (1, 2, 4, 8, 16) if d <= gpus and arch.num_key_value_heads % d == 0] or [1]
    rows = []
    for use, batch, seq_len in uses:
        for tp in degrees:
            weights = arch.total_params() * bytes_per_param / tp
            kv = kv_per_token * batch * seq_len / tp
            row = ServingRow(use, tp, batch, seq_len, weights / 2**30, kv / 2**30, (weights + kv) / 2**30,
                             weights + kv <= headroom * gpu_memory)
            if row.fits:
                break
        rows.append(row)
    return rows
