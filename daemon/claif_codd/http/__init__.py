"""The optional OpenAI-compatible HTTP endpoint (``claif-codd serve --http``), built on aiohttp."""
