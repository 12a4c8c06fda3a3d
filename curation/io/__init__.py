"""Curation I/O: records and their on-disk schema, readers, shards and the sink that writes them once."""
