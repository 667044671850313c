"""Active push: schedule one push per user at the predicted time of interest, deliver it to a
signed webhook at that time, reliably and within the policy.

- `outbox`: users with new events, written by ingestion in the events' transaction.
- `planner`: claim outbox users in batches and plan their pushes (`PushPlanner.drain`), off
  the ingestion request; `scheduler`: the plan itself (re-predict the ToI with one batched
  model call, (re)schedule each user's pending push).
- `dispatcher`: claim due pushes under a lease and deliver them (`Dispatcher.dispatch_due`).
- `runner`: run planners and dispatchers periodically with APScheduler (`pasrec serve`,
  `pasrec worker`).
- `policy`, `ratelimit`: the rules that skip or hold a push; `signing`, `delivery`: the webhook.
- `store`: the queries on the `pushes` and `push_attempts` tables.
"""
