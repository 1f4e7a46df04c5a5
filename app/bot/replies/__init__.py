"""What we answer on GitHub: the check run and the replies on pull requests."""
