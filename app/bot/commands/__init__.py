"""The commands people write: `/audit`, `@db-architect …` on our pull requests, `/ask`."""
