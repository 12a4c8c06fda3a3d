"""The every-stage pipeline: a typed plan (plan), its config (config), the nodes as cached steps
(build, steps), how a step's command runs (runner, progress), the report and the dev-split sweep."""
