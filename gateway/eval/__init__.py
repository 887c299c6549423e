"""The production-readiness evaluation: a team's own tickets through each candidate model,
the four numbers with their intervals, a paired comparison, and the gate that admits a model
to a route. docs/eval.md describes the files and the outcome model."""
