"""buckle: harden LLMs against fine-tuning jailbreaks with curated data, at every stage of customization.

The design card's folders install under this one name: `buckle.core` (shared by
all), `buckle.curation`, `buckle.train`, `buckle.eval`, `buckle.cluster` and
`buckle.launcher` (the CLI and pipeline, which may import all of them).
"""
__version__ = "0.1.0"
