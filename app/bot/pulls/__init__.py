"""The pull requests we open: the fix, the plan of a PR, the evidence markdown."""
