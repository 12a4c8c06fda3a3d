"""Per-row batched sampling, now the hf backend's buckle.core.engine.hf_sample; names kept here."""
from buckle.core.engine.base import Sample  # noqa: F401
from buckle.core.engine.hf_sample import PerRowSampling, sample  # noqa: F401
