#!/usr/bin/env python3
"""Creates links on a running hoplink for the load scripts.

    create-links.py PORT COUNT CODES_FILE TOKEN_FILE
    create-links.py PORT FROM_CODES_FILE CODES_FILE TOKEN_FILE

Registers an account (bulk creation needs one), creates COUNT links in bulk requests of
1,000, and writes one `code url` line per link to CODES_FILE and the access token to
TOKEN_FILE. Given a codes file instead of a count, it creates the same links under the
same codes (as aliases), so that another server answers the same requests.
"""
import os
import json
import sys
import urllib.request

port, source, codes_file, token_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if os.path.exists(source):
    wanted = [line.split(" ", 1) for line in open(source).read().splitlines()]
else:
    wanted = [(None, f"https://example.com/articles/{i}") for i in range(int(source))]


def call(path, body, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        return json.load(r)


account = {"email": "load@example.com", "password": "load-script-password"}
call("/api/v1/auth/register", account)
token = call("/api/v1/auth/login", account)["access_token"]
links = []
for start in range(0, len(wanted), 1000):
    items = [{"original_url": url, **({"custom_alias": code} if code else {})}
             for code, url in wanted[start:start + 1000]]
    results = call("/api/v1/urls/bulk", {"items": items}, token)["results"]
    links += [(r["ok"]["short_code"], r["ok"]["original_url"]) for r in results]
with open(codes_file, "w") as f:
    f.write("".join(f"{code} {url}\n" for code, url in links))
with open(token_file, "w") as f:
    f.write(token)
print(f"{len(links)} links created")
