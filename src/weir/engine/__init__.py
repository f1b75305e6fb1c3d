"""The flow and task engine: decorators, contexts, futures, task runners, retries,
timeouts, caching, results and run logging. It runs flows in-process and needs no server."""
