"""Active push: schedule one push per user at the predicted time of interest, deliver it to a
signed webhook at that time, reliably and within the policy.

One owner per job (docs/architecture.md, "The push package"):

- `outbox`: the `push_outbox` table (its only SQL): users with new events, written by
  ingestion in the events' transaction, claimed by planners.
- `store`: the `pushes` and `push_attempts` tables (all their SQL).
- `planner`: claim outbox users in batches and plan their pushes (`PushPlanner.drain`), off
  the ingestion request; `scheduler`: the plan itself (one batched model call, then each
  user's pending push); `timing`, `policy`: when a push is due, and what skips or holds it.
- `dispatcher`: the lease loop (claim due pushes, delivery slots, thread pool);
  `courier`: act on one claimed push; `payload`: its body; `backoff`: the retry delay;
  `outcomes`: what acting on a push came to, and its metric; `ratelimit`, `delivery`,
  `signing`: the global rate limit and the signed webhook POST.
- `runner`: run planners and dispatchers periodically with APScheduler (`pasrec serve`,
  `pasrec worker`); `requeue`: operators sending dead pushes again.
- `parts`: what push code takes from the running service; `worker_id`: the name leases are
  held under. Push code reads only `PushSettings` (pasrec/service/settings.py).
"""
