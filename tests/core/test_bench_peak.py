"""bench/peak.py: the FLOP count the benches divide by the measured matmul peak."""
import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("peak", Path(__file__).resolve().parents[2] / "bench" / "peak.py")
peak = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(peak)


def test_flops_count_two_per_param_forward_six_training():
    assert peak.model_flops(1000, 50, 2.0) == 2 * 1000 * 50 / 2.0
    assert peak.model_flops(1000, 50, 2.0, training=True) == 6 * 1000 * 50 / 2.0
    flops, share = peak.share_of_peak(1000, 50, 2.0, peak=1e5, training=True)
    assert flops == 150_000 and share == pytest.approx(1.5)


@pytest.mark.parametrize("dtype", peak.DTYPES)
def test_matmul_peak_is_measured_per_dtype(dtype):
    assert peak.matmul_peak(dtype, n=64, reps=2) > 0
