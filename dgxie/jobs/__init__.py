"""Site-wide background work, exactly once however many dgxie instances share the database.

- `queue`: a job table claimed with one conditional UPDATE (after `FOR UPDATE SKIP LOCKED` on
  PostgreSQL): `enqueue(session, kind, payload, key=..., actor=...)`, `request_cancel`;
- `worker.JobWorker`: the background service that claims jobs of the kinds registered in a
  `JobKinds` (`register(kind, fn)`, `fn(handle)` with `heartbeat()/progress(dict)/cancelled()/
  check()`), renews their heartbeats, and whose jobs are taken over by another instance if it dies;
- `leader.Singleton(name, fn, every)`: periodic work run by the holder of a leader lease only;
- `leader.Leader(name, make)`: a whole service run by the lease holder only;
- `instances.InstanceBeat`: each instance's row in `instances` (id, role, heartbeat).

See docs/architecture.md, "Jobs and instances".
"""
