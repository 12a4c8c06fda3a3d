"""The layer below every package: what several of them need, written once.

Nothing here imports another buckle package; heavy libraries load inside functions.
"""
