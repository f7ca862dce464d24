"""HTTP routes of the runtime: native endpoints, system endpoints, error mapping."""
