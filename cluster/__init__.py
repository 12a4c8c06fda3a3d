"""Where jobs run: a JobSpec submitted to a backend (local, Ray Jobs, Slurm, KubeRay).

Three parts kept apart: `spec` (what to run), `profiles` (where and how), and
`backends` (turning one into a job and asking about it). Job records live in a
local SQLite file (`jobdb`). This package imports no other buckle package.
"""
