//! Links in and out over HTTP: the CSV export imported into another deployment gives the
//! same links; Bitly's and Shlink's files; a second import creates nothing; failed rows
//! don't stop the others; the raw click log, paged, filtered and as CSV.

use super::*;

const ADMIN: &str = "admin@example.com";

async fn upload(app: &App, token: &str, csv: &str) -> (StatusCode, Value) {
    let resp = app
        .req(Method::POST, "/api/v1/urls/import")
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    decode(resp).await
}

async fn export(app: &App, token: &str) -> String {
    let resp = app
        .req(Method::GET, "/api/v1/urls/export")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    resp.text().await.unwrap()
}

/// The rows of a CSV file as maps from column to cell, without `columns` (those a new
/// deployment can't keep: creation time, clicks).
fn rows_without(csv: &str, columns: &[&str]) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv_reader(csv);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows: Vec<_> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(str::to_string))
                .filter(|(k, _)| !columns.contains(&k.as_str()))
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn csv_reader(csv: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().from_reader(csv.as_bytes())
}

#[tokio::test]
async fn an_export_imports_elsewhere_as_the_same_links_and_only_once() {
    let first = app_with(&["--admin-emails", ADMIN]).await;
    let admin = first.user(ADMIN).await;
    let owner = first.user("owner@example.com").await;
    let (s, _) = first
        .json(
            Method::POST,
            "/api/v1/domains",
            Some(&admin),
            json!({"host": "go.example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let expires = (chrono::Utc::now() + chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    first
        .shorten(
            Some(&owner),
            json!({
                "original_url": "https://example.com/every-field?a=1&b=2",
                "custom_alias": "launch",
                "title": "=HYPERLINK(\"https://evil.example\"), \"quoted\"",
                "tags": ["spring", "-sale"],
                "redirect_type": 301,
                "expires_at": expires,
                "max_clicks": 50,
            }),
        )
        .await;
    first
        .shorten(
            Some(&owner),
            json!({"original_url": "https://example.com/other", "custom_alias": "launch", "domain": "go.example.com"}),
        )
        .await;
    let off = first
        .shorten(
            Some(&owner),
            json!({"original_url": "https://example.com/off"}),
        )
        .await;
    let (s, _) = first
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{}", off["id"].as_str().unwrap()),
            Some(&owner),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // More than a page of the export (100 links).
    for chunk in 0..3 {
        let items: Vec<Value> = (0..50)
            .map(|i| json!({"original_url": format!("https://example.com/many/{chunk}/{i}")}))
            .collect();
        let (s, body) = first
            .json(
                Method::POST,
                "/api/v1/urls/bulk",
                Some(&owner),
                json!({ "items": items }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    // Someone else's links stay out of the owner's export.
    let other = first.user("other@example.com").await;
    first
        .shorten(
            Some(&other),
            json!({"original_url": "https://example.com/not-mine"}),
        )
        .await;

    let file = export(&first, &owner).await;
    let mut lines = file.split("\r\n");
    assert_eq!(
        lines.next(),
        Some(
            "short_code,domain,short_url,original_url,title,tags,redirect_type,created_at,expires_at,max_clicks,click_count,is_active"
        )
    );
    assert_eq!(
        file.matches("\r\n").count(),
        1 + 153,
        "the header and every link"
    );
    assert!(!file.contains("not-mine"));
    assert!(
        file.contains("\"'=HYPERLINK(\"\"https://evil.example\"\"), \"\"quoted\"\"\""),
        "a formula is defused and quotes doubled: {file}"
    );
    assert!(file.contains(",spring|-sale,"), "tags joined by |: {file}");
    assert!(file.contains("launch,go.example.com,https://go.example.com/launch,"));
    assert!(
        file.contains("launch,,https://sho.rt/launch,"),
        "the default domain is empty"
    );

    // Another deployment with the same domain: every link comes back as it was.
    let second = app_with(&["--admin-emails", ADMIN]).await;
    let admin = second.user(ADMIN).await;
    let (s, _) = second
        .json(
            Method::POST,
            "/api/v1/domains",
            Some(&admin),
            json!({"host": "go.example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let newcomer = second.user("newcomer@example.com").await;
    let (s, report) = upload(&second, &newcomer, &file).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"created": 153, "skipped": 0, "failed": []}));
    let again = export(&second, &newcomer).await;
    let kept = ["created_at", "click_count"];
    assert_eq!(rows_without(&again, &kept), rows_without(&file, &kept));
    let resp = second
        .visit(off["short_code"].as_str().unwrap(), CHROME)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::GONE,
        "a disabled link stays disabled"
    );
    let resp = second.visit("launch", CHROME).await;
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.headers()["location"],
        "https://example.com/every-field?a=1&b=2"
    );

    // A second import creates nothing; another account's import meets taken codes.
    let (_, report) = upload(&second, &newcomer, &file).await;
    assert_eq!(report, json!({"created": 0, "skipped": 153, "failed": []}));
    let stranger = second.user("stranger@example.com").await;
    let (_, report) = upload(&second, &stranger, &file).await;
    assert_eq!(report["created"], 0);
    assert_eq!(report["failed"].as_array().unwrap().len(), 153);
    assert_eq!(report["failed"][0]["code"], "alias_taken");
    assert_eq!(report["failed"][0]["line"], 2);
}

#[tokio::test]
async fn bitly_and_shlink_files_import_and_bad_rows_fail_alone() {
    let app = app().await;
    let token = app.user("mover@example.com").await;
    // Bitly's CSV export of links.
    let bitly = "Title,Bitlink,Long URL,Created,Tags\r\n\
        Spring launch,https://bit.ly/3xYzAbc,https://example.com/spring,2024-03-01 10:00:00,\"promo, spring\"\r\n\
        ,bit.ly/4Qw,https://example.com/plain,2024-03-02 11:00:00,\r\n";
    let (s, report) = upload(&app, &token, bitly).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"created": 2, "skipped": 0, "failed": []}));
    let (_, link) = app.get("/api/v1/urls?q=spring", Some(&token)).await;
    assert_eq!(link["items"][0]["short_code"], "3xYzAbc");
    assert_eq!(link["items"][0]["title"], "Spring launch");
    assert_eq!(link["items"][0]["tags"], json!(["promo", "spring"]));
    let resp = app.visit("4Qw", CHROME).await;
    assert_eq!(resp.headers()["location"], "https://example.com/plain");

    // Shlink's web-client export.
    let shlink = "createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n\
        2024-01-02T10:00:00+00:00,,shl-1,https://s.test/shl-1,https://example.com/from-shlink,From Shlink,one|two,5\n";
    let (_, report) = upload(&app, &token, shlink).await;
    assert_eq!(report, json!({"created": 1, "skipped": 0, "failed": []}));
    let (s, link) = app.get("/api/v1/urls?q=from-shlink", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(link["items"][0]["short_code"], "shl-1");
    assert_eq!(link["items"][0]["tags"], json!(["one", "two"]));

    // Good rows around bad ones: each bad one is named by its line, the rest land.
    let mixed = "Long URL,Short code,Domain,Title,Tags\n\
        https://example.com/good-1,good-1,,,\n\
        javascript:alert(1),bad-url,,,\n\
        https://example.com/taken,3xYzAbc,,,\n\
        https://example.com/good-2,good-2,,,\n";
    let (_, report) = upload(&app, &token, mixed).await;
    assert_eq!(report["created"], 2, "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{report}");
    assert_eq!(
        (failed[0]["line"].as_u64(), failed[0]["code"].as_str()),
        (Some(3), Some("invalid_url"))
    );
    assert_eq!(
        (failed[1]["line"].as_u64(), failed[1]["code"].as_str()),
        (Some(4), Some("alias_taken"))
    );

    // Files that are none of these are refused whole.
    let (s, problem) = upload(&app, &token, "url,name\nhttps://example.com,x\n").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let resp = app
        .req(Method::POST, "/api/v1/urls/import")
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = app
        .req(Method::POST, "/api/v1/urls/import")
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(vec![b'a'; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = app.get("/api/v1/urls/export", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_click_log_pages_filters_and_downloads_every_click() {
    let app = app().await;
    let token = app.user("clicks@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/clicked"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    let started = chrono::Utc::now();
    for ua in [CHROME, FIREFOX, TWITTERBOT, IPHONE] {
        let resp = app
            .req(Method::GET, &format!("/{code}"))
            .header("user-agent", ua)
            .header("referer", "https://news.example.com/story?id=1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
    }
    let path = format!("/api/v1/analytics/{code}/clicks");
    let mut all = Value::Null;
    for _ in 0..100 {
        let (s, page) = app.get(&path, Some(&token)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        if page["items"].as_array().unwrap().len() == 4 {
            all = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = all["items"].as_array().expect("four clicks in the log");
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(items[0]["os"], "iOS", "newest first");
    assert_eq!(items[1]["bot"], true, "bots are kept and marked");
    assert_eq!(items[3]["browser"], "Chrome");
    assert_eq!(items[3]["referrer"], "news.example.com");
    let visitor = items[3]["visitor"].as_str().unwrap();
    assert!(visitor.len() >= 16 && visitor.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        !all.to_string().contains("127.0.0.1"),
        "no address is shown"
    );

    // Pages of two, by cursor.
    let (_, first) = app.get(&format!("{path}?limit=2"), Some(&token)).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("{path}?limit=2&cursor={cursor}"), Some(&token))
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut paged = ids(&first);
    paged.extend(ids(&second));
    assert_eq!(paged, ids(&all));
    assert_eq!(second["next_cursor"], Value::Null);

    // Time filters: `from` inclusive, `to` exclusive.
    let at = |v: &Value| v.as_str().unwrap().replace('+', "%2B");
    let newest = at(&items[0]["at"]);
    let (_, recent) = app
        .get(&format!("{path}?from={newest}"), Some(&token))
        .await;
    assert_eq!(ids(&recent), ids(&all)[..1]);
    let (_, older) = app.get(&format!("{path}?to={newest}"), Some(&token)).await;
    assert_eq!(ids(&older), ids(&all)[1..]);
    let before =
        (started - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, none) = app.get(&format!("{path}?to={before}"), Some(&token)).await;
    assert_eq!(none["items"], json!([]));
    let (s, problem) = app
        .get(&format!("{path}?from={newest}&to={before}"), Some(&token))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "to");
    let (s, _) = app.get(&format!("{path}?limit=1001"), Some(&token)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // CSV, with the next page's cursor in a header.
    let resp = app
        .req(Method::GET, &format!("{path}?format=csv&limit=3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(resp.headers().contains_key("x-next-cursor"));
    let csv = resp.text().await.unwrap();
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("id,at,bot,referrer,browser,os,device,country,visitor")
    );
    assert!(lines.next().unwrap().starts_with(&ids(&all)[0]));
    assert_eq!(csv.matches("\r\n").count(), 4);

    // Another user sees nothing of it.
    let other = app.user("nosy@example.com").await;
    let (s, _) = app.get(&path, Some(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
