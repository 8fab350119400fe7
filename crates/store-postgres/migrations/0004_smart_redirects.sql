-- Smart redirects: rules, query forwarding and passwords of links.
--
-- Columns with constant defaults: adding them rewrites no row, and instances of the
-- earlier version (which never write them) keep working beside this one.

ALTER TABLE links
    -- [{"url": …, "conditions": [{"type": …, "value": …, "key": …}]}], in order.
    ADD COLUMN redirect_rules jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(redirect_rules) = 'array'),
    ADD COLUMN forward_query boolean NOT NULL DEFAULT false,
    -- Argon2id, PHC string.
    ADD COLUMN password_hash text;
