"""Wire models: the JSON the API speaks, shared by the client and the server.

Shapes follow Prefect 3's REST API where our users' scripts already call it
(`POST /api/<resource>/filter` with nested `{"flow_runs": {"state": {"type":
{"any_": [...]}}}}` bodies, bare numbers from `/count`).
"""
