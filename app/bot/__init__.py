"""Everything people read or write on GitHub: comments, check runs, pull requests, memory."""
