-- From this release, daily_breakdowns gets new rows again: a link-day keeps at most 64
-- rows of combinations, and the clicks that would make more go per dimension and value,
-- so reading a busy link's breakdowns costs at most 64 combination rows a day plus one
-- row per distinct value. No data moves; reads add both tables, and each click is folded
-- into one of them.
COMMENT ON TABLE daily_combinations IS
    'Human clicks per link, day and combination of the five values: at most 64 rows a link-day.';
COMMENT ON TABLE daily_breakdowns IS
    'Human clicks per link, day, dimension and value: those of link-days past 64 combinations, and those written before daily_combinations existed.';
