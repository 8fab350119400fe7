-- Human clicks per link, day and combination of the five dimension values. A click
-- adds to one row here instead of one row per dimension in daily_breakdowns, so a
-- link's only click of a batch (most clicks, for the long tail of links) costs one
-- breakdown row instead of five. Reads sum the combinations per dimension.
--
-- daily_breakdowns keeps the counts written before this migration and gets no new
-- rows; reads add both tables, so nothing is lost and nothing counted twice (each
-- click is folded once, into one of them, after its click log row is written).
CREATE TABLE daily_combinations (
    link_id  uuid NOT NULL,
    day      date NOT NULL,
    referrer text NOT NULL,
    browser  text NOT NULL,
    os       text NOT NULL,
    device   text NOT NULL,
    country  text NOT NULL,
    clicks   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (link_id, day, referrer, browser, os, device, country)
) WITH (fillfactor = 70); -- room on the page keeps counter updates HOT
