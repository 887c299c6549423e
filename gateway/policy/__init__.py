"""Routing policies: the YAML data model, its loader, the decision tree and the live store."""
