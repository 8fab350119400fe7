-- The raw click log. The row that de-duplicates a click event is the log entry: one
-- insert per click, as before, only wider.
--
-- Partitioned by day on the event id: ids are UUIDv7, whose first 48 bits are the Unix
-- time in milliseconds, so a day is a range of ids, the primary key stays the event id
-- alone, and pruning drops whole partitions. Partitions are created ahead of time by
-- the store (see `clicks.rs`); a default partition catches ids outside them (clocks far
-- off), and pruning deletes from it row by row.
--
-- Instances of the earlier version keep de-duplicating in click_events during a rolling
-- upgrade; a click redelivered from one version to the other within that window may be
-- counted twice. A later migration drops click_events.
CREATE TABLE clicks (
    event_id uuid NOT NULL,
    link_id  uuid NOT NULL,
    at       timestamptz NOT NULL,
    bot      boolean NOT NULL,
    referrer text NOT NULL,
    browser  text NOT NULL,
    os       text NOT NULL,
    device   text NOT NULL,
    country  text NOT NULL,
    visitor  text NOT NULL,
    PRIMARY KEY (event_id)
) PARTITION BY RANGE (event_id);

-- One link's clicks, newest first, by id: paging stays an index range scan per partition.
CREATE INDEX clicks_link ON clicks (link_id, event_id DESC);

CREATE TABLE clicks_default PARTITION OF clicks DEFAULT;
