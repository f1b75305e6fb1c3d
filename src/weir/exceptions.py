"""Every exception weir raises on purpose. One tree, rooted at `WeirException`:

WeirException
├── ConfigurationError              bad settings, profile or option values
├── DeploymentConfigError           a bad weir.yaml, entrypoint or pull step
├── MissingContextError             called outside a flow or task run
├── ParameterTypeError              flow parameters failed validation
├── SerializationError              a value could not be serialized or deserialized
├── InvalidResultKey (ValueError)   a result key is not a relative path inside its store
├── TaskRunnerError                 a task could not be handed to its runner (e.g. unpicklable)
├── MappingError                    `.map` got arguments of unequal or unknown length
├── UnfinishedRun                   asked for the result of a run that has not ended
├── RunError                        a run ended in a non-completed final state
│   ├── FailedRun                   raised by `State.result()` for a failed run with no exception
│   ├── CrashedRun                  the run's process or infrastructure died under it
│   ├── CancelledRun                the run was cancelled (raise it to cancel the current run)
│   └── UpstreamTaskError           an upstream task this one depends on did not complete
├── RunTimeout (also TimeoutError)  a flow or task run exceeded its `timeout_seconds`
├── ConcurrencySlotTimeout (also TimeoutError)  no slot of a concurrency limit in time
├── ServerUnreachable               the weir API could not be reached (refused, timed out)
└── APIError                        the weir API answered an error (`status`, `detail`)
    ├── BadRequest                  400 / 422: the request was invalid
    ├── Unauthorized                401: missing or wrong credentials
    ├── Forbidden                   403: not allowed (or a CSRF token was refused)
    ├── NotFound                    404: no such object
    ├── ObjectAlreadyExists         409: an object with that name or id exists
    └── ServerError                 5xx: the server failed (after retries)
"""

from __future__ import annotations


class WeirException(Exception):
    """Base class of every exception weir raises on purpose."""


class ConfigurationError(WeirException):
    """A setting, profile or option has a value weir cannot use."""


class DeploymentConfigError(WeirException):
    """A weir.yaml, an entrypoint or a pull step cannot be used; the message names the
    file, line or step at fault."""


class MissingContextError(WeirException):
    """Called outside a flow or task run, where it needs one (e.g. `get_run_logger()`)."""


class ParameterTypeError(WeirException, TypeError):
    """Flow parameters did not match the function's signature or type hints."""


class SerializationError(WeirException):
    """A value could not be serialized for storage, or read back."""


class InvalidResultKey(WeirException, ValueError):
    """A result key is empty, absolute, or climbs out of its store with `..`."""


class TaskRunnerError(WeirException):
    """A task could not be handed to its task runner."""


class MappingError(WeirException, ValueError):
    """`.map` arguments have unequal lengths, or none is iterable."""


class UnfinishedRun(WeirException):
    """The run has not reached a final state, so it has no result yet."""


class RunError(WeirException):
    """A run ended in a final state other than COMPLETED."""


class FailedRun(RunError):
    """A failed run whose state carries no exception of its own."""


class CrashedRun(RunError):
    """The run's process or infrastructure stopped before the run reported a final state."""


class CancelledRun(RunError):
    """The run was cancelled. Raised inside a run, it cancels that run."""


class UpstreamTaskError(RunError):
    """A task this task depends on (an argument or `wait_for`) did not complete."""


class RunTimeout(WeirException, TimeoutError):
    """A run exceeded its `timeout_seconds`."""


class ConcurrencySlotTimeout(WeirException, TimeoutError):
    """`concurrency(..., timeout_seconds=...)` got no slot before its timeout."""


class ServerUnreachable(WeirException):
    """The weir API could not be reached: nothing listens there, or it timed out."""


class APIError(WeirException):
    """The weir API answered with an error; the message is the server's `detail`."""

    def __init__(self, status: int, detail: str, *, url: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.url = url


class BadRequest(APIError):
    """400 or 422: the request body, query or path was invalid."""


class Unauthorized(APIError):
    """401: the API wants credentials (set WEIR_API_AUTH_STRING) or refused them."""


class Forbidden(APIError):
    """403: the credentials may not do this, or the CSRF token was refused."""


class NotFound(APIError):
    """404: the object (flow run, project, …) does not exist."""


class ObjectAlreadyExists(APIError):
    """409: an object with that name or id already exists."""


class ServerError(APIError):
    """5xx: the server failed to handle the request, even after retries."""
