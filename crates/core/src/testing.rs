//! The conformance suite: one function per trait, run by every backend against a real
//! server (and by the in-memory backends here). Each function panics with a message on
//! the first broken rule.
//!
//! The functions create their own uniquely named data, so they can share a database with
//! other tests; still give each run its own schema, key prefix or topic where you can.

use crate::bus::EventBus;
use crate::cache::{Cache, Invalidation};
use crate::clock::stored_precision;
use crate::error::Error;
use crate::ids::IdAllocator;
use crate::limiter::{Quota, RateLimiter};
use crate::model::{ApiKey, Cursor, Link, LinkPatch, LinkSort, RedirectType, User};
use crate::model::{BlockedHost, Domain, DomainPatch, Report, ReportReason, ReportStatus};
use crate::records::DomainDeletion;
use crate::records::{
    ApiKeyRecord, CacheEntry, ClassifiedClick, ClickBudget, ClickEvent, ClickQuery, Dimension,
    LinkQuery, RefreshTokenRecord, RotateOutcome, Rotation, UserRecord,
};
use crate::rules::RedirectRule;
use crate::store::{
    AnalyticsStore, DomainStore, LinkStore, ModerationStore, UserStore, WebhookStore,
};
use crate::webhooks::{
    DISABLE_AFTER, Delivery, DeliveryJob, Webhook, WebhookEvent, WebhookPatch, WebhookRecord,
};
use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// A link owned by `owner` with a unique code, created `age_micros` before now.
pub fn sample_link(owner: Option<Uuid>) -> Link {
    let now = stored_precision(Utc::now());
    Link {
        id: Uuid::now_v7(),
        short_code: unique("t"),
        original_url: "https://example.com/conformance".into(),
        title: Some("Conformance".into()),
        tags: vec!["alpha".into(), "beta".into()],
        redirect_type: RedirectType::Found,
        owner_id: owner,
        created_at: now,
        updated_at: now,
        expires_at: None,
        max_clicks: None,
        click_count: 0,
        is_active: true,
        domain: None,
        blocked: false,
        blocked_reason: None,
        redirect_rules: Vec::new(),
        forward_query: false,
        password_hash: None,
    }
}

/// Rules with one condition of every type, as stores must keep them.
pub fn sample_rules() -> Vec<RedirectRule> {
    use crate::rules::{ConditionType as T, RuleCondition as C};
    vec![
        RedirectRule {
            url: "https://apps.apple.com/app/id1".into(),
            conditions: vec![C::new(T::Os, "ios"), C::new(T::Device, "mobile")],
        },
        RedirectRule {
            url: "https://example.com/de?ref=rule".into(),
            conditions: vec![
                C::new(T::Language, "de"),
                C::new(T::Country, "DE"),
                C::new(T::Browser, "firefox"),
                C::new(T::Ip, "203.0.113.0/24"),
                C::new(T::After, "2026-01-01T00:00:00Z"),
                C::new(T::Before, "2030-01-01T00:00:00Z"),
                C {
                    key: Some("utm_source".into()),
                    ..C::new(T::Query, "*")
                },
            ],
        },
    ]
}

/// Checks a [`LinkStore`] against its contract.
pub async fn link_store(store: Arc<dyn LinkStore>) {
    store.health().await.expect("health");
    link_round_trip(&*store).await;
    link_alias_race(store.clone()).await;
    link_update_and_delete(&*store).await;
    link_listing(&*store).await;
    link_click_budget(store).await;
}

async fn link_round_trip(store: &dyn LinkStore) {
    let mut link = sample_link(Some(Uuid::now_v7()));
    link.expires_at = Some(link.created_at + ChronoDuration::days(3));
    link.max_clicks = Some(7);
    link.redirect_type = RedirectType::PermanentRedirect;
    store.insert(&link).await.expect("insert");
    assert_eq!(
        store.get(link.id).await.unwrap().as_ref(),
        Some(&link),
        "get returns what was inserted"
    );
    assert_eq!(
        store
            .get_by_code(None, &link.short_code)
            .await
            .unwrap()
            .as_ref(),
        Some(&link),
        "get_by_code"
    );
    assert_eq!(store.get(Uuid::now_v7()).await.unwrap(), None, "unknown id");
    assert_eq!(
        store.get_by_code(None, &unique("none")).await.unwrap(),
        None,
        "unknown code"
    );
    assert_eq!(
        store
            .get_by_code(None, &link.short_code.to_uppercase())
            .await
            .unwrap(),
        None,
        "codes resolve exactly (case-sensitive)"
    );
    for taken in [link.short_code.clone(), link.short_code.to_uppercase()] {
        let mut twin = sample_link(None);
        twin.short_code = taken.clone();
        match store.insert(&twin).await {
            Err(Error::Conflict {
                code: "alias_taken",
                ..
            }) => {}
            other => panic!(
                "inserting {taken:?} (taken without regard to case) must be Conflict(alias_taken), got {other:?}"
            ),
        }
    }
    // Text no code, tag or title can hold finds nothing, and never fails.
    assert_eq!(
        store.get_by_code(None, "a\0b").await.unwrap(),
        None,
        "NUL code"
    );
    let none = store
        .list(&LinkQuery {
            owner_id: link.owner_id,
            domain: None,
            blocked: None,
            limit: 10,
            cursor: None,
            sort: LinkSort::Newest,
            tag: Some("a\0".into()),
            text: Some("\0".into()),
        })
        .await
        .expect("a listing with NUL text finds nothing, without an error");
    assert!(none.items.is_empty());
}

async fn link_alias_race(store: Arc<dyn LinkStore>) {
    let code = unique("race");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            let code = code.clone();
            tokio::spawn(async move {
                let mut link = sample_link(None);
                link.short_code = code;
                store.insert(&link).await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => won += 1,
            Err(Error::Conflict { .. }) => {}
            Err(e) => panic!("alias race: unexpected error {e}"),
        }
    }
    assert_eq!(
        won, 1,
        "exactly one of 32 concurrent inserts of one code wins"
    );
}

