"""Records: what an entity's records look like and how payloads are checked (pure)."""
