//! The dashboard in a real browser: headless Chromium driven through WebDriver
//! (chromedriver) against a `hoplink` process on an ephemeral port.
//!
//! It walks a person's day: register, create a link, follow it, watch the click arrive
//! in the chart, edit it, make and revoke an API key, check that another user can't see
//! the link, delete it, sign out. Every screen is saved at 1280×800 and 375×812 under
//! `target/screenshots/` and checked with axe-core: no `serious` or `critical` issue.
//!
//! Needs `chromium` and `chromedriver` (Debian's packages) and axe-core from npm
//! (`AXE_CORE`, or `target/npm/node_modules/axe-core/axe.min.js`); `.ci/run` installs
//! them. Without them the test says so and passes, except under `CI`, where it fails.

#[path = "common/mod.rs"]
mod common;

use common::free_port;
use fantoccini::{Client, ClientBuilder, Locator, key::Key};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const LANDING_HOST: &str = "landing.example.com";
const PATIENCE: Duration = Duration::from_secs(15);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn axe_source() -> Option<String> {
    let path = std::env::var("AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/npm/node_modules/axe-core/axe.min.js"));
    std::fs::read_to_string(path).ok()
}

/// What the test needs from the machine, or why it can't run.
fn prerequisites() -> Result<String, String> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            return Err(format!(
                "{tool} is missing (apt-get install chromium chromium-driver)"
            ));
        }
    }
    axe_source()
        .ok_or_else(|| "axe-core is missing (npm install --prefix target/npm axe-core)".to_string())
}

