-- The booking engine: accounts, organizers (tenants) and sessions, venues with layouts, events, shows with per-show inventory,
-- holds, bookings, tickets and idempotency records. Times are Unix milliseconds (BIGINT) set by
-- the application's clock; ids are prefixed text ids.

CREATE TABLE app_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'organizer', 'admin')),
    state         TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'deleted')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Tenants. Their members act for them; a suspended organizer stops selling at once.
CREATE TABLE organizers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'deleted')),
    created_at BIGINT NOT NULL
);

-- A user works for at most one organizer.
CREATE TABLE memberships (
    user_id      TEXT PRIMARY KEY REFERENCES users (id),
    organizer_id TEXT NOT NULL REFERENCES organizers (id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'staff')),
    created_at   BIGINT NOT NULL
);
CREATE INDEX memberships_by_organizer ON memberships (organizer_id);

-- Nobody joins an organizer without accepting an invitation addressed to their email.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    organizer_id TEXT NOT NULL REFERENCES organizers (id),
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'staff')),
    state        TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
    invited_by   TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL
);
CREATE INDEX invitations_by_email ON invitations (email, state);
CREATE INDEX invitations_by_organizer ON invitations (organizer_id, state);

-- A sign-in: the family of its refresh tokens. Access tokens name it, so revoking it ends
-- every token of the sign-in at once.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    state      TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Only hashes are stored; a token used twice revokes its whole session.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    state      TEXT NOT NULL CHECK (state IN ('active', 'used')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE venues (
    id         TEXT PRIMARY KEY,
    organizer_id TEXT NOT NULL REFERENCES organizers (id),
    name       TEXT NOT NULL,
    city       TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX venues_by_organizer ON venues (organizer_id, id);

CREATE TABLE sections (
    id       TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    name     TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX sections_by_venue ON sections (venue_id, position);

CREATE TABLE seats (
    id         TEXT PRIMARY KEY,
    venue_id   TEXT NOT NULL REFERENCES venues (id),
    section_id TEXT NOT NULL REFERENCES sections (id),
    row_label  TEXT NOT NULL,
    row_rank   BIGINT NOT NULL,
    number     BIGINT NOT NULL,
    label      TEXT NOT NULL,
    category   TEXT NOT NULL,
    x          DOUBLE PRECISION NOT NULL,
    y          DOUBLE PRECISION NOT NULL,
    blocked    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX seats_by_venue ON seats (venue_id, row_rank, number);
CREATE INDEX seats_by_category ON seats (venue_id, category, row_rank);

CREATE TABLE areas (
    id       TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    name     TEXT NOT NULL,
    category TEXT NOT NULL,
    capacity BIGINT NOT NULL CHECK (capacity > 0),
    position BIGINT NOT NULL
);
CREATE INDEX areas_by_venue ON areas (venue_id, position);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    organizer_id     TEXT NOT NULL REFERENCES organizers (id),
    title            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    description      TEXT NOT NULL,
    duration_minutes BIGINT,
    tags             TEXT NOT NULL DEFAULT '[]',
    age_rating       TEXT,
    image_url        TEXT,
    language         TEXT,
    subtitles        TEXT,
    format           TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX events_by_organizer ON events (organizer_id, id);

CREATE TABLE shows (
    id                       TEXT PRIMARY KEY,
    event_id                 TEXT NOT NULL REFERENCES events (id),
    organizer_id             TEXT NOT NULL REFERENCES organizers (id),
    venue_id                 TEXT NOT NULL REFERENCES venues (id),
    state                    TEXT NOT NULL CHECK (state IN ('scheduled', 'cancelled')),
    starts_at                BIGINT NOT NULL,
    ends_at                  BIGINT NOT NULL,
    on_sale_at               BIGINT NOT NULL,
    off_sale_at              BIGINT NOT NULL,
    format                   TEXT,
    language                 TEXT,
    cancelled_at             BIGINT,
    currency                 TEXT NOT NULL,
    hold_minutes             BIGINT NOT NULL,
    max_tickets_per_order    BIGINT NOT NULL,
    max_tickets_per_customer BIGINT NOT NULL,
    created_at               BIGINT NOT NULL
);
CREATE INDEX shows_by_event ON shows (event_id, starts_at);
CREATE INDEX shows_by_venue ON shows (venue_id, starts_at);
CREATE INDEX shows_by_start ON shows (starts_at);

CREATE TABLE show_prices (
    show_id      TEXT NOT NULL REFERENCES shows (id),
    category     TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (show_id, category)
);

-- One row per seat per show: the unit that is locked, claimed and sold.
CREATE TABLE show_seats (
    show_id    TEXT NOT NULL REFERENCES shows (id),
    seat_id    TEXT NOT NULL REFERENCES seats (id),
    state      TEXT NOT NULL CHECK (state IN ('free', 'held', 'sold', 'blocked')),
    hold_id    TEXT,
    held_until BIGINT,
    booking_id TEXT,
    PRIMARY KEY (show_id, seat_id),
    CHECK ((state = 'held') = (hold_id IS NOT NULL AND held_until IS NOT NULL)),
    CHECK ((state = 'sold') = (booking_id IS NOT NULL))
);
CREATE INDEX show_seats_by_hold ON show_seats (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX show_seats_by_booking ON show_seats (booking_id) WHERE booking_id IS NOT NULL;

-- General admission: counters kept under the area row's lock. `held` counts active holds,
-- including expired ones not yet retired: a claim retires those before it counts (so they
-- block nobody), the sweeper retires the rest.
CREATE TABLE show_areas (
    show_id  TEXT NOT NULL REFERENCES shows (id),
    area_id  TEXT NOT NULL REFERENCES areas (id),
    capacity BIGINT NOT NULL,
    sold     BIGINT NOT NULL DEFAULT 0,
    held     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (show_id, area_id),
    CHECK (sold >= 0 AND held >= 0 AND sold + held <= capacity)
);

CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    show_id     TEXT NOT NULL REFERENCES shows (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    state       TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired', 'converted')),
    total_minor BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX holds_active_by_expiry ON holds (expires_at) WHERE state = 'active';
CREATE INDEX holds_active_by_show ON holds (show_id, expires_at) WHERE state = 'active';
CREATE INDEX holds_by_user_show ON holds (user_id, show_id, state);

CREATE TABLE hold_items (
    hold_id          TEXT NOT NULL REFERENCES holds (id),
    position         BIGINT NOT NULL,
    show_id          TEXT NOT NULL,
    seat_id          TEXT,
    area_id          TEXT,
    label            TEXT NOT NULL,
    category         TEXT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL,
    PRIMARY KEY (hold_id, position)
);
CREATE INDEX hold_items_by_area ON hold_items (show_id, area_id) WHERE area_id IS NOT NULL;

CREATE TABLE bookings (
    id                TEXT PRIMARY KEY,
    hold_id           TEXT NOT NULL UNIQUE REFERENCES holds (id),
    show_id           TEXT NOT NULL REFERENCES shows (id),
    user_id           TEXT NOT NULL REFERENCES users (id),
    state             TEXT NOT NULL CHECK (state IN ('confirmed', 'cancelled')),
    total_minor       BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    payment_reference TEXT NOT NULL,
    -- Set when a cancellation owes the customer money back; refunds run with payments.
    refund_state      TEXT CHECK (refund_state IN ('pending', 'refunded')),
    created_at        BIGINT NOT NULL,
    cancelled_at      BIGINT
);
CREATE INDEX bookings_by_user ON bookings (user_id, id);
CREATE INDEX bookings_by_show ON bookings (show_id, state);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    booking_id  TEXT NOT NULL REFERENCES bookings (id),
    position    BIGINT NOT NULL,
    seat_id     TEXT,
    area_id     TEXT,
    label       TEXT NOT NULL,
    category    TEXT NOT NULL,
    price_minor BIGINT NOT NULL,
    code        TEXT NOT NULL
);
CREATE INDEX tickets_by_booking ON tickets (booking_id, position);

-- Written in the same transaction as the effect it protects (law 4).
CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    response_status BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
