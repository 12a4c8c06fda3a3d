"""The curation method: revision prompts, sampling, beam search, scorers and judges, as steps over records."""
