-- Every short code ever taken, folded to lower case, kept after its link is deleted: a
-- short URL printed on a poster never sends visitors somewhere else, and no two codes
-- differ only by case (a look-alike link). A trigger fills it on every insert into links,
-- so instances of an earlier version, running beside this one during a rolling upgrade,
-- take part too; inserting a code already there fails as a unique violation.
LOCK TABLE links IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE reserved_codes (
    folded text PRIMARY KEY
);
INSERT INTO reserved_codes (folded)
SELECT DISTINCT lower(short_code) FROM links
ON CONFLICT DO NOTHING;

CREATE FUNCTION hoplink_reserve_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reserved_codes (folded) VALUES (lower(NEW.short_code));
    RETURN NEW;
END
$$;
CREATE TRIGGER links_reserve_code BEFORE INSERT ON links
    FOR EACH ROW EXECUTE FUNCTION hoplink_reserve_code();

-- A rotated refresh token remembers when, and its successor sealed under itself, so that
-- presenting it again within a few seconds (two tabs refreshing at once) gets the same
-- successor back instead of counting as theft.
ALTER TABLE refresh_tokens
    ADD COLUMN used_at timestamptz,
    ADD COLUMN successor bytea;