async fn link_update_and_delete(store: &dyn LinkStore) {
    let mut link = sample_link(Some(Uuid::now_v7()));
    link.max_clicks = Some(5);
    link.expires_at = Some(link.created_at + ChronoDuration::hours(1));
    store.insert(&link).await.unwrap();
    let later = link.created_at + ChronoDuration::seconds(5);
    let patch = LinkPatch {
        original_url: Some("https://example.org/new".into()),
        expires_at: Some(None),
        max_clicks: Some(None),
        redirect_type: Some(RedirectType::TemporaryRedirect),
        title: Some(None),
        tags: Some(vec!["gamma".into()]),
        is_active: Some(false),
        blocked: Some(true),
        blocked_reason: Some(Some("phishing".into())),
        redirect_rules: Some(sample_rules()),
        forward_query: Some(true),
        password: None,
        password_hash: Some(Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into())),
    };
    let updated = store
        .update(link.id, &patch, later)
        .await
        .unwrap()
        .expect("updated");
    let mut expected = link.clone();
    patch.apply(&mut expected, later);
    assert_eq!(
        updated, expected,
        "update applies the patch and sets updated_at"
    );
    assert_eq!(store.get(link.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store
            .get_by_code(None, &link.short_code)
            .await
            .unwrap()
            .map(|l| (l.redirect_rules, l.forward_query, l.password_hash)),
        Some((
            sample_rules(),
            true,
            Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into())
        )),
        "rules, query forwarding and the password hash are kept in order"
    );
    let cleared = LinkPatch {
        redirect_rules: Some(Vec::new()),
        forward_query: Some(false),
        password_hash: Some(None),
        ..LinkPatch::default()
    };
    let plain = store
        .update(link.id, &cleared, later)
        .await
        .unwrap()
        .unwrap();
    assert!(plain.redirect_rules.is_empty() && !plain.forward_query);
    assert_eq!(plain.password_hash, None, "a password can be removed");
    let again = LinkPatch {
        redirect_rules: patch.redirect_rules.clone(),
        forward_query: Some(true),
        password_hash: patch.password_hash.clone(),
        ..LinkPatch::default()
    };
    store.update(link.id, &again, later).await.unwrap().unwrap();
    let untouched = store
        .update(link.id, &LinkPatch::default(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        untouched.original_url, "https://example.org/new",
        "empty patch changes nothing"
    );
    assert_eq!(
        store.update(Uuid::now_v7(), &patch, later).await.unwrap(),
        None
    );

    assert_eq!(
        store.delete(link.id).await.unwrap().map(|l| l.id),
        Some(link.id)
    );
    assert_eq!(store.get(link.id).await.unwrap(), None, "deleted");
    assert_eq!(
        store.get_by_code(None, &link.short_code).await.unwrap(),
        None,
        "code freed"
    );
    assert_eq!(
        store.delete(link.id).await.unwrap(),
        None,
        "second delete finds nothing"
    );
    for code in [link.short_code.clone(), link.short_code.to_uppercase()] {
        let mut reuse = sample_link(None);
        reuse.short_code = code.clone();
        assert!(
            matches!(
                store.insert(&reuse).await,
                Err(Error::Conflict {
                    code: "alias_taken",
                    ..
                })
            ),
            "a deleted code ({code}) stays taken for good"
        );
    }
}

async fn link_listing(store: &dyn LinkStore) {
    let owner = Uuid::now_v7();
    let base = stored_precision(Utc::now()) - ChronoDuration::hours(1);
    let mut created = Vec::new();
    for i in 0..7 {
        let mut link = sample_link(Some(owner));
        // Two links share a timestamp: the id breaks the tie.
        link.created_at = base + ChronoDuration::seconds(i.min(5));
        link.updated_at = link.created_at;
        link.tags = if i % 2 == 0 {
            vec!["even".into()]
        } else {
            vec!["odd".into()]
        };
        link.title = Some(format!("Item {i}"));
        // Counts 0, 3, 6, 2, 5, 1 and 5: two links tie, and the id breaks the tie.
        link.click_count = if i == 6 { 5 } else { (i * 3 % 7) as u64 };
        if i == 3 {
            link.original_url = "https://example.com/Needle".into();
        }
        store.insert(&link).await.unwrap();
        created.push(link);
    }
    store
        .insert(&sample_link(Some(Uuid::now_v7())))
        .await
        .unwrap();
    let mut newest_first = created.clone();
    newest_first.sort_by_key(|l| std::cmp::Reverse((l.created_at, l.id)));

    let query = |limit, cursor, tag: Option<&str>, text: Option<&str>| LinkQuery {
        owner_id: Some(owner),
        domain: None,
        blocked: None,
        limit,
        cursor,
        sort: LinkSort::Newest,
        tag: tag.map(Into::into),
        text: text.map(Into::into),
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&query(3, cursor, None, None)).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|l| l.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<Uuid> = newest_first.iter().map(|l| l.id).collect();
    assert_eq!(
        seen, expected,
        "pages walk the owner's links newest first, once each"
    );

    let exact = store.list(&query(7, None, None, None)).await.unwrap();
    assert_eq!(exact.items.len(), 7);
    assert_eq!(exact.next_cursor, None, "no cursor when nothing follows");

    let even = store
        .list(&query(100, None, Some("even"), None))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 4, "tag filter");
    assert!(even.items.iter().all(|l| l.tags == ["even"]));

    let needle = store
        .list(&query(100, None, None, Some("needle")))
        .await
        .unwrap();
    assert_eq!(
        needle.items.len(),
        1,
        "text filter is case-insensitive on the URL"
    );
    let by_title = store
        .list(&query(100, None, None, Some("item 5")))
        .await
        .unwrap();
    assert_eq!(by_title.items.len(), 1, "text filter on the title");
    let by_code = store
        .list(&query(100, None, None, Some(&created[2].short_code)))
        .await
        .unwrap();
    assert_eq!(by_code.items.len(), 1, "text filter on the code");

    // By clicks: most first, the id breaking the tie, pages once each.
    let mut most_clicked = created.clone();
    most_clicked.sort_by_key(|l| std::cmp::Reverse((l.click_count, l.id)));
    let by_clicks = |cursor| LinkQuery {
        sort: LinkSort::Clicks,
        ..query(2, cursor, None, None)
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&by_clicks(cursor)).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|l| l.id));
        match page.next_cursor {
            Some(c) => {
                assert!(c.clicks.is_some(), "a clicks cursor holds the count");
                cursor = Some(c);
            }
            None => break,
        }
    }
    let expected: Vec<Uuid> = most_clicked.iter().map(|l| l.id).collect();
    assert_eq!(seen, expected, "pages walk the links most clicked first");
    let even_by_clicks = store
        .list(&LinkQuery {
            sort: LinkSort::Clicks,
            ..query(100, None, Some("even"), None)
        })
        .await
        .unwrap();
    assert!(
        even_by_clicks
            .items
            .windows(2)
            .all(|w| w[0].click_count >= w[1].click_count)
            && even_by_clicks.items.len() == 4,
        "filters hold in click order"
    );

    let after = Cursor::after(&newest_first[1], LinkSort::Newest);
    let rest = store
        .list(&query(100, Some(after), None, None))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 5, "cursor starts strictly after the item");
    let stranger = store
        .list(&LinkQuery {
            owner_id: Some(Uuid::now_v7()),
            domain: None,
            blocked: None,
            limit: 10,
            cursor: None,
            sort: LinkSort::Newest,
            tag: None,
            text: None,
        })
        .await
        .unwrap();
    assert!(stranger.items.is_empty(), "owners see only their links");
}

/// A domain row with a unique host.
pub fn sample_domain() -> Domain {
    Domain {
        host: format!("{}.example", unique("d")),
        is_default: false,
        root_redirect: Some("https://example.com/root".into()),
        not_found_redirect: None,
        gone_redirect: None,
        created_at: stored_precision(Utc::now()),
    }
}

