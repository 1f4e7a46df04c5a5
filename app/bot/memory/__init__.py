"""What reviewers taught us: feedback on findings and its recall in later audits."""
