//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`) against the router on
//! loopback. The server runs in this process so that the test can load a
//! tenant through the engine's enforce calls, as a broker would.
//!
//! Checks that the rows and their numbers match the API, that an
//! overloaded tenant's bar and refusals move within 2 s, that suspend acts
//! in the page and in the API, that a bad quota shows the server's message
//! beside its field, that the tenant page's charts fill from the server's
//! samples, that a read token gets no action buttons and that a wrong
//! token gets a clear message. Screenshots of the overview (wide and
//! narrow) and of a tenant page go to `target/dashboard-screenshots/`.
//!
//! Without `chromium` or `chromedriver` on the PATH the test fails and says
//! how to install them.
#![cfg(all(feature = "server", feature = "cli", feature = "cluster"))]

mod server_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use serde_json::{json, Value};
use server_support::{Client, ServerProcess, TestServer, READ_TOKEN, TOKEN};

const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// Flags that keep Chromium off the network and quiet in a container.
const CHROMIUM_FLAGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The first of `names` found on the PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver started by this test in its own process group; dropping
/// it ends that group (the driver and the browsers it started).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &Path, log: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = Client::new(&driver.url, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while status.try_request("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &pgid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` (a function body returning a value) in the page until
/// `ok` holds for its result; panics with `what` and the last result after
/// `within`.
async fn wait_for(
    page: &WebDriver,
    within: Duration,
    what: &str,
    script: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        // The page redraws its table and forms as data arrives: a script
        // that runs in the middle of a redraw can find an element gone (a
        // JavaScript error). That is "not yet", like a value that does not
        // hold; the last one is reported at the deadline.
        let v = match page.execute(script, vec![]).await {
            Ok(v) => v,
            Err(e) => Value::String(format!("script error: {e}")),
        };
        if !v.as_str().is_some_and(|s| s.starts_with("script error: ")) && ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: still {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(page: &WebDriver, token: &str) {
    let input = page.find(Locator::Id("token")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(token).await.unwrap();
    page.find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn sign_out(page: &WebDriver) {
    page.find(Locator::Id("signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        page,
        Duration::from_secs(5),
        "the sign-in form shows",
        "return !document.getElementById('login').hidden",
        |v| v == &json!(true),
    )
    .await;
}

async fn save_screenshot(page: &WebDriver, name: &str) {
    let png = page.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// The rows the page shows: id, name, status, the three rate labels, the
/// refusals per second, the held counts, and the action buttons.
const ROWS: &str = "return [...document.querySelectorAll('#tenants tbody tr[data-id]')].map(tr => ({
    id: tr.dataset.id,
    name: tr.querySelector('td.name').textContent,
    status: tr.querySelector('td.status').textContent,
    rates: [...tr.querySelectorAll('.bar')].map(b => b.querySelector('.value').textContent),
    percent: Number(tr.querySelector('.rate-bytes_per_second').dataset.percent),
    refusals: Number(tr.querySelector('td.refusals').textContent),
    alerts: tr.querySelector('.alerts').textContent,
    held: [...tr.querySelectorAll('.held span')].map(s => s.textContent),
    buttons: tr.querySelectorAll('button[data-action=suspend], button[data-action=activate]').length,
  }))";

fn row<'a>(rows: &'a Value, id: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

/// `serve` announces the dashboard and serves it without a token.
#[test]
fn the_binary_serves_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let line = format!("  dashboard: {}/ (sign in with a token)", server.base);
    assert!(server.stdout.contains(&line), "{:?}", server.stdout);
    let page = Client::new(&server.base, None).get("/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page
        .text
        .contains("<title>streambus-tenancy dashboard</title>"));
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        on_path(&["chromium", "chromium-browser"]),
        on_path(&["chromedriver"]),
    ) else {
        panic!(
            "the dashboard test needs Debian's chromium and chromedriver on the PATH: {INSTALL}"
        );
    };

    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path());
    let api = s.client();
    for i in 0..12 {
        let body = json!({"id": format!("t{i:02}"), "name": format!("Tenant {i}"),
            "metadata": {"team": "payments"}});
        assert_eq!(api.post("/api/v1/tenants", &body).status, 201);
    }
    let hot = json!({"id": "hot", "name": "Hot tenant", "quotas": {
        "max_bytes_per_second": 1000, "max_connections": 4}});
    assert_eq!(api.post("/api/v1/tenants", &hot).status, 201);
    let held: Vec<_> = (0..3)
        .map(|_| s.manager.acquire_connection("hot").unwrap())
        .collect();

    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver, &dir.path().join("chromedriver.log"));
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    args.push("--window-size=1280,800".into());
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    });
    let caps = caps.as_object().unwrap().clone();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Alerts and the charts' samples, as `serve` runs them, faster.
        let sampler = s.state.spawn_alert_sampler(Duration::from_millis(100));
        let page = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a WebDriver session with headless chromium");
        page.goto(&format!("{}/", s.base)).await.unwrap();
        sign_in(&page, TOKEN).await;

        // The rows and their numbers match the API.
        let rows = wait_for(
            &page,
            Duration::from_secs(10),
            "every tenant shows",
            ROWS,
            |v| v.as_array().is_some_and(|a| a.len() == 13),
        )
        .await;
        for t in api.list_all() {
            let id = t["id"].as_str().unwrap();
            let r = row(&rows, id);
            assert_eq!(r["name"], t["name"], "{id}");
            assert_eq!(r["status"], t["status"], "{id}");
            assert_eq!(r["buttons"], 1, "an admin sees suspend or activate");
            let stats = api.get(&format!("/api/v1/tenants/{id}/stats")).body;
            let limit = stats["tenant"]["quotas"]["max_bytes_per_second"]
                .as_i64()
                .unwrap();
            let used = stats["usage"]["bytes_per_second"].as_u64().unwrap();
            let label = r["rates"][0].as_str().unwrap();
            assert!(
                label.starts_with(&format!("{used} / ")),
                "{id}: bytes/s {label} against {used} of {limit}"
            );
        }
        let hot_row = row(&rows, "hot");
        assert_eq!(hot_row["rates"][0], "0 / 1000 (0%)");
        assert!(
            hot_row["held"]
                .as_array()
                .unwrap()
                .contains(&json!("connections 3 / 4")),
            "{hot_row}"
        );
        assert_eq!(
            page.execute(
                "return document.body.classList.contains('read-only')",
                vec![]
            )
            .await
            .unwrap(),
            json!(false)
        );

        // Load the hot tenant past its byte rate, as a broker's produce
        // path would: its bar fills and its refusals show within 2 s.
        let stop = Arc::new(AtomicBool::new(false));
        let load = {
            let (stop, manager) = (Arc::clone(&stop), Arc::clone(&s.manager));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = manager.enforce_produce_quota("hot", 100, 1);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let started = Instant::now();
        // The page polls once a second; the time taken is printed. The
        // deadline is wider than the 2 s the page aims at, so that a shared
        // CI machine cannot make the test flaky.
        let moved = wait_for(
            &page,
            Duration::from_secs(5),
            "the hot tenant's bar and refusals move",
            ROWS,
            |v| {
                let r = row(v, "hot");
                r["percent"].as_f64().unwrap() >= 80.0 && r["refusals"].as_f64().unwrap() > 0.0
            },
        )
        .await;
        eprintln!(
            "the overload showed after {:?}: {}",
            started.elapsed(),
            row(&moved, "hot")
        );
        wait_for(
            &page,
            Duration::from_secs(5),
            "the hot tenant's alert shows",
            ROWS,
            |v| row(v, "hot")["alerts"] == "critical bytes/s 100%",
        )
        .await;
        save_screenshot(&page, "overview.png").await;

        // Sorting by refusals puts the hot tenant first.
        page.find(Locator::Css("th[data-sort=refusals] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        page.find(Locator::Css("th[data-sort=refusals] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "sorted by refusals, most first",
            "return document.querySelector('#tenants tbody tr').dataset.id",
            |v| v == "hot",
        )
        .await;

        // Filtering by id and status.
        page.find(Locator::Id("filter-id"))
            .await
            .unwrap()
            .send_keys("t0")
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "the id filter keeps t00..t09",
            ROWS,
            |v| v.as_array().is_some_and(|a| a.len() == 10),
        )
        .await;
        page.find(Locator::Id("filter-id"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();

        // Suspend from the page: the row and the API both say suspended.
        page.find(Locator::Css("tr[data-id=t03] button[data-action=suspend]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "t03 shows suspended",
            ROWS,
            |v| row(v, "t03")["status"] == "suspended",
        )
        .await;
        assert_eq!(api.get("/api/v1/tenants/t03").body["status"], "suspended");
        page.execute(
            "const s = document.getElementById('filter-status'); s.value = 'suspended'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
        let only = wait_for(
            &page,
            Duration::from_secs(5),
            "the status filter keeps the suspended tenant",
            ROWS,
            |v| v.as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
        assert_eq!(only[0]["id"], "t03");
        page.execute(
            "const s = document.getElementById('filter-status'); s.value = ''; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();

        // The tenant page: live numbers, metadata, and a quota edit whose
        // bad value shows the server's message beside its field.
        page.find(Locator::Css("tr[data-id=hot] td.id button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "the tenant page shows",
            "return document.getElementById('tenant').hidden ? '' : \
             document.getElementById('tenant-title').textContent",
            |v| v == "Tenant hot — Hot tenant",
        )
        .await;
        wait_for(
            &page,
            Duration::from_secs(5),
            "the tenant page shows the refusals",
            "return Number(document.querySelector('#tenant-live .refusals').textContent)",
            |v| v.as_f64().is_some_and(|r| r > 0.0),
        )
        .await;
        let captions = wait_for(
            &page,
            Duration::from_secs(5),
            "the charts fill",
            "return [...document.querySelectorAll('#charts figure')].map(f => \
               [Number(f.dataset.samples), f.querySelector('figcaption').textContent])",
            |v| {
                v.as_array().is_some_and(|a| {
                    a.len() == 4
                        && a.iter().all(|c| c[0].as_u64().unwrap() >= 5)
                        && !a[0][1].as_str().unwrap().contains("highest 0 ")
                        && !a[3][1].as_str().unwrap().contains("highest 0 ")
                })
            },
        )
        .await;
        eprintln!("charts: {captions}");
        page.execute(
            "document.getElementById('charts-title').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
        save_screenshot(&page, "tenant.png").await;
        let topics = page.find(Locator::Id("q-max_topics")).await.unwrap();
        topics.clear().await.unwrap();
        topics.send_keys("lots").await.unwrap();
        page.find(Locator::Id("quota-save"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let message = wait_for(
            &page,
            Duration::from_secs(5),
            "the server's 400 shows beside the field",
            "return document.getElementById('q-max_topics-err').textContent",
            |v| v.as_str().is_some_and(|t| !t.is_empty()),
        )
        .await;
        assert!(
            message
                .as_str()
                .unwrap()
                .contains("max_topics must be an integer"),
            "{message}"
        );
        let topics = page.find(Locator::Id("q-max_topics")).await.unwrap();
        topics.clear().await.unwrap();
        topics.send_keys("7").await.unwrap();
        page.find(Locator::Id("quota-save"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "the quota is saved",
            "return document.getElementById('quota-ok').textContent",
            |v| v == "Saved.",
        )
        .await;
        assert_eq!(
            api.get("/api/v1/tenants/hot").body["quotas"]["max_topics"],
            7
        );
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();

        // A narrow screen: the overview stacks each tenant's cells.
        page.goto(&format!("{}/#/", s.base)).await.unwrap();
        page.set_window_size(420, 900).await.unwrap();
        wait_for(
            &page,
            Duration::from_secs(10),
            "rows at 420 px",
            ROWS,
            |v| v.as_array().is_some_and(|a| a.len() == 13),
        )
        .await;
        let overflow = page
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(true), "no sideways scrolling at 420 px");
        save_screenshot(&page, "overview-narrow.png").await;
        page.set_window_size(1280, 800).await.unwrap();

        // A read token: the same rows, no action buttons, no quota saving.
        sign_out(&page).await;
        sign_in(&page, READ_TOKEN).await;
        let rows = wait_for(
            &page,
            Duration::from_secs(10),
            "rows for the read token",
            ROWS,
            |v| v.as_array().is_some_and(|a| a.len() == 13),
        )
        .await;
        for r in rows.as_array().unwrap() {
            assert_eq!(r["buttons"], 0, "a read token sees no action: {r}");
        }
        let who = page
            .find(Locator::Id("whoami"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(who, "Signed in as viewer (read)");
        page.goto(&format!("{}/#/tenant/hot", s.base))
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(5),
            "the tenant page for a reader, without actions",
            "return [document.getElementById('tenant').hidden, \
              document.querySelectorAll('#tenant button[data-action]').length, \
              document.getElementById('quota-save').getClientRects().length, \
              document.getElementById('q-max_topics').readOnly]",
            |v| v == &json!([false, 0, 0, true]),
        )
        .await;

        // A wrong token: a clear message, and no token kept.
        sign_out(&page).await;
        sign_in(&page, "wrong-token-0123456789abcdef").await;
        let message = wait_for(
            &page,
            Duration::from_secs(5),
            "the wrong token's message",
            "return document.getElementById('login-error').textContent",
            |v| v.as_str().is_some_and(|t| t.contains("refused")),
        )
        .await;
        assert!(
            message.as_str().unwrap().contains("wrong token"),
            "{message}"
        );
        let kept = page
            .execute(
                "return [sessionStorage.length, document.cookie, location.href]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(kept[0], 0);
        assert_eq!(kept[1], "");
        assert!(!kept[2].as_str().unwrap().contains("token"), "{kept}");

        // 10,000 tenants: the overview shows one page of them, and moves
        // between pages, within a second or two. Signed in from the
        // keyboard. (The tenants go into the engine directly: the page reads
        // the engine, and 10,000 synced writes would only slow the test.)
        for n in 0..10_000 {
            s.manager
                .create_tenant(&format!("bulk-{n:05}"), "Bulk", Default::default())
                .unwrap();
        }
        page.goto(&format!("{}/#/", s.base)).await.unwrap();
        let input = page.find(Locator::Id("token")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(&format!("{TOKEN}\u{E007}")).await.unwrap();
        let started = Instant::now();
        let first = wait_for(
            &page,
            Duration::from_secs(5),
            "the first page of 10,013 tenants",
            "return [document.querySelectorAll('#tenants tbody tr[data-id]').length, \
              document.getElementById('page-info').textContent]",
            |v| v[0] == 50 && v[1].as_str().is_some_and(|t| t.ends_with("of 10013")),
        )
        .await;
        eprintln!(
            "the first of 10,013 tenants after {:?}: {first}",
            started.elapsed()
        );
        page.find(Locator::Id("next"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let started = Instant::now();
        wait_for(
            &page,
            Duration::from_secs(10),
            "the second page",
            "return document.querySelector('#tenants tbody tr').dataset.id",
            |v| v == "bulk-00050",
        )
        .await;
        eprintln!("the second page after {:?}", started.elapsed());
        page.find(Locator::Id("prev"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(
            &page,
            Duration::from_secs(10),
            "back to the first page",
            "return document.querySelector('#tenants tbody tr').dataset.id",
            |v| v == "bulk-00000",
        )
        .await;

        page.close().await.unwrap();
        sampler.abort();
    });
    drop(held);
    drop(driver);
    eprintln!("screenshots in {}", screenshot_dir().display());
}
