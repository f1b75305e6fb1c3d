"""Messages between the parts of the server: for now, the in-process wake-up board
that lets a new run wake the worker long-polling for it (a later issue puts brokers
across replicas behind the same names)."""

from weir.server.messaging.wakeups import Wakeups

__all__ = ["Wakeups"]