/// A destination for the short links: any path answers a page naming it. The browser
/// reaches it as `landing.example.com` (a host rule), since a link may not point at
/// a loopback address.
async fn landing_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = format!(
                    "<!doctype html><html lang=\"en\"><title>Landed</title><h1 id=\"landed\">Landed at {path}</h1></html>"
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

async fn spawn_hoplink(port: u16) -> Child {
    let child = Command::new(common::BIN)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_EMAILS", "ada@example.com")
        .env("ANALYTICS_FLUSH_MS", "100")
        .env("JWT_SECRET", "dashboard-test-secret-dashboard-test")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("hoplink starts");
    let client = common::client();
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/api/v1/health"))
            .send()
            .await
            && r.status().is_success()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hoplink did not start");
}

async fn spawn_chromedriver() -> (Child, u16) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    for _ in 0..100 {
        if common::port_open(port).await {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen");
}

async fn browser(driver_port: u16, dark: bool) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,800".into(),
        "--lang=en-US".into(),
        // Headless Chromium names itself in its user agent, and hoplink counts such
        // visits as bots: this visitor is a person.
        "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36".into(),
        format!("--host-resolver-rules=MAP {LANDING_HOST} 127.0.0.1"),
    ];
    if dark {
        // The system's dark setting: `prefers-color-scheme: dark`.
        args.push("--force-dark-mode".into());
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a browser session")
}

/// The browser, the screens it has seen and what axe found on them.
struct Session {
    client: Client,
    shots: PathBuf,
    axe: String,
    problems: Vec<String>,
    screens: Vec<String>,
}

impl Session {
    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
    }

    async fn click(&self, selector: &str) {
        self.css(selector).await.click().await.unwrap();
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let el = self.css(selector).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Waits until the screen's heading reads `title`.
    async fn on_screen(&self, title: &str) {
        self.until(&format!("the screen {title:?}"), || async {
            self.text("main h1").await.as_deref() == Some(title)
        })
        .await;
    }

    async fn text(&self, selector: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(selector)).await.ok()?;
        el.text().await.ok()
    }

    async fn until<F, Fut>(&self, what: &str, mut ok: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if ok().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(self.shots.join("failure.png"), png);
        }
        let main = self.text("main").await.unwrap_or_default();
        panic!(
            "waited in vain for {what}; the page says:\n{main}\n(target/screenshots/failure.png)"
        );
    }

    /// Saves the screen at both sizes and runs axe-core on each.
    async fn screen(&mut self, name: &str) {
        for (width, height, tag) in [(1280u32, 800u32, "desktop"), (375, 812, "phone")] {
            self.client.set_window_size(width, height).await.unwrap();
            // A passing notice would hide part of the screen.
            self.client
                .execute(
                    "document.getElementById('toast').classList.remove('shown');",
                    vec![],
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{tag}.png")), png).unwrap();
            // Nothing may need a sideways scroll of the whole page (tables scroll inside
            // their own box).
            if !self.fits_the_window().await {
                self.problems
                    .push(format!("{name} ({tag}): the page is wider than the window"));
            }
            self.check_accessibility(&format!("{name} ({tag})")).await;
        }
        self.client.set_window_size(1280, 800).await.unwrap();
        self.screens.push(name.to_string());
    }

    /// Whether the page needs no sideways scroll.
    async fn fits_the_window(&self) -> bool {
        self.client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap()
            == json!(true)
    }

    async fn check_accessibility(&mut self, screen: &str) {
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .unwrap();
        if loaded != Value::Bool(true) {
            self.client.execute(&self.axe, vec![]).await.unwrap();
        }
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                window.axe.run(document, { resultTypes: ["violations"] })
                  .then((r) => done(r.violations
                    .filter((v) => v.impact === "serious" || v.impact === "critical")
                    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`)))
                  .catch((e) => done([`axe failed: ${e}`]));"#,
                vec![],
            )
            .await
            .unwrap();
        for problem in found.as_array().into_iter().flatten() {
            self.problems
                .push(format!("{screen}: {}", problem.as_str().unwrap_or("?")));
        }
    }

    /// Opens `url` in a new tab, returns the page's URL and heading, and comes back.
    async fn visit_in_new_tab(&self, url: &str) -> (String, String) {
        let home = self.client.window().await.unwrap();
        let tab = self.client.new_window(true).await.unwrap();
        self.client.switch_to_window(tab.handle).await.unwrap();
        self.client.goto(url).await.unwrap();
        let heading = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("#landed"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = self.client.current_url().await.unwrap().to_string();
        self.client.close_window().await.unwrap();
        self.client.switch_to_window(home).await.unwrap();
        (at, heading)
    }

    /// Loads `url` as a new page (a fragment change alone keeps the page).
    async fn load_afresh(&self, url: &str) {
        self.client.goto("about:blank").await.unwrap();
        self.client.goto(url).await.unwrap();
    }

    async fn sign_in(&self, email: &str, password: &str, then: &str) {
        self.on_screen("Sign in").await;
        self.type_into("input[name=email]", email).await;
        self.type_into("input[name=password]", password).await;
        self.click("form button[type=submit]").await;
        self.on_screen(then).await;
    }

    async fn sign_out(&self) {
        self.click("#sign-out").await;
        self.on_screen("Sign in").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_manages_links_in_the_browser() {
    if let Err(why) = prerequisites() {
        if std::env::var_os("CI").is_some() {
            panic!("CI needs the browser suite: {why}");
        }
        eprintln!("skipping the browser suite: {why}");
        return;
    }
    let landing = landing_server().await;
    let port = free_port();
    let _server = spawn_hoplink(port).await;
    let (_driver, driver_port) = spawn_chromedriver().await;
    let base = format!("http://127.0.0.1:{port}");
    let shots = workspace().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("failure.png"));
    let mut s = Session {
        client: browser(driver_port, false).await,
        shots,
        axe: axe_source().unwrap(),
        problems: Vec::new(),
        screens: Vec::new(),
    };
    let http = common::client();

    // Signed out, /app/ shows the sign-in screen; from there, registration.
    s.client.goto(&format!("{base}/app")).await.unwrap();
    s.on_screen("Sign in").await;
    assert!(s.client.current_url().await.unwrap().path() == "/app/");
    s.screen("sign-in").await;
    // The accessibility check sees what it should: an image with no text alternative.
    let probe = "const i = document.createElement('img'); i.id = 'axe-probe'; i.src = 'icon.svg'; document.querySelector('main').append(i);";
    s.client.execute(probe, vec![]).await.unwrap();
    s.check_accessibility("probe").await;
    assert!(
        s.problems.iter().any(|p| p.contains("image-alt")),
        "axe-core flags an image without alt: {:?}",
        s.problems
    );
    s.problems.clear();
    s.client
        .execute("document.getElementById('axe-probe').remove();", vec![])
        .await
        .unwrap();
    // So does the width check: a block wider than the window.
    assert!(s.fits_the_window().await);
    let wide = "const d = document.createElement('div'); d.id = 'wide-probe'; d.style.width = '3000px'; d.style.height = '1px'; document.body.append(d);";
    s.client.execute(wide, vec![]).await.unwrap();
    assert!(!s.fits_the_window().await, "a 3000 px block is caught");
    s.client
        .execute("document.getElementById('wide-probe').remove();", vec![])
        .await
        .unwrap();
    s.click("a[href='#/register']").await;
    s.on_screen("Create an account").await;
    s.screen("register").await;
    s.type_into("input[name=email]", "ada@example.com").await;
    s.type_into("input[name=full_name]", "Ada Lovelace").await;
    s.type_into("input[name=password]", "short").await;
    s.click("form button[type=submit]").await;
    // The API's problem shows next to the field it names.
    s.until("the password's error", || async {
        s.text("input[name=password] ~ .field-error, .field-error:not([hidden])")
            .await
            .is_some_and(|t| t.contains("8"))
    })
    .await;
    s.type_into("input[name=password]", "correct horse battery")
        .await;
    s.click("form button[type=submit]").await;
    s.on_screen("Links").await;
    assert!(s.text(".empty").await.unwrap().contains("no links yet"));
    s.screen("links-empty").await;

    // A new link with an alias; a taken or malformed alias is named at its field.
    s.click("a[href='#/links/new']").await;
    s.on_screen("New link").await;
    s.type_into(
        "input[name=original_url]",
        &format!("http://{LANDING_HOST}:{landing}/first"),
    )
    .await;
    s.type_into("input[name=custom_alias]", "no spaces allowed")
        .await;
    s.type_into("input[name=title]", "Launch day").await;
    s.type_into("input[name=tags]", "launch, spring").await;
    s.click("details.advanced summary").await;
    s.screen("link-new").await;
    s.click("form button[type=submit]").await;
    s.until("the alias's error", || async {
        s.css("input[name=custom_alias]")
            .await
            .attr("aria-invalid")
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some("true")
    })
    .await;
    s.type_into("input[name=custom_alias]", "launch-day").await;
    s.click("form button[type=submit]").await;
    s.on_screen("Launch day").await;
    let short = format!("{base}/launch-day");
    assert_eq!(s.text(".short.big").await.unwrap(), short);
    let link_url = s.client.current_url().await.unwrap().to_string();

    // Followed in the browser, it lands; the click shows in the chart within seconds.
    let (at, heading) = s.visit_in_new_tab(&short).await;
    assert_eq!(at, format!("http://{LANDING_HOST}:{landing}/first"));
    assert_eq!(heading, "Landed at /first");
    let mut seen = false;
    for _ in 0..30 {
        s.click("#refresh-analytics").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.text("#total-clicks").await.as_deref() == Some("1") {
            seen = true;
            break;
        }
    }
    assert!(seen, "the click shows in the analytics within seconds");
    s.until("the link's own count", || async {
        s.text("#link-clicks").await.as_deref() == Some("1")
    })
    .await;
    let bars = s
        .client
        .execute(
            "return [...document.querySelectorAll('svg.chart rect.bar')].filter((r) => Number(r.getAttribute('height')) > 0).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bars, json!(1), "one day with a click in the chart");
    s.click(".segmented button:nth-child(1)").await;
    s.until("the 7-day chart", || async {
        s.text(".day-chart figcaption")
            .await
            .is_some_and(|t| t.contains("7 days"))
    })
    .await;
    s.client
        .execute("document.getElementById('an-h').scrollIntoView();", vec![])
        .await
        .unwrap();
    s.screen("link-analytics").await;

    // Edited, the next redirect goes to the new destination.
    s.click("#edit-link").await;
    s.type_into(
        "form.link-form input[name=original_url]",
        &format!("http://{LANDING_HOST}:{landing}/second"),
    )
    .await;
    s.click("form.link-form button[type=submit]").await;
    s.until("the edit saved", || async {
        s.text(".dest-full")
            .await
            .is_some_and(|t| t.ends_with("/second"))
    })
    .await;
    let (at, _) = s.visit_in_new_tab(&short).await;
    assert_eq!(at, format!("http://{LANDING_HOST}:{landing}/second"));

    // The keyboard: a confirmation dialog holds the focus, and Escape closes it.
    s.click("#delete-link").await;
    s.css("dialog[open]").await;
    let inside = s
        .client
        .execute(
            "return document.activeElement.closest('dialog') !== null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(inside, json!(true), "focus moves into the dialog");
    s.screen("confirm-delete").await;
    s.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Escape.to_string())
        .await
        .unwrap();
    s.until("the dialog to close", || async {
        s.client.find(Locator::Css("dialog[open]")).await.is_err()
    })
    .await;

    // The list shows the link with its status and clicks.
    s.click("#nav a[href='#/links']").await;
    s.on_screen("Links").await;
    assert!(s.text("ul.links").await.unwrap().contains("Active"));
    s.screen("links").await;

    // An API key: shown once, works, then revoked and dead.
    s.click("#nav a[href='#/keys']").await;
    s.on_screen("API keys").await;
    s.type_into("input[name=name]", "Deploy script").await;
    s.click("form button[type=submit]").await;
    let key = s
        .css("#secret-value")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    s.screen("api-key-created").await;
    let with_key = |key: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/api/v1/urls"))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(with_key(key.clone()).await, 200);
    s.click("dialog .actions button:not(.primary)").await;
    s.screen("api-keys").await;
    s.click("ul.rows button.danger").await;
    s.click("dialog button.danger").await;
    s.until("the key to go", || async {
        s.text(".empty").await.is_some()
    })
    .await;
    assert_eq!(with_key(key).await, 401);

    // The other screens an admin has.
    for (href, title, name) in [
        ("#/webhooks", "Webhooks", "webhooks"),
        ("#/data", "Import & export", "import-export"),
        ("#/admin", "Administration", "admin"),
    ] {
        s.click(&format!("#nav a[href='{href}']")).await;
        s.on_screen(title).await;
        s.screen(name).await;
    }

    // The dark theme (the system's setting) passes the same checks.
    let mut dark = Session {
        client: browser(driver_port, true).await,
        shots: s.shots.clone(),
        axe: s.axe.clone(),
        problems: Vec::new(),
        screens: Vec::new(),
    };
    dark.load_afresh(&link_url).await;
    dark.sign_in("ada@example.com", "correct horse battery", "Launch day")
        .await;
    let background = dark
        .client
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(background, json!("rgb(20, 23, 28)"), "the dark theme is on");
    dark.screen("link-dark").await;
    dark.click("#nav a[href='#/links']").await;
    dark.on_screen("Links").await;
    dark.screen("links-dark").await;
    dark.client.clone().close().await.unwrap();
    s.problems.append(&mut dark.problems);
    s.screens.append(&mut dark.screens);

    // Someone else can't see the link, even with its address.
    s.sign_out().await;
    s.click("a[href='#/register']").await;
    s.on_screen("Create an account").await;
    s.type_into("input[name=email]", "bob@example.com").await;
    s.type_into("input[name=password]", "another password")
        .await;
    s.click("form button[type=submit]").await;
    s.on_screen("Links").await;
    assert!(
        s.client
            .find(Locator::Css("#nav a[href='#/admin']"))
            .await
            .is_err(),
        "no admin screen"
    );
    // A new page load forgets the session (tokens live in memory only): the address
    // asks for a sign-in, then shows what it names, which is nothing of Bob's.
    s.load_afresh(&link_url).await;
    s.sign_in("bob@example.com", "another password", "Link not found")
        .await;
    s.on_screen("Link not found").await;
    s.screen("not-found").await;
    s.sign_out().await;

    // The owner deletes it (confirmed), and the short link is gone.
    s.load_afresh(&link_url).await;
    s.sign_in("ada@example.com", "correct horse battery", "Launch day")
        .await;
    s.click("#delete-link").await;
    s.click("dialog button.danger").await;
    s.on_screen("Links").await;
    let gone = http.get(&short).send().await.unwrap().status().as_u16();
    assert_eq!(gone, 404);
    s.sign_out().await;

    s.client.clone().close().await.unwrap();
    println!(
        "browser suite: {} screens saved in target/screenshots",
        s.screens.len()
    );
    assert!(
        s.problems.is_empty(),
        "axe-core found serious or critical problems:\n{}",
        s.problems.join("\n")
    );
}

#[tokio::test]
async fn the_dashboard_files_are_cached_compressed_and_locked_down() {
    let port = free_port();
    let _server = spawn_hoplink(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = common::client();

    let r = http.get(format!("{base}/app")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/app/");

    let r = http
        .get(format!("{base}/app/"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.headers()["content-encoding"], "br");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let etag = r.headers()["etag"].clone();

    let r = http
        .get(format!("{base}/app/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304, "an unchanged file is not sent again");

    // The first load: the page and every file it pulls in, as sent compressed.
    let mut total = 0;
    for file in [
        "",
        "app.css",
        "icon.svg",
        "app.js",
        "api.js",
        "ui.js",
        "links.js",
        "rules.js",
        "detail.js",
        "chart.js",
        "keys.js",
        "webhooks.js",
        "data.js",
        "admin.js",
    ] {
        let r = http
            .get(format!("{base}/app/{file}"))
            .header("accept-encoding", "br, gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        total += r.bytes().await.unwrap().len();
    }
    assert!(total < 150 * 1024, "first load {total} bytes");
    println!("dashboard first load: {total} bytes compressed");

    let r = http
        .get(format!("{base}/app/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // `app` is the dashboard's: no link may take it.
    let r = http
        .post(format!("{base}/api/v1/urls"))
        .json(&json!({"original_url": "https://example.com/", "custom_alias": "app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}
