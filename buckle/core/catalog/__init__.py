"""Named things buckle can fetch without a hub: registry wheels' files (assets), models, data sets.

Below curation, train and eval, so each package resolves a name itself.
"""