/// Checks a [`DomainStore`] against its contract, with links on its domains (so the
/// store must be a [`LinkStore`] too).
pub async fn domain_store<S: LinkStore + DomainStore + 'static>(store: Arc<S>) {
    let domain = sample_domain();
    store.insert_domain(&domain).await.expect("insert domain");
    assert!(
        store.list_domains().await.unwrap().contains(&domain),
        "listed as inserted"
    );
    match store.insert_domain(&domain).await {
        Err(Error::Conflict {
            code: "domain_exists",
            ..
        }) => {}
        other => panic!("a second insert of a host must be Conflict(domain_exists), got {other:?}"),
    }
    let patch = DomainPatch {
        root_redirect: Some(None),
        not_found_redirect: Some(Some("https://example.com/missing".into())),
        gone_redirect: None,
    };
    let mut expected = domain.clone();
    patch.apply(&mut expected);
    assert_eq!(
        store.update_domain(&domain.host, &patch).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.update_domain(&unique("none"), &patch).await.unwrap(),
        None
    );

    // Codes are per domain: one code, two domains, two links.
    let code = unique("launch");
    let mut on_default = sample_link(Some(Uuid::now_v7()));
    on_default.short_code = code.clone();
    let mut on_domain = sample_link(on_default.owner_id);
    on_domain.short_code = code.clone();
    on_domain.domain = Some(domain.host.clone());
    on_domain.original_url = "https://example.org/elsewhere".into();
    store.insert(&on_default).await.unwrap();
    store
        .insert(&on_domain)
        .await
        .expect("the same code on another domain is another link");
    assert_eq!(
        store.get_by_code(None, &code).await.unwrap(),
        Some(on_default.clone())
    );
    assert_eq!(
        store.get_by_code(Some(&domain.host), &code).await.unwrap(),
        Some(on_domain.clone())
    );
    let mut twin = sample_link(None);
    twin.short_code = code.to_uppercase();
    twin.domain = Some(domain.host.clone());
    assert!(
        matches!(
            store.insert(&twin).await,
            Err(Error::Conflict {
                code: "alias_taken",
                ..
            })
        ),
        "within a domain, codes are unique without regard to case"
    );
    let listed = store
        .list(&LinkQuery {
            owner_id: on_default.owner_id,
            domain: Some(Some(domain.host.clone())),
            blocked: None,
            limit: 10,
            cursor: None,
            sort: LinkSort::Newest,
            tag: None,
            text: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.items, vec![on_domain.clone()], "listing by domain");
    let on_default_only = store
        .list(&LinkQuery {
            owner_id: on_default.owner_id,
            domain: Some(None),
            blocked: None,
            limit: 10,
            cursor: None,
            sort: LinkSort::Newest,
            tag: None,
            text: None,
        })
        .await
        .unwrap();
    assert_eq!(on_default_only.items, vec![on_default.clone()]);
    let everybody = store
        .list(&LinkQuery {
            owner_id: None,
            domain: Some(Some(domain.host.clone())),
            blocked: Some(false),
            limit: 100,
            cursor: None,
            sort: LinkSort::Newest,
            tag: None,
            text: Some(code.clone()),
        })
        .await
        .unwrap();
    assert_eq!(everybody.items.len(), 1, "every owner's links, filtered");

    assert_eq!(
        store.delete_domain(&domain.host).await.unwrap(),
        DomainDeletion::InUse,
        "a domain with links stays"
    );
    store.delete(on_domain.id).await.unwrap();
    assert_eq!(
        store.delete_domain(&domain.host).await.unwrap(),
        DomainDeletion::Deleted
    );
    assert!(
        !store
            .list_domains()
            .await
            .unwrap()
            .iter()
            .any(|d| d.host == domain.host)
    );
    assert_eq!(
        store.delete_domain(&domain.host).await.unwrap(),
        DomainDeletion::Missing
    );
    let mut orphan = sample_link(None);
    orphan.domain = Some(domain.host.clone());
    assert!(
        store.insert(&orphan).await.is_err(),
        "no link on a domain that doesn't exist"
    );
}

/// Checks a [`ModerationStore`] against its contract.
pub async fn moderation_store(store: Arc<dyn ModerationStore>) {
    let host = BlockedHost {
        id: Uuid::now_v7(),
        pattern: format!("{}.example", unique("evil")),
        reason: Some("phishing kit".into()),
        created_at: stored_precision(Utc::now()),
    };
    store.insert_blocked_host(&host).await.unwrap();
    assert!(store.list_blocked_hosts().await.unwrap().contains(&host));
    let twin = BlockedHost {
        id: Uuid::now_v7(),
        ..host.clone()
    };
    assert!(matches!(
        store.insert_blocked_host(&twin).await,
        Err(Error::Conflict {
            code: "pattern_exists",
            ..
        })
    ));
    assert!(store.delete_blocked_host(host.id).await.unwrap());
    assert!(!store.delete_blocked_host(host.id).await.unwrap());
    assert!(!store.list_blocked_hosts().await.unwrap().contains(&host));

    let link_id = Uuid::now_v7();
    let base = stored_precision(Utc::now());
    let mut filed = Vec::new();
    for i in 0..5 {
        let report = Report {
            id: Uuid::now_v7(),
            link_id,
            reason: ReportReason::ALL[i % ReportReason::ALL.len()],
            details: (i % 2 == 0).then(|| format!("details {i}")),
            status: ReportStatus::Open,
            reporter_id: (i % 2 == 1).then(Uuid::now_v7),
            created_at: base + ChronoDuration::seconds(i as i64),
        };
        store.insert_report(&report).await.unwrap();
        filed.push(report);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_reports(ReportStatus::Open, 2, cursor)
            .await
            .unwrap();
        seen.extend(page.items.into_iter().filter(|r| r.link_id == link_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = filed.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "open reports, newest first, by pages");
    let resolved = store
        .set_report_status(filed[0].id, ReportStatus::Resolved)
        .await
        .unwrap()
        .expect("known report");
    assert_eq!(resolved.status, ReportStatus::Resolved);
    let open = store
        .list_reports(ReportStatus::Open, 100, None)
        .await
        .unwrap();
    assert!(!open.items.iter().any(|r| r.id == filed[0].id));
    let done = store
        .list_reports(ReportStatus::Resolved, 100, None)
        .await
        .unwrap();
    assert!(done.items.iter().any(|r| r.id == filed[0].id));
    assert_eq!(
        store
            .set_report_status(Uuid::now_v7(), ReportStatus::Dismissed)
            .await
            .unwrap(),
        None
    );
}

async fn link_click_budget(store: Arc<dyn LinkStore>) {
    let mut link = sample_link(None);
    link.max_clicks = Some(10);
    store.insert(&link).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_click(link.id).await })
        })
        .collect();
    let mut counted = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            ClickBudget::Counted => counted += 1,
            ClickBudget::Exhausted => {}
            ClickBudget::Missing => panic!("link vanished"),
        }
    }
    assert_eq!(
        counted, 10,
        "exactly max_clicks of 50 concurrent clicks count"
    );
    assert_eq!(store.get(link.id).await.unwrap().unwrap().click_count, 10);

    let free = sample_link(None);
    store.insert(&free).await.unwrap();
    assert_eq!(
        store.consume_click(free.id).await.unwrap(),
        ClickBudget::Counted
    );
    assert_eq!(store.get(free.id).await.unwrap().unwrap().click_count, 1);
    assert_eq!(
        store.consume_click(Uuid::now_v7()).await.unwrap(),
        ClickBudget::Missing
    );
}

