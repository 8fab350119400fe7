#!/usr/bin/env python3
"""A new user's first steps through the Python client generated from openapi/openapi.json.

    PYTHONPATH=<generated client> python_client_flow.py BASE_URL

Registers, logs in, creates a link with and without its optional fields, lists, patches,
reads analytics, creates and lists an API key, and parses the problem document of one
refused request. Any unexpected status or shape raises.
"""
import datetime
import sys
import uuid

from hoplink_client import AuthenticatedClient, Client
from hoplink_client.api.analytics import analytics_summary
from hoplink_client.api.api_keys import create_api_key, list_api_keys
from hoplink_client.api.auth import login, me, register
from hoplink_client.api.system import health
from hoplink_client.api.urls import create_link, get_link, list_links, update_link
from hoplink_client.models import (
    ApiKeyCreatedBody, ApiKeyList, HealthBody, LinkBody, LinkList, LoginBody, NewApiKeyBody,
    NewLinkBody, PatchLinkBody, Problem, RegisterBody, SummaryBody, TokenBody, UserBody,
)
from hoplink_client.types import UNSET

base = sys.argv[1]
email = f"py-{uuid.uuid4().hex[:8]}@example.com"
anonymous = Client(base_url=base, raise_on_unexpected_status=True)

up = health.sync(client=anonymous)
assert isinstance(up, HealthBody) and up.status == "ok", up
for component in ["store", "cache", "bus"]:
    assert component in up.components.additional_properties, up.components

user = register.sync(client=anonymous, body=RegisterBody(email=email, password="python password"))
assert isinstance(user, UserBody) and user.email == email and user.full_name is None, user
tokens = login.sync(client=anonymous, body=LoginBody(email=email, password="python password"))
assert isinstance(tokens, TokenBody) and tokens.token_type == "bearer", tokens
client = AuthenticatedClient(base_url=base, token=tokens.access_token, raise_on_unexpected_status=True)
assert me.sync(client=client).email == email

plain = create_link.sync(client=client, body=NewLinkBody(original_url="https://example.com/python"))
assert isinstance(plain, LinkBody), plain
assert plain.title is None and plain.expires_at is None and plain.max_clicks is None, plain
assert plain.tags == [] and int(plain.redirect_type) == 302 and plain.click_count == 0, plain

expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
alias = f"py-{uuid.uuid4().hex[:10]}"
full = create_link.sync(client=client, body=NewLinkBody(
    original_url="https://example.com/python/full", custom_alias=alias, expires_at=expires,
    max_clicks=5, title="From Python", tags=["python", "client"]))
assert isinstance(full, LinkBody) and full.short_code == alias, full
assert full.title == "From Python" and full.max_clicks == 5 and full.tags == ["python", "client"]
assert abs((full.expires_at - expires).total_seconds()) < 1, full.expires_at
assert full.short_url.endswith("/" + alias), full.short_url

page = list_links.sync(client=client, limit=10)
assert isinstance(page, LinkList) and [l.id for l in page.items] == [full.id, plain.id], page
assert page.next_cursor is None
one = list_links.sync(client=client, limit=1)
assert len(one.items) == 1 and isinstance(one.next_cursor, str), one

patched = update_link.sync(client=client, id=full.id, body=PatchLinkBody(
    original_url="https://example.com/python/v2", title=None, max_clicks=None, is_active=False))
assert isinstance(patched, LinkBody), patched
assert patched.original_url == "https://example.com/python/v2" and patched.title is None, patched
assert patched.max_clicks is None and patched.is_active is False, patched
assert get_link.sync(client=client, id=full.id).original_url == patched.original_url

summary = analytics_summary.sync(client=client, short_code=plain.short_code, days=7)
assert isinstance(summary, SummaryBody) and summary.total_clicks == 0, summary
assert len(summary.clicks_by_day) == 7 and summary.browsers == [], summary

key = create_api_key.sync(client=client, body=NewApiKeyBody(name="python"))
assert isinstance(key, ApiKeyCreatedBody) and key.key.startswith("hlk_"), key
keys = list_api_keys.sync(client=client)
assert isinstance(keys, ApiKeyList) and [k.id for k in keys.items] == [key.id], keys

lenient = AuthenticatedClient(base_url=base, token=tokens.access_token)
refused = create_link.sync_detailed(client=lenient, body=NewLinkBody(original_url="http://10.0.0.1/admin"))
assert refused.status_code == 422, refused
problem = refused.parsed
assert isinstance(problem, Problem), problem
assert problem.code == "invalid_url" and problem.field == "original_url" and problem.status == 422, problem
missing = get_link.sync_detailed(client=lenient, id=uuid.uuid4())
assert missing.status_code == 404 and isinstance(missing.parsed, Problem), missing
assert missing.parsed.field is UNSET or missing.parsed.field is None, missing.parsed

print("python-client: the generated client registered, logged in, created, listed, patched, "
      "read analytics, made an API key and parsed a problem document")
