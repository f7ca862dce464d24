"""The router's HTTP surface: native and OpenAI routes (forwarded), status routes, auth, errors."""
