"""claif-codd: the per-user daemon that keeps Codex warm for every client."""
