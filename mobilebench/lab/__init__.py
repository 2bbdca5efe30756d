"""The phone lab: a job queue in the results database and the workers that drain it.

Submitters (people, CI) queue profile jobs (:mod:`mobilebench.lab.submit`); one worker
per phone claims them, measures and stores each run together with its job's completion
(:mod:`mobilebench.lab.worker`); the queue's rules (leases, exactly-once completion, one
job per phone at a time) are in :mod:`mobilebench.lab.queue`. With SQLite the lab is one
host; with a PostgreSQL database (``--db postgresql://...``) it is as many hosts as can
reach the server.
"""