fn sample_user(email: &str) -> UserRecord {
    UserRecord {
        user: User {
            id: Uuid::now_v7(),
            email: email.into(),
            full_name: Some("Test User".into()),
            created_at: stored_precision(Utc::now()),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
    }
}

fn refresh_record(user_id: Uuid, family_id: Uuid, ttl: ChronoDuration) -> RefreshTokenRecord {
    let now = stored_precision(Utc::now());
    RefreshTokenRecord {
        id: Uuid::now_v7(),
        user_id,
        family_id,
        token_hash: unique("hash"),
        created_at: now,
        expires_at: now + ttl,
    }
}

/// Checks a [`UserStore`] against its contract.
pub async fn user_store(store: Arc<dyn UserStore>) {
    store.health().await.expect("health");
    let email = format!("{}@Example.com", unique("User."));
    let record = sample_user(&email);
    store.create_user(&record).await.expect("create");
    assert_eq!(
        store.user_by_id(record.user.id).await.unwrap(),
        Some(record.user.clone())
    );
    assert_eq!(
        store.user_by_email(&email.to_lowercase()).await.unwrap(),
        Some(record.clone()),
        "email lookup ignores case"
    );
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );
    match store.create_user(&sample_user(&email.to_uppercase())).await {
        Err(Error::Conflict {
            code: "email_taken",
            ..
        }) => {}
        other => panic!("same email in other case must be Conflict(email_taken), got {other:?}"),
    }
    let racing = format!("{}@example.com", unique("race"));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let email = racing.clone();
            tokio::spawn(async move { store.create_user(&sample_user(&email)).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(
        won, 1,
        "exactly one of 16 concurrent registrations of one email wins"
    );

    refresh_tokens(store.clone(), record.user.id).await;
    api_keys(&*store, record.user.id).await;
}

/// A rotation to `new` at `now`, with a 10-second grace period and a successor sealed
/// as the bytes of `new`'s hash (stores keep it opaque).
fn rotation(new: &RefreshTokenRecord, now: chrono::DateTime<Utc>) -> Rotation<'_> {
    Rotation {
        new,
        sealed_successor: new.token_hash.as_bytes(),
        now,
        grace: ChronoDuration::seconds(10),
    }
}

async fn refresh_tokens(store: Arc<dyn UserStore>, user_id: Uuid) {
    let now = stored_precision(Utc::now());
    let family = Uuid::now_v7();
    let first = refresh_record(user_id, family, ChronoDuration::days(1));
    store.insert_refresh_token(&first).await.unwrap();
    assert_eq!(
        store.refresh_token(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );
    assert!(store.family_active(family).await.unwrap());

    let second = refresh_record(user_id, family, ChronoDuration::days(1));
    assert_eq!(
        store
            .rotate_refresh_token(&first.token_hash, &rotation(&second, now))
            .await
            .unwrap(),
        RotateOutcome::Rotated { user_id },
        "a live token rotates"
    );
    let third = refresh_record(user_id, family, ChronoDuration::days(1));
    assert_eq!(
        store
            .rotate_refresh_token(
                &first.token_hash,
                &rotation(&third, now + ChronoDuration::seconds(3))
            )
            .await
            .unwrap(),
        RotateOutcome::Recent {
            user_id,
            sealed_successor: second.token_hash.as_bytes().to_vec()
        },
        "within the grace period the same successor comes back"
    );
    assert!(
        store.family_active(family).await.unwrap(),
        "a repeat within the grace period revokes nothing"
    );
    assert_eq!(
        store.refresh_token(&third.token_hash).await.unwrap(),
        None,
        "nor stores another successor"
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                &first.token_hash,
                &rotation(&third, now + ChronoDuration::seconds(11))
            )
            .await
            .unwrap(),
        RotateOutcome::Reused,
        "a used token presented after the grace period is reuse"
    );
    assert!(
        !store.family_active(family).await.unwrap(),
        "reuse revokes the family"
    );
    assert_eq!(
        store
            .rotate_refresh_token(&second.token_hash, &rotation(&third, now))
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "after reuse, the successor is dead too"
    );
    assert_eq!(
        store
            .rotate_refresh_token(&unique("unknown"), &rotation(&third, now))
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );

    let expired = refresh_record(user_id, Uuid::now_v7(), ChronoDuration::seconds(-1));
    store.insert_refresh_token(&expired).await.unwrap();
    let next = refresh_record(user_id, expired.family_id, ChronoDuration::days(1));
    assert_eq!(
        store
            .rotate_refresh_token(&expired.token_hash, &rotation(&next, now))
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "an expired token does not rotate"
    );

    let family = Uuid::now_v7();
    let live = refresh_record(user_id, family, ChronoDuration::days(1));
    store.insert_refresh_token(&live).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let old = live.token_hash.clone();
            tokio::spawn(async move {
                let next = refresh_record(user_id, family, ChronoDuration::days(1));
                store
                    .rotate_refresh_token(&old, &rotation(&next, stored_precision(Utc::now())))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut rotated, mut recent) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            RotateOutcome::Rotated { .. } => rotated += 1,
            RotateOutcome::Recent { .. } => recent += 1,
            other => panic!("a concurrent rotation answered {other:?}"),
        }
    }
    assert_eq!(
        (rotated, recent),
        (1, 15),
        "exactly one of 16 concurrent rotations of one token rotates; the others get its successor"
    );

    let family = Uuid::now_v7();
    let token = refresh_record(user_id, family, ChronoDuration::days(1));
    store.insert_refresh_token(&token).await.unwrap();
    store.revoke_family(family).await.unwrap();
    assert!(!store.family_active(family).await.unwrap());
    let next = refresh_record(user_id, family, ChronoDuration::days(1));
    assert_eq!(
        store
            .rotate_refresh_token(&token.token_hash, &rotation(&next, now))
            .await
            .unwrap(),
        RotateOutcome::Invalid,
        "a revoked family does not rotate"
    );
    assert_eq!(
        store.user_by_email("nul\0@example.com").await.unwrap(),
        None,
        "an email with a NUL finds nobody, without an error"
    );
}

async fn api_keys(store: &dyn UserStore, user_id: Uuid) {
    let make = |name: &str, age: i64| ApiKeyRecord {
        key: ApiKey {
            id: Uuid::now_v7(),
            user_id,
            name: name.into(),
            prefix: "hlk_abcd".into(),
            created_at: stored_precision(Utc::now()) - ChronoDuration::seconds(age),
        },
        key_hash: unique("keyhash"),
    };
    let older = make("older", 10);
    let newer = make("newer", 0);
    store.insert_api_key(&older).await.unwrap();
    store.insert_api_key(&newer).await.unwrap();
    assert_eq!(
        store.api_key_by_hash(&older.key_hash).await.unwrap(),
        Some(older.key.clone())
    );
    assert_eq!(store.api_key_by_hash(&unique("nope")).await.unwrap(), None);
    assert_eq!(
        store.list_api_keys(user_id).await.unwrap(),
        vec![newer.key.clone(), older.key.clone()],
        "own keys, newest first"
    );
    assert!(
        !store
            .revoke_api_key(Uuid::now_v7(), older.key.id)
            .await
            .unwrap(),
        "only the owner revokes"
    );
    assert!(store.revoke_api_key(user_id, older.key.id).await.unwrap());
    assert_eq!(
        store.api_key_by_hash(&older.key_hash).await.unwrap(),
        None,
        "revoked at once"
    );
    assert!(
        !store.revoke_api_key(user_id, older.key.id).await.unwrap(),
        "second revoke finds nothing"
    );
    assert_eq!(store.list_api_keys(user_id).await.unwrap(), vec![newer.key]);
}

