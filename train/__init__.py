"""Fine-tuning stages (align, pre, during, post, attack) as ordinary SFT jobs; see train.run.train."""
