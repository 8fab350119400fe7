-- Webhooks, their pending deliveries (jobs, claimed by one instance at a time with
-- FOR UPDATE SKIP LOCKED and a lease), and the log of attempts.
CREATE TABLE webhooks (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    url         text NOT NULL,
    events      text[] NOT NULL,
    description text,
    enabled     boolean NOT NULL DEFAULT true,
    failures    integer NOT NULL DEFAULT 0,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at DESC);

CREATE TABLE webhook_jobs (
    id         uuid PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id   uuid NOT NULL,
    event      text NOT NULL,
    payload    text NOT NULL,
    attempt    integer NOT NULL,
    due_at     timestamptz NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_jobs_due ON webhook_jobs (due_at);

CREATE TABLE webhook_deliveries (
    id          uuid PRIMARY KEY,
    webhook_id  uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id    uuid NOT NULL,
    event       text NOT NULL,
    attempt     integer NOT NULL,
    status_code integer,
    error       text,
    at          timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_latest ON webhook_deliveries (webhook_id, at DESC, id DESC);