/// A classified click on `link_id` with a fresh event id, for analytics-store tests: a
/// bot's dimensions are those of a crawler, a human's those of Firefox on Linux;
/// `counted` says whether the redirect already counted it (`max_clicks` links).
pub fn sample_click(
    link_id: Uuid,
    day: NaiveDate,
    visitor: &str,
    is_bot: bool,
    counted: bool,
) -> ClassifiedClick {
    ClassifiedClick {
        event_id: Uuid::now_v7(),
        link_id,
        day,
        visitor: visitor.into(),
        is_bot,
        referrer: if is_bot {
            "bots.example".into()
        } else {
            "news.example".into()
        },
        browser: if is_bot {
            "unknown".into()
        } else {
            "Firefox".into()
        },
        os: "Linux".into(),
        device: if is_bot {
            "bot".into()
        } else {
            "desktop".into()
        },
        country: "DE".into(),
        counted_at_redirect: counted,
        at: if day == Utc::now().date_naive() {
            Utc::now()
        } else {
            day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc()
        },
    }
}

/// A click at `at`, its event id a UUIDv7 of that instant (as the forwarder makes them).
fn click_at(link_id: Uuid, at: chrono::DateTime<Utc>, bot: bool) -> ClassifiedClick {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    );
    ClassifiedClick {
        event_id: Uuid::new_v7(ts),
        at,
        day: at.date_naive(),
        ..sample_click(link_id, at.date_naive(), "v", bot, false)
    }
}

/// Checks the raw click log of an [`AnalyticsStore`]: every new click kept, paged newest
/// first by id, filtered by time, pruned.
pub async fn click_log<S: LinkStore + AnalyticsStore + 'static>(store: Arc<S>) {
    let link = sample_link(None);
    store.insert(&link).await.unwrap();
    let now = stored_precision(Utc::now());
    let hours = |h: i64| now - ChronoDuration::hours(h);
    let clicks = vec![
        click_at(link.id, hours(72), false),
        click_at(link.id, hours(48), false),
        click_at(link.id, hours(20), true),
        click_at(link.id, hours(2), false),
        click_at(link.id, hours(1), false),
    ];
    store.record(&clicks).await.unwrap();
    store.record(&clicks[..2]).await.unwrap();
    let query = |limit, after, from, to| ClickQuery {
        link_id: link.id,
        from,
        to,
        after,
        limit,
    };
    let all = store.clicks(&query(100, None, None, None)).await.unwrap();
    let ids: Vec<Uuid> = all.iter().map(|c| c.id).collect();
    let mut newest_first: Vec<Uuid> = clicks.iter().map(|c| c.event_id).collect();
    newest_first.reverse();
    assert_eq!(ids, newest_first, "every click once, newest first");
    assert_eq!(
        all[2],
        clicks[2].to_click(),
        "bots are kept, with every field"
    );
    let first = store.clicks(&query(2, None, None, None)).await.unwrap();
    let second = store
        .clicks(&query(2, Some(first[1].id), None, None))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..4]);
    let window = store
        .clicks(&query(100, None, Some(hours(50)), Some(hours(2))))
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|c| c.id).collect::<Vec<_>>(),
        [clicks[2].event_id, clicks[1].event_id],
        "from is inclusive, to exclusive"
    );
    let other = store
        .clicks(&ClickQuery {
            link_id: Uuid::now_v7(),
            ..query(100, None, None, None)
        })
        .await
        .unwrap();
    assert!(other.is_empty());

    store.prune_clicks(hours(36)).await.unwrap();
    let kept = store.clicks(&query(100, None, None, None)).await.unwrap();
    assert_eq!(
        kept.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids[..3],
        "clicks older than the cutoff by a day or more are gone"
    );
}

fn sample_webhook(owner_id: Uuid, events: Vec<WebhookEvent>) -> WebhookRecord {
    WebhookRecord {
        webhook: Webhook {
            id: Uuid::now_v7(),
            owner_id,
            url: "https://hooks.example.com/in".into(),
            events,
            description: Some("orders".into()),
            enabled: true,
            failures: 0,
            created_at: stored_precision(Utc::now()),
        },
        secret: crate::webhooks::new_secret(),
    }
}

fn sample_job(webhook_id: Uuid, event_id: Uuid) -> DeliveryJob {
    DeliveryJob {
        id: Uuid::now_v7(),
        webhook_id,
        event_id,
        event: WebhookEvent::LinkCreated,
        payload: r#"{"type":"link.created"}"#.into(),
        attempt: 1,
        due_at: stored_precision(Utc::now()),
    }
}

fn attempt(job: &DeliveryJob, ok: bool) -> Delivery {
    Delivery {
        id: Uuid::now_v7(),
        webhook_id: job.webhook_id,
        event_id: job.event_id,
        event: job.event,
        attempt: job.attempt,
        status_code: Some(if ok { 204 } else { 500 }),
        error: (!ok).then(|| "the receiver answered 500".to_string()),
        at: stored_precision(Utc::now()),
    }
}

