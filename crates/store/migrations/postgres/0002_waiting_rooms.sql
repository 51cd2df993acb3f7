-- A show's virtual waiting room: its settings and the secret seed of its pre-queue draw.
-- The line itself lives in memory or in Redis, not here.
CREATE TABLE waiting_rooms (
    show_id                   TEXT PRIMARY KEY REFERENCES shows (id),
    enabled                   BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    admission_rate_per_minute BIGINT NOT NULL CHECK (admission_rate_per_minute > 0),
    max_active_shoppers       BIGINT CHECK (max_active_shoppers > 0),
    session_minutes           BIGINT NOT NULL CHECK (session_minutes > 0),
    opens_at                  BIGINT NOT NULL,
    -- An unsigned 64-bit seed, stored bit for bit.
    seed                      BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
