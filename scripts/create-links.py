#!/usr/bin/env python3
"""Creates links on a running hoplink for the load scripts.

    create-links.py PORT COUNT CODES_FILE TOKEN_FILE

Registers an account (bulk creation needs one), creates COUNT links in bulk requests of
1,000, and writes one `code url` line per link to CODES_FILE and the access token to
TOKEN_FILE.
"""
import json
import sys
import urllib.request

port, total, codes_file, token_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]


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
for start in range(0, total, 1000):
    items = [{"original_url": f"https://example.com/articles/{i}"}
             for i in range(start, min(total, start + 1000))]
    results = call("/api/v1/urls/bulk", {"items": items}, token)["results"]
    links += [(r["ok"]["short_code"], r["ok"]["original_url"]) for r in results]
with open(codes_file, "w") as f:
    f.write("".join(f"{code} {url}\n" for code, url in links))
with open(token_file, "w") as f:
    f.write(token)
print(f"{len(links)} links created")
