-- The outbox: every domain event is written here in the same transaction as the change it
-- describes, then delivered at least once by a dispatcher (webhooks, the Redis stream).
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    organizer_id TEXT NOT NULL REFERENCES organizers (id),
    kind         TEXT NOT NULL,
    -- What the event is about (a booking, hold or show): deliveries of one subject keep order.
    subject      TEXT NOT NULL,
    -- The exact JSON body receivers get, the same bytes on every retry.
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- When its webhook deliveries were made; NULL until the dispatcher has done so.
    fanned_out_at BIGINT,
    -- When it went to the Redis stream; NULL until then (or when there is no Redis).
    streamed_at  BIGINT
);
CREATE INDEX outbox_to_fan_out ON outbox (seq) WHERE fanned_out_at IS NULL;
CREATE INDEX outbox_to_stream ON outbox (seq) WHERE streamed_at IS NULL;

CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY,
    organizer_id TEXT NOT NULL REFERENCES organizers (id),
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    -- Space-separated event kinds.
    event_types  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX webhook_endpoints_by_organizer ON webhook_endpoints (organizer_id, id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    message_id      TEXT NOT NULL REFERENCES outbox (id),
    -- The event's outbox position: within one endpoint and subject, deliveries go in this order.
    seq             BIGINT NOT NULL,
    subject         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A dispatcher working on it until then; a dispatcher that died lets it lapse.
    lease_until     BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, subject, seq);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
