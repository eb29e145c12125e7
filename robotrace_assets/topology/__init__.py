"""The production topology on one machine, as separate supervised processes.

`robotrace deploy local` starts, from the configuration files deploy/ ships: the object store
(embedded SeaweedFS), the ingest service, `dagster code-server start` (gRPC),
`dagster-webserver` and `dagster-daemon run`, against PostgreSQL storage. The instance
configuration is deploy/dagster.yaml with one change: each run is a local process instead of a
Docker container. `Topology` is the Python API the fault tests use.
"""
