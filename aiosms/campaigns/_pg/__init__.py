"""The PostgreSQL journal's insides: its session and its SQL, one module per job.

Every statement module holds plain synchronous functions that take a cursor inside
a transaction the session opened (``_session``) and know nothing of threads, event
loops or retries; ``aiosms.campaigns._postgres.PostgresJournal`` runs them off the
event loop. ``_schema`` creates and upgrades the tables; ``_campaigns`` keeps the
campaigns' records and their event log; ``_intake`` adds rows; ``_sending`` is the
row state machine (claim, the fenced ``begin_send``, settling, requeueing);
``_workers`` keeps heartbeats and reaps the rows of lost workers; ``_reading`` pages
rows and counts for reports and tracking; ``_stoplist`` keeps the stop list.
"""
