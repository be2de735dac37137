-- The event log. One row per event; `seq` is the total order every server process applies.
-- Writers hold pg_advisory_xact_lock(7405214) while appending, so seq order is commit order.
CREATE TABLE IF NOT EXISTS raceway_events (
    seq          BIGINT      NOT NULL,
    id           UUID        PRIMARY KEY,           -- duplicate ids are skipped (idempotent)
    trace_id     UUID        NOT NULL,
    parent_id    UUID,
    ts           TIMESTAMPTZ NOT NULL,              -- the event's own timestamp
    kind         TEXT        NOT NULL,
    service_name TEXT        NOT NULL,
    body         JSON        NOT NULL,              -- the wire event as stored (cast ::jsonb to query)
    stored_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- catch-up and start-up replay: WHERE seq > $cursor ORDER BY seq
CREATE UNIQUE INDEX IF NOT EXISTS raceway_events_seq ON raceway_events (seq);
-- one trace's events in log order; retention deletes by trace
CREATE INDEX IF NOT EXISTS raceway_events_trace_seq ON raceway_events (trace_id, seq);

-- Tombstones: other processes drop deleted traces from their in-memory view.
CREATE TABLE IF NOT EXISTS raceway_trace_deletions (
    id          BIGSERIAL   PRIMARY KEY,
    after_seq   BIGINT      NOT NULL,               -- applies after events with seq <= after_seq
    trace_ids   UUID[]      NOT NULL,
    deleted_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS raceway_trace_deletions_at ON raceway_trace_deletions (deleted_at);
