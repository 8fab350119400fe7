-- Several short domains, blocked links, the host blocklist and abuse reports.
--
-- Links of the default domain keep domain NULL, so every existing link stays where it is
-- and instances of the earlier version (which never write the column) keep working
-- beside this one during a rolling upgrade. Add other domains once every instance runs
-- this version: earlier ones look codes up without a domain.

-- The other domains (the default one, BASE_URL's host, is implicit); the empty host keeps
-- the default domain's redirects.
CREATE TABLE domains (
    host               text PRIMARY KEY CHECK (host = lower(host) AND length(host) <= 253),
    root_redirect      text CHECK (length(root_redirect) <= 2048),
    not_found_redirect text CHECK (length(not_found_redirect) <= 2048),
    gone_redirect      text CHECK (length(gone_redirect) <= 2048),
    created_at         timestamptz NOT NULL
);

-- Adding nullable columns and a column with a constant default rewrites nothing.
ALTER TABLE links
    ADD COLUMN domain text REFERENCES domains (host),
    ADD COLUMN blocked boolean NOT NULL DEFAULT false,
    ADD COLUMN blocked_reason text;

-- Codes are unique per domain (and, folded, in reserved_codes per domain).
ALTER TABLE links DROP CONSTRAINT links_short_code_key;
CREATE UNIQUE INDEX links_domain_code ON links (coalesce(domain, ''), short_code);
CREATE INDEX links_domain ON links (domain) WHERE domain IS NOT NULL;
-- Administrators list every owner's links, newest first.
CREATE INDEX links_created ON links (created_at DESC, id DESC);

ALTER TABLE reserved_codes ADD COLUMN domain text NOT NULL DEFAULT '';
ALTER TABLE reserved_codes DROP CONSTRAINT reserved_codes_pkey;
ALTER TABLE reserved_codes ADD PRIMARY KEY (domain, folded);

CREATE OR REPLACE FUNCTION hoplink_reserve_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reserved_codes (domain, folded)
    VALUES (coalesce(NEW.domain, ''), lower(NEW.short_code));
    RETURN NEW;
END
$$;

-- Host patterns: each covers the host and its subdomains.
CREATE TABLE blocked_hosts (
    id         uuid PRIMARY KEY,
    pattern    text NOT NULL UNIQUE CHECK (pattern = lower(pattern) AND length(pattern) <= 253),
    reason     text,
    created_at timestamptz NOT NULL
);

CREATE TABLE reports (
    id          uuid PRIMARY KEY,
    link_id     uuid NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('phishing', 'malware', 'spam', 'other')),
    details     text,
    status      text NOT NULL CHECK (status IN ('open', 'resolved', 'dismissed')),
    reporter_id uuid,
    created_at  timestamptz NOT NULL
);
CREATE INDEX reports_status_created ON reports (status, created_at DESC, id DESC);
