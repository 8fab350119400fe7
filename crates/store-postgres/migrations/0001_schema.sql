-- hoplink schema: links, users and their credentials, click analytics in daily rollups.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    full_name     text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE links (
    id            uuid PRIMARY KEY,
    short_code    text NOT NULL UNIQUE CHECK (length(short_code) BETWEEN 1 AND 64),
    original_url  text NOT NULL CHECK (length(original_url) <= 2048),
    title         text,
    tags          text[] NOT NULL DEFAULT '{}',
    redirect_type smallint NOT NULL CHECK (redirect_type IN (301, 302, 307, 308)),
    -- No foreign key: a link outlives the question of who may edit it (anonymous links
    -- have none), and the service checks ownership on every edit.
    owner_id      uuid,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    max_clicks    bigint CHECK (max_clicks >= 1),
    click_count   bigint NOT NULL DEFAULT 0 CHECK (click_count >= 0),
    is_active     boolean NOT NULL DEFAULT true
) WITH (fillfactor = 80);
-- Keyset pagination: an owner's links newest first.
CREATE INDEX links_owner_created ON links (owner_id, created_at DESC, id DESC);

CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used        boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- A login (refresh-token family) that was revoked: logout or reuse detected.
CREATE TABLE revoked_families (
    family_id  uuid PRIMARY KEY,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL,
    prefix     text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC);

-- Event ids already recorded: the de-duplication key of at-least-once delivery.
CREATE TABLE click_events (
    event_id uuid PRIMARY KEY,
    day      date NOT NULL
);

-- One row per link and UTC day.
CREATE TABLE daily_rollups (
    link_id         uuid NOT NULL,
    day             date NOT NULL,
    clicks          bigint NOT NULL DEFAULT 0,
    bot_clicks      bigint NOT NULL DEFAULT 0,
    unique_visitors bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (link_id, day)
) WITH (fillfactor = 70); -- room on the page keeps counter updates HOT (no index write)

-- Distinct visitor hashes per link and day (salted, rotated daily: no raw address).
CREATE TABLE daily_visitors (
    link_id uuid NOT NULL,
    day     date NOT NULL,
    visitor text NOT NULL,
    PRIMARY KEY (link_id, day, visitor)
);

-- Human clicks per link, day, dimension and value.
CREATE TABLE daily_breakdowns (
    link_id   uuid NOT NULL,
    day       date NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('referrer', 'browser', 'os', 'device', 'country')),
    value     text NOT NULL,
    clicks    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (link_id, day, dimension, value)
) WITH (fillfactor = 70);

-- Id blocks: one nextval is one block of 1,000 ids.
CREATE SEQUENCE id_blocks START WITH 0 MINVALUE 0;
