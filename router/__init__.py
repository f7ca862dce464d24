"""The router: one entrypoint that knows every model and scales each from zero."""
