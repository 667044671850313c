"""Active push: schedule one push per user at the predicted time of interest, deliver it to a
signed webhook at that time, reliably and within the policy.

- `scheduler`: after new events, re-predict the ToI and (re)schedule the user's pending push.
- `dispatcher`: claim due pushes under a lease and deliver them (`Dispatcher.dispatch_due`).
- `runner`: run dispatchers periodically with APScheduler (`pasrec serve`, `pasrec worker`).
- `policy`, `ratelimit`: the rules that skip or hold a push; `signing`, `delivery`: the webhook.
- `store`: the queries on the `pushes` and `push_attempts` tables.
"""