/// Checks a [`WebhookStore`]: webhooks kept and changed, one job per event and webhook,
/// each claimed by one claimer at a time, retries, the log, failures counted to disabling.
pub async fn webhook_store(store: Arc<dyn WebhookStore>) {
    let owner = Uuid::now_v7();
    let first = sample_webhook(
        owner,
        vec![WebhookEvent::LinkCreated, WebhookEvent::LinkClicked],
    );
    store.insert_webhook(&first).await.unwrap();
    let second = sample_webhook(owner, vec![WebhookEvent::LinkDeleted]);
    store.insert_webhook(&second).await.unwrap();
    let stranger = sample_webhook(Uuid::now_v7(), vec![WebhookEvent::LinkCreated]);
    store.insert_webhook(&stranger).await.unwrap();
    assert_eq!(
        store.webhook(first.webhook.id).await.unwrap(),
        Some(first.clone())
    );
    let listed = store.webhooks(owner).await.unwrap();
    assert_eq!(
        listed,
        vec![second.clone(), first.clone()],
        "newest first, own only"
    );
    let heard = store
        .subscribed(Some(owner), WebhookEvent::LinkCreated)
        .await
        .unwrap();
    assert_eq!(heard, vec![first.clone()]);
    let everyone = store
        .subscribed(None, WebhookEvent::LinkCreated)
        .await
        .unwrap();
    assert_eq!(everyone.len(), 2);

    let patch = WebhookPatch {
        description: Some(None),
        events: Some(vec![WebhookEvent::LinkCreated]),
        ..WebhookPatch::default()
    };
    let changed = store
        .update_webhook(first.webhook.id, &patch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.webhook.description, None);
    assert_eq!(changed.webhook.events, [WebhookEvent::LinkCreated]);
    assert_eq!(changed.secret, first.secret);
    assert!(
        store
            .update_webhook(Uuid::now_v7(), &patch)
            .await
            .unwrap()
            .is_none()
    );

    // One job per event and webhook; each claimed by one claimer until its lease ends.
    let event = Uuid::now_v7();
    let job = sample_job(first.webhook.id, event);
    let outcome = store
        .enqueue(&[job.clone(), sample_job(first.webhook.id, event)])
        .await
        .unwrap();
    assert_eq!(
        (outcome.queued, outcome.duplicates, outcome.dropped),
        (1, 1, 0)
    );
    assert_eq!(store.pending_jobs().await.unwrap(), 1);
    let now = stored_precision(Utc::now()) + ChronoDuration::seconds(1);
    let lease = Duration::from_secs(30);
    let (a, b) = tokio::join!(
        store.claim_jobs(now, lease, 10),
        store.claim_jobs(now, lease, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 1, "a job goes to one claimer");
    let claimed = a.into_iter().chain(b).next().unwrap();
    assert_eq!(claimed, job);
    assert!(
        store.claim_jobs(now, lease, 10).await.unwrap().is_empty(),
        "leased"
    );
    let later = now + ChronoDuration::seconds(31);
    assert_eq!(
        store.claim_jobs(later, lease, 10).await.unwrap().len(),
        1,
        "the lease ended"
    );

    // A failure reschedules at the next attempt; a success retires the job.
    let retry_at = later + ChronoDuration::seconds(60);
    let webhook = store
        .finish_job(&claimed, &attempt(&claimed, false), Some(retry_at))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((webhook.failures, webhook.enabled), (1, true));
    assert!(
        store
            .claim_jobs(later + ChronoDuration::seconds(59), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store.claim_jobs(retry_at, lease, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempt, 2);
    let webhook = store
        .finish_job(&retried[0], &attempt(&retried[0], true), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(webhook.failures, 0, "a success resets the count");
    assert_eq!(store.pending_jobs().await.unwrap(), 0);
    let log = store.deliveries(first.webhook.id, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert!(log[0].succeeded() && !log[1].succeeded());
    assert_eq!(log[1].status_code, Some(500));

    // Failures in a row disable the webhook; its jobs are no longer handed out.
    let mut last = None;
    for _ in 0..DISABLE_AFTER {
        let job = sample_job(second.webhook.id, Uuid::now_v7());
        store.enqueue(std::slice::from_ref(&job)).await.unwrap();
        last = store
            .finish_job(&job, &attempt(&job, false), None)
            .await
            .unwrap();
    }
    let last = last.unwrap();
    assert_eq!((last.failures, last.enabled), (DISABLE_AFTER, false));
    store
        .enqueue(&[sample_job(second.webhook.id, Uuid::now_v7())])
        .await
        .unwrap();
    assert!(
        store.claim_jobs(later, lease, 10).await.unwrap().is_empty(),
        "disabled"
    );
    assert!(
        store
            .subscribed(Some(owner), WebhookEvent::LinkDeleted)
            .await
            .unwrap()
            .is_empty()
    );
    let enabled = WebhookPatch {
        enabled: Some(true),
        ..WebhookPatch::default()
    };
    let again = store
        .update_webhook(second.webhook.id, &enabled)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.webhook.enabled, again.webhook.failures), (true, 0));

    // Deleting takes the jobs and the log along.
    store
        .enqueue(&[sample_job(first.webhook.id, Uuid::now_v7())])
        .await
        .unwrap();
    assert!(store.delete_webhook(first.webhook.id).await.unwrap());
    assert!(!store.delete_webhook(first.webhook.id).await.unwrap());
    assert!(store.webhook(first.webhook.id).await.unwrap().is_none());
    assert!(
        store
            .deliveries(first.webhook.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.claim_jobs(later, lease, 10).await.unwrap().is_empty());
}

/// Checks an [`AnalyticsStore`] (together with the [`LinkStore`] it shares data with).
pub async fn analytics_store<S: LinkStore + AnalyticsStore + 'static>(store: Arc<S>) {
    AnalyticsStore::health(&*store).await.expect("health");
    let link = sample_link(None);
    store.insert(&link).await.unwrap();
    let today = Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let batch = vec![
        sample_click(link.id, today, "v1", false, false),
        sample_click(link.id, today, "v1", false, false),
        sample_click(link.id, today, "v2", false, true),
        sample_click(link.id, today, "b1", true, false),
        sample_click(link.id, yesterday, "v1", false, false),
    ];
    let outcome = store.record(&batch).await.unwrap();
    assert_eq!((outcome.recorded, outcome.duplicates), (5, 0));
    assert_eq!(
        store.get(link.id).await.unwrap().unwrap().click_count,
        3,
        "click_count grows by human clicks not already counted at redirect"
    );
    let replay = store.record(&batch[1..3]).await.unwrap();
    assert_eq!(
        (replay.recorded, replay.duplicates),
        (0, 2),
        "replays are duplicates"
    );
    // A combination of values of its own: each dimension still counts it once.
    let chrome_in_france = ClassifiedClick {
        browser: "Chrome".into(),
        country: "FR".into(),
        ..sample_click(link.id, today, "v3", false, false)
    };
    let mixed = vec![batch[0].clone(), chrome_in_france];
    let outcome = store.record(&mixed).await.unwrap();
    assert_eq!((outcome.recorded, outcome.duplicates), (1, 1));
    assert_eq!(
        store.get(link.id).await.unwrap().unwrap().click_count,
        4,
        "replays change no count"
    );

    let window = store.rollups(link.id, yesterday, today).await.unwrap();
    let mut days = window.days.clone();
    days.sort_by_key(|d| d.date);
    assert_eq!(days.len(), 2);
    assert_eq!(
        (
            days[0].date,
            days[0].clicks,
            days[0].bot_clicks,
            days[0].unique_visitors
        ),
        (yesterday, 1, 0, 1)
    );
    assert_eq!(
        (
            days[1].date,
            days[1].clicks,
            days[1].bot_clicks,
            days[1].unique_visitors
        ),
        (today, 4, 1, 3)
    );
    let breakdown = |dim: Dimension| {
        window
            .breakdowns
            .iter()
            .find(|(d, _)| *d == dim)
            .map(|(_, v)| {
                let mut values = v
                    .iter()
                    .map(|vc| (vc.value.clone(), vc.count))
                    .collect::<Vec<_>>();
                values.sort();
                values
            })
            .unwrap_or_default()
    };
    assert_eq!(
        breakdown(Dimension::Referrer),
        vec![("news.example".to_string(), 5)],
        "bots stay out of breakdowns"
    );
    assert_eq!(
        breakdown(Dimension::Browser),
        vec![("Chrome".to_string(), 1), ("Firefox".to_string(), 4)]
    );
    assert_eq!(breakdown(Dimension::Os), vec![("Linux".to_string(), 5)]);
    assert_eq!(
        breakdown(Dimension::Device),
        vec![("desktop".to_string(), 5)]
    );
    assert_eq!(
        breakdown(Dimension::Country),
        vec![("DE".to_string(), 4), ("FR".to_string(), 1)]
    );

    busy_link_day(&*store, today).await;

    let only_today = store.rollups(link.id, today, today).await.unwrap();
    assert_eq!(only_today.days.len(), 1, "the window bounds the days");
    let other = store
        .rollups(Uuid::now_v7(), yesterday, today)
        .await
        .unwrap();
    assert!(other.days.is_empty());

    let orphan = sample_click(Uuid::now_v7(), today, "v9", false, false);
    assert_eq!(
        store.record(&[orphan]).await.unwrap().recorded,
        1,
        "clicks of unknown links are accepted"
    );
    assert_eq!(store.record(&[]).await.unwrap().recorded, 0);
}

/// A link-day with more clicks, in more combinations of values, than a store may keep
/// one row per combination for: every dimension still counts each click once.
async fn busy_link_day<S: LinkStore + AnalyticsStore>(store: &S, today: NaiveDate) {
    let link = sample_link(None);
    store.insert(&link).await.unwrap();
    let clicks: Vec<ClassifiedClick> = (0..300)
        .map(|i| ClassifiedClick {
            referrer: format!("r{}.example", i % 50).into(),
            browser: ["Firefox", "Chrome", "Safari"][i % 3].into(),
            country: ["DE", "FR", "US", "JP"][i % 4].into(),
            ..sample_click(link.id, today, &format!("u{i}"), false, false)
        })
        .collect();
    for batch in clicks.chunks(40) {
        let outcome = store.record(batch).await.unwrap();
        assert_eq!(outcome.recorded, batch.len() as u64);
    }
    let window = store.rollups(link.id, today, today).await.unwrap();
    assert_eq!(
        window
            .days
            .iter()
            .map(|d| (d.clicks, d.unique_visitors))
            .collect::<Vec<_>>(),
        [(300, 300)]
    );
    for (dimension, values) in &window.breakdowns {
        let mut counts: Vec<(String, u64)> =
            values.iter().map(|v| (v.value.clone(), v.count)).collect();
        counts.sort();
        let expected: Vec<(String, u64)> = match dimension {
            Dimension::Referrer => {
                let mut referrers: Vec<(String, u64)> =
                    (0..50).map(|i| (format!("r{i}.example"), 6)).collect();
                referrers.sort();
                referrers
            }
            Dimension::Browser => vec![
                ("Chrome".into(), 100),
                ("Firefox".into(), 100),
                ("Safari".into(), 100),
            ],
            Dimension::Os => vec![("Linux".into(), 300)],
            Dimension::Device => vec![("desktop".into(), 300)],
            Dimension::Country => ["DE", "FR", "JP", "US"]
                .iter()
                .map(|c| (c.to_string(), 75))
                .collect(),
        };
        assert_eq!(counts, expected, "{dimension:?} of a busy link-day");
    }
    assert_eq!(window.breakdowns.len(), Dimension::ALL.len());
}

/// Checks a [`Cache`] against its contract.
pub async fn cache(cache: Arc<dyn Cache>) {
    cache.health().await.expect("health");
    let code = unique("c");
    let link = sample_link(None);
    let entry = CacheEntry::Found(Arc::new(crate::records::RedirectTarget::of(&link)));
    assert_eq!(cache.get(&code).await.unwrap(), None);
    cache
        .set(&code, &entry, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&code).await.unwrap(), Some(entry.clone()));
    // A smart link's entry carries its rules, query forwarding and password hash.
    let smart_code = unique("s");
    let mut smart = sample_link(None);
    smart.redirect_rules = sample_rules();
    smart.forward_query = true;
    smart.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    let smart = CacheEntry::Found(Arc::new(crate::records::RedirectTarget::of(&smart)));
    cache
        .set(&smart_code, &smart, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get(&smart_code).await.unwrap(),
        Some(smart),
        "rules, forwarding and the password hash survive the shared cache"
    );
    let missing = unique("m");
    cache
        .set(&missing, &CacheEntry::Missing, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get(&missing).await.unwrap(),
        Some(CacheEntry::Missing),
        "negative entries"
    );

    let heard = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = heard.clone();
    cache.listen(Arc::new(move |invalidation| {
        let text = match invalidation {
            Invalidation::Code(code) => code.to_string(),
            Invalidation::All => "*".to_string(),
        };
        log.lock().unwrap().push(text);
        true
    }));
    cache.invalidate(&code).await.unwrap();
    assert_eq!(cache.get(&code).await.unwrap(), None, "invalidated");
    assert!(
        heard.lock().unwrap().iter().any(|c| *c == code || c == "*"),
        "listeners hear the invalidation before invalidate returns"
    );

    let short = unique("ttl");
    cache
        .set(&short, &entry, Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        cache.get(&short).await.unwrap(),
        None,
        "entries expire with their TTL"
    );
}

/// Checks that two instances sharing a cache (two handles on one backend, as two
/// processes would have) never serve a stale link: after an edit or delete on one
/// returns, the *very next* redirect on the other sees it. Pass the same cache twice
/// for an in-process cache.
pub async fn two_instances(cache_a: Arc<dyn Cache>, cache_b: Arc<dyn Cache>) {
    use crate::{LinkPatch as Patch, NewLink, Principal, Shortener, Visit};
    let store = Arc::new(crate::memory::MemoryStore::new());
    let build = |cache: Arc<dyn Cache>| {
        Shortener::builder()
            .store(store.clone())
            .cache(cache)
            .build()
            .unwrap()
    };
    let (a, b) = (build(cache_a), build(cache_b));
    let head = Visit {
        count: false,
        ..Visit::default()
    };
    let user = a
        .register(
            &format!("{}@example.com", unique("two")),
            "password123",
            None,
        )
        .await
        .unwrap();
    let me = Principal { user_id: user.id };
    let link = a
        .shorten(NewLink::new("https://example.com/v1"), Some(&me))
        .await
        .unwrap();
    for _ in 0..2 {
        // The second resolve is an L1 hit on b.
        let r = b.resolve(&link.short_code, &head).await.unwrap();
        assert_eq!(r.location(), "https://example.com/v1");
    }
    for version in 2..6 {
        let url = format!("https://example.com/v{version}");
        a.update_link(
            &me,
            link.id,
            Patch {
                original_url: Some(url.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let r = b.resolve(&link.short_code, &head).await.unwrap();
        assert_eq!(
            r.location(),
            url,
            "the very next redirect on b sees the edit"
        );
        let r = a.resolve(&link.short_code, &head).await.unwrap();
        assert_eq!(r.location(), url);
    }
    a.delete_link(&me, link.id).await.unwrap();
    assert!(
        matches!(
            b.resolve(&link.short_code, &head).await,
            Err(Error::NotFound { .. })
        ),
        "the very next redirect on b sees the delete"
    );
    // A code b cached as unknown becomes known as soon as a creates it.
    let alias = unique("a");
    assert!(b.resolve(&alias, &head).await.is_err());
    a.shorten(
        NewLink {
            custom_alias: Some(alias.clone()),
            ..NewLink::new("https://example.com/alias")
        },
        Some(&me),
    )
    .await
    .unwrap();
    assert!(
        b.resolve(&alias, &head).await.is_ok(),
        "a negative entry is dropped on create"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Checks a [`RateLimiter`] against its contract (uses the wall clock; takes well under a second).
pub async fn rate_limiter(limiter: Arc<dyn RateLimiter>) {
    limiter.health().await.expect("health");
    let quota = Quota::new(5, Duration::from_secs(60)).unwrap();
    let key = unique("rl:");
    for expected in (0..5).rev() {
        let d = limiter.check(&key, quota).await.unwrap();
        assert!(d.allowed, "within quota");
        assert_eq!(d.limit, 5);
        assert_eq!(d.remaining, expected, "remaining counts down");
        assert!(d.retry_after.is_none());
        assert!(d.reset_after <= Duration::from_secs(60));
    }
    let refused = limiter.check(&key, quota).await.unwrap();
    assert!(!refused.allowed, "over quota");
    assert_eq!(refused.remaining, 0);
    let retry = refused.retry_after.expect("retry_after on refusal");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(12),
        "retry after about period/limit, got {retry:?}"
    );
    assert!(
        limiter.check(&unique("rl:"), quota).await.unwrap().allowed,
        "keys are independent"
    );

    let key = unique("rl:");
    let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let limiter = limiter.clone();
            let key = key.clone();
            tokio::spawn(async move { limiter.check(&key, quota).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 10,
        "exactly the quota of 40 concurrent requests is allowed"
    );

    let key = unique("rl:");
    let fast = Quota::new(2, Duration::from_millis(400)).unwrap();
    assert!(limiter.check(&key, fast).await.unwrap().allowed);
    assert!(limiter.check(&key, fast).await.unwrap().allowed);
    assert!(!limiter.check(&key, fast).await.unwrap().allowed);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        limiter.check(&key, fast).await.unwrap().allowed,
        "the quota refills with time"
    );

    // A bulk request counts as many requests as it has items, all or none.
    let key = unique("rl:");
    let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
    let d = limiter.check_cost(&key, quota, 7).await.unwrap();
    assert!(d.allowed, "7 of 10 fit");
    assert_eq!(d.remaining, 3);
    let refused = limiter.check_cost(&key, quota, 4).await.unwrap();
    assert!(!refused.allowed, "4 more do not fit in the 3 left");
    assert!(refused.retry_after.is_some());
    let d = limiter.check_cost(&key, quota, 3).await.unwrap();
    assert!(d.allowed && d.remaining == 0, "the refusal counted nothing");
    assert!(
        !limiter
            .check_cost(&unique("rl:"), quota, 11)
            .await
            .unwrap()
            .allowed,
        "a cost above the limit never fits"
    );

    // A cost of 0 looks without counting.
    let key = unique("rl:");
    let quota = Quota::new(2, Duration::from_secs(60)).unwrap();
    for _ in 0..5 {
        let look = limiter.check_cost(&key, quota, 0).await.unwrap();
        assert!(look.allowed && look.remaining == 2, "a look counts nothing");
    }
    assert!(limiter.check(&key, quota).await.unwrap().allowed);
    assert!(limiter.check(&key, quota).await.unwrap().allowed);
    let look = limiter.check_cost(&key, quota, 0).await.unwrap();
    assert!(!look.allowed, "a look sees the quota used up");
    assert!(look.retry_after.is_some());
}

/// Checks an [`IdAllocator`] against its contract.
pub async fn id_allocator(ids: Arc<dyn IdAllocator>) {
    ids.health().await.expect("health");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let ids = ids.clone();
            tokio::spawn(async move { ids.allocate(1000).await.unwrap() })
        })
        .collect();
    let mut blocks = Vec::new();
    for t in tasks {
        let block = t.await.unwrap();
        assert_eq!(block.end - block.start, 1000, "block of the asked size");
        blocks.push(block);
    }
    blocks.sort_by_key(|b| b.start);
    for pair in blocks.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "blocks {:?} and {:?} overlap",
            pair[0],
            pair[1]
        );
    }
    let next = ids.allocate(1).await.unwrap();
    assert!(
        blocks
            .iter()
            .all(|b| next.start >= b.end || next.end <= b.start)
    );
}

/// A click event of `code` with a fresh id and visitor `visitor-{n}`, for bus tests.
pub fn sample_event(code: &str, n: usize) -> ClickEvent {
    ClickEvent {
        id: Uuid::now_v7(),
        link_id: Uuid::nil(),
        short_code: code.into(),
        occurred_at: Utc::now(),
        visitor: format!("visitor-{n}").into(),
        user_agent: Some("conformance".into()),
        referrer: None,
        country: None,
        counted_at_redirect: false,
    }
}

async fn drain(
    consumer: &mut Box<dyn crate::bus::EventConsumer>,
    want: usize,
    patience: Duration,
) -> Vec<ClickEvent> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + patience;
    while got.len() < want && tokio::time::Instant::now() < deadline {
        let batch = consumer
            .next_batch(want - got.len(), Duration::from_millis(500))
            .await
            .unwrap();
        got.extend_from_slice(batch);
        consumer.ack().await.unwrap();
    }
    got
}

/// Checks an [`EventBus`] against its contract. Give it a bus of its own (a fresh
/// stream or topic): it expects to see only its own events.
pub async fn event_bus(bus: Arc<dyn EventBus>) {
    bus.health().await.expect("health");
    let group = unique("group-");
    let mut consumer = bus.subscribe(&group, "c1").await.expect("subscribe");
    let events: Vec<ClickEvent> = (0..50)
        .map(|n| sample_event(if n % 2 == 0 { "even" } else { "odd" }, n))
        .collect();
    bus.publish(&events[..20]).await.expect("publish");
    let mut rest = events[20..].to_vec();
    bus.publish_owned(&mut rest).await.expect("publish owned");
    assert!(rest.is_empty(), "publish_owned takes what it accepts");
    let got = drain(&mut consumer, 50, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 50, "every published event is delivered");
    let ids: HashSet<Uuid> = got.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        events.iter().map(|e| e.id).collect(),
        "the same events, intact"
    );
    for code in ["even", "odd"] {
        let sent: Vec<Uuid> = events
            .iter()
            .filter(|e| e.short_code == code)
            .map(|e| e.id)
            .collect();
        let seen: Vec<Uuid> = got
            .iter()
            .filter(|e| e.short_code == code)
            .map(|e| e.id)
            .collect();
        assert_eq!(seen, sent, "events of one code keep their order");
    }
    assert_eq!(
        got[0],
        events[got[0].visitor["visitor-".len()..].parse::<usize>().unwrap()],
        "payload round-trips"
    );

    let quiet = consumer
        .next_batch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        quiet.is_empty(),
        "acknowledged events are not delivered again"
    );

    // A batch taken but not acknowledged comes back once its consumer is gone.
    let more: Vec<ClickEvent> = (0..5).map(|n| sample_event("again", n)).collect();
    bus.publish(&more).await.unwrap();
    let mut taken = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while taken.len() < 5 && tokio::time::Instant::now() < deadline {
        taken = consumer
            .next_batch(5, Duration::from_millis(500))
            .await
            .unwrap()
            .to_vec();
    }
    assert_eq!(taken.len(), 5);
    drop(consumer);
    let mut second = bus.subscribe(&group, "c2").await.expect("subscribe");
    let redelivered = drain(&mut second, 5, Duration::from_secs(60)).await;
    let ids: HashSet<Uuid> = redelivered.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        more.iter().map(|e| e.id).collect(),
        "unacknowledged events are redelivered"
    );
}
