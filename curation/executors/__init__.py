"""Where curation steps run: one shard protocol, executed in process or on a Ray cluster."""
