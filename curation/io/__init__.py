"""Curation I/O: records and their on-disk schema, the reader, shards, the sink that writes them once, summaries."""
