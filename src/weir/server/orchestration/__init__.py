"""Flow-run state is owned here: every change goes through `set_flow_run_state` (or
`set_flow_run_states`, many runs' at once), which applies the ordered rules of
`policy.RULES` and answers ACCEPT, REJECT, WAIT or ABORT."""

from weir.server.orchestration.set_state import set_flow_run_state

__all__ = ["set_flow_run_state"]
