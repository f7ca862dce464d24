"""The OpenAI-compatible surface: wire types, translation to native requests, routes."""
