//! The web pages in headless Chromium against the real server: a customer signs up, picks two
//! seats, watches the countdown and pays; a second visitor's open seat map turns those seats
//! sold without reloading; an organizer schedules shows and reads their sales; an admin
//! suspends an account. Every page is screenshotted at desktop and phone width into
//! `target/screenshots/`, and no page may ask for anything outside the server.

use boxoffice_testkit::browser::{Browser, Chromedriver};
use boxoffice_testkit::{Engine, TestApp};
use serde_json::{Value, json};
use std::path::PathBuf;

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

/// Screenshots of the page as it is now, wide and narrow, and a check that everything it
/// loaded came from the server.
async fn capture(browser: &Browser, base: &str, name: &str) {
    only_from_server(browser, base).await;
    let folder = screenshots();
    browser
        .screenshot(&folder, &format!("{name}-desktop"))
        .await;
    browser.resize(PHONE.0, PHONE.1).await;
    browser.screenshot(&folder, &format!("{name}-phone")).await;
    browser.resize(DESKTOP.0, DESKTOP.1).await;
}

async fn only_from_server(browser: &Browser, base: &str) {
    let urls = browser.requested_urls().await;
    assert!(!urls.is_empty(), "the browser logged no requests");
    let outside: Vec<&String> = urls.iter().filter(|u| !u.starts_with(base)).collect();
    assert!(
        outside.is_empty(),
        "a page asked for something outside the server: {outside:?}"
    );
}

async fn seat_class(browser: &Browser, label: &str) -> String {
    browser
        .js(
            "const s = document.querySelector(`.seat[data-label=\"${arguments[0]}\"]`); return s ? s.getAttribute('class') : ''",
            vec![json!(label)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_live(browser: &Browser) {
    browser
        .until(
            "the live connection",
            "const s = document.getElementById('live-state'); return s && s.dataset.connected === 'yes'",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_organizers_and_admins_use_the_pages() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let base = app.base.clone();
    let (organizer, show) = app.show_with("boxoffice-org@example.com", 8, 50, 6).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let driver = Chromedriver::start().await;

    // A visitor who is not signed in watches the seat map.
    let watcher = driver.browser("watcher", DESKTOP.0, DESKTOP.1).await;
    watcher.open(&format!("{base}/shows/{show_id}")).await;
    wait_live(&watcher).await;
    watcher.js("window.neverReloaded = true", vec![]).await;

    // The home page lists the event; a customer signs up from the show page.
    let customer = driver.browser("customer", DESKTOP.0, DESKTOP.1).await;
    customer.open(&format!("{base}/")).await;
    assert!(customer.text("main").await.contains("Test Gig"));
    capture(&customer, &base, "home").await;
    customer
        .open(&format!("{base}/signup?next=/shows/{show_id}"))
        .await;
    capture(&customer, &base, "signup").await;
    customer.fill("input[name=name]", "Carla Customer").await;
    customer
        .fill("input[name=email]", "carla@example.com")
        .await;
    customer
        .fill("input[name=password]", "a long enough password")
        .await;
    customer.click("form button[type=submit]").await;
    customer.until_at(&format!("/shows/{show_id}")).await;
    wait_live(&customer).await;
    assert!(customer.text("header").await.contains("Carla Customer"));

    // Two seats picked on the map (one by mouse, one by keyboard), then held.
    customer.click(".seat[data-label=\"A3\"]").await;
    customer
        .js(
            "const s = document.querySelector('.seat[data-label=\"A4\"]'); s.focus(); \
             s.dispatchEvent(new KeyboardEvent('keydown', {key: ' ', bubbles: true}))",
            vec![],
        )
        .await;
    assert_eq!(customer.text("#selection-summary").await, "2 seats: A3, A4");
    capture(&customer, &base, "show").await;
    customer.click("#hold-selected").await;
    customer.until_at("/holds/").await;

    // The countdown runs from the hold's deadline (ten minutes on the server's clock).
    let shown = customer.text("#countdown").await;
    let (minutes, seconds) = shown.split_once(':').expect("m:ss");
    let left: i64 = minutes.parse::<i64>().unwrap() * 60 + seconds.parse::<i64>().unwrap();
    assert!(
        (560..=600).contains(&left),
        "countdown shows {shown}, about ten minutes were expected"
    );
    assert!(customer.text("main").await.contains("€40.00"));
    capture(&customer, &base, "hold").await;

    // The watcher sees the seats held, then sold, without reloading.
    watcher
        .until(
            "A3 and A4 held on the watcher's map",
            "return ['A3','A4'].every(l => document.querySelector(`.seat[data-label=\"${l}\"]`).classList.contains('held'))",
        )
        .await;

    // A declined card is explained in words and keeps the seats; a good one books them.
    customer
        .fill("input[name=card_number]", "4000 0000 0000 0002")
        .await;
    customer.click("#pay").await;
    let notice = customer
        .until(
            "the decline notice",
            "const n = document.getElementById('notice'); return n && !n.hidden && n.textContent",
        )
        .await;
    assert!(
        notice.as_str().unwrap().contains("declined"),
        "notice: {notice}"
    );
    assert!(!notice.as_str().unwrap().contains('{'), "raw JSON shown");
    customer
        .fill("input[name=card_number]", "4242 4242 4242 4242")
        .await;
    customer.click("#pay").await;
    customer.until_at("/bookings/").await;
    assert_eq!(customer.text("#booking-title").await, "You're going!");
    let tickets = customer
        .js(
            "return Array.from(document.querySelectorAll('.ticket .seat-label')).map(e => e.textContent)",
            vec![],
        )
        .await;
    assert_eq!(tickets, json!(["A3", "A4"]));
    capture(&customer, &base, "booking").await;

    // Each ticket has a printable page with its QR code.
    customer.click(".ticket a").await;
    customer.until_at("/tickets/").await;
    customer
        .until(
            "the ticket's QR code",
            "return document.querySelectorAll('.qr svg').length === 1",
        )
        .await;
    assert!(customer.text(".seat-big").await.starts_with("A3"));
    capture(&customer, &base, "ticket").await;

    watcher
        .until(
            "A3 and A4 sold on the watcher's map",
            "return ['A3','A4'].every(l => document.querySelector(`.seat[data-label=\"${l}\"]`).classList.contains('sold'))",
        )
        .await;
    assert_eq!(
        watcher
            .js("return window.neverReloaded === true", vec![])
            .await,
        json!(true),
        "the watcher's page was reloaded"
    );
    assert!(seat_class(&watcher, "A5").await.contains("free"));
    capture(&watcher, &base, "show-live").await;

    // My bookings lists it; the event page lists the show by day.
    customer.open(&format!("{base}/bookings")).await;
    assert!(customer.text("main").await.contains("Test Gig"));
    capture(&customer, &base, "bookings").await;
    customer
        .open(&format!(
            "{base}/events/{}",
            show["event_id"].as_str().unwrap()
        ))
        .await;
    assert!(customer.text("main").await.contains("Shows"));
    capture(&customer, &base, "event").await;

    // The organizer signs in, schedules three evenings, and sees them on the dashboard.
    let boss = driver.browser("organizer", DESKTOP.0, DESKTOP.1).await;
    boss.open(&format!("{base}/signin?next=/organizer")).await;
    capture(&boss, &base, "signin").await;
    boss.fill("input[name=email]", "boxoffice-org@example.com")
        .await;
    boss.fill("input[name=password]", "correct horse battery")
        .await;
    boss.click("form button[type=submit]").await;
    boss.until_at("/organizer").await;
    let rows_before = dashboard_rows(&boss).await;
    assert_eq!(rows_before, 1);

    // The dashboard follows the show live: a hold shows up as held, and goes when it lapses.
    // A hold left to run out says so plainly.
    customer.open(&format!("{base}/shows/{show_id}")).await;
    wait_live(&customer).await;
    customer.click(".seat[data-label=\"B1\"]").await;
    customer.click("#hold-selected").await;
    customer.until_at("/holds/").await;
    let held_cell = format!("[data-show-row=\"{show_id}\"] [data-count=held]");
    boss.until(
        "the dashboard to show the hold",
        &format!(
            "const c = document.querySelector('{held_cell}'); return c && c.textContent === '1'"
        ),
    )
    .await;
    app.clock.advance_minutes(11);
    customer.client.refresh().await.expect("reload");
    customer.until_at("/holds/").await;
    let ended = customer.text("#expired").await;
    assert!(
        ended.contains("Your hold has ended"),
        "expired hold page: {ended}"
    );
    capture(&customer, &base, "hold-expired").await;

    boss.until(
        "the dashboard to show the lapsed hold released",
        &format!(
            "const c = document.querySelector('{held_cell}'); return c && c.textContent === '0'"
        ),
    )
    .await;
    boss.js(
        "const f = document.getElementById('schedule-form'); \
         f.elements.from.value = '2030-01-20'; f.elements.to.value = '2030-01-22';",
        vec![],
    )
    .await;
    boss.fill("#schedule-form input[name=times]", "20:00").await;
    boss.fill(
        "#schedule-form input[name=prices]",
        "standard=2500, standing=1200",
    )
    .await;
    boss.click("#schedule-form button[type=submit]").await;
    boss.until(
        "the three scheduled shows on the dashboard",
        "return document.querySelectorAll('[data-show-row]').length === 4",
    )
    .await;
    let dashboard = boss.text("#dashboard").await;
    assert!(dashboard.contains("20:00"), "{dashboard}");
    capture(&boss, &base, "organizer").await;

    // The layout preview draws a seat map from the compact description without saving it;
    // a venue without a name is refused in words.
    boss.click("#venue-form button[type=submit]").await;
    let refused = boss
        .until(
            "the unnamed venue refused",
            "const n = document.getElementById('notice'); return n && !n.hidden && n.textContent",
        )
        .await;
    assert!(refused.as_str().unwrap().contains("name"), "{refused}");
    boss.fill("#venue-form input[name=name]", "Second Hall")
        .await;
    boss.click("#preview-layout").await;
    boss.until(
        "the layout preview",
        "return document.querySelectorAll('#layout-preview .seat').length",
    )
    .await;
    let drawn = boss
        .js(
            "return document.querySelectorAll('#layout-preview .seat').length",
            vec![],
        )
        .await;
    assert_eq!(drawn, json!(8 * 14), "rows A-H of 14 seats");
    let venues = app
        .call(
            reqwest::Method::GET,
            "/venues",
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(
        venues.body.as_array().map(Vec::len),
        Some(1),
        "a preview saves nothing"
    );
    boss.click("#venue-form button[type=submit]").await;
    boss.until(
        "the new venue in the schedule form",
        "return Array.from(document.querySelectorAll('#schedule-form select[name=venue_id] option')).some(o => o.textContent.includes('Second Hall'))",
    )
    .await;
    let venues = app
        .call(
            reqwest::Method::GET,
            "/venues",
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(venues.body.as_array().map(Vec::len), Some(2));

    // A new event appears in the schedule form.
    boss.fill(
        "form[data-api=\"/api/v1/events\"] input[name=title]",
        "Jazz Night",
    )
    .await;
    boss.click("form[data-api=\"/api/v1/events\"] button[type=submit]")
        .await;
    boss.until(
        "the new event in the schedule form",
        "return Array.from(document.querySelectorAll('#schedule-form select[name=event_id] option')).some(o => o.textContent === 'Jazz Night')",
    )
    .await;

    // The show's sales page charts the booking.
    boss.open(&format!("{base}/organizer/shows/{show_id}"))
        .await;
    assert_eq!(
        boss.js(
            "return document.querySelectorAll('svg.chart .bar').length",
            vec![]
        )
        .await,
        json!(1)
    );
    assert!(boss.text("main").await.contains("€40.00"));
    capture(&boss, &base, "organizer-show").await;

    // Another organizer's show reads as missing.
    let stranger_show = other_organizers_show(&app).await;
    boss.open(&format!("{base}/organizer/shows/{stranger_show}"))
        .await;
    boss.until(
        "another organizer's show to read as missing",
        "const h = document.querySelector('h1'); return h && h.textContent.includes('Not found')",
    )
    .await;

    // Signing out ends the organizer's pages.
    boss.click("[data-sign-out]").await;
    boss.until(
        "the signed-out header",
        "return location.pathname === '/' && document.querySelector('header').textContent.includes('Sign in')",
    )
    .await;
    boss.open(&format!("{base}/organizer")).await;
    assert!(boss.text("h1").await.contains("Please sign in"));

    // The customer cancels the booking; its seats go back on sale.
    customer.open(&format!("{base}/bookings")).await;
    assert!(customer.text("#wallet").await.contains("€0.00"));
    customer
        .js(
            "document.querySelector('[data-refund-to]').value = 'wallet'",
            vec![],
        )
        .await;
    customer.click("[data-cancel-booking]").await;
    customer
        .client
        .accept_alert()
        .await
        .expect("confirm the cancellation");
    customer
        .until(
            "the booking shown as cancelled",
            "const s = document.querySelector('[data-booking] .state'); return s && s.textContent === 'Cancelled'",
        )
        .await;
    // Less than a day before the show the default policy gives half back, here to the wallet.
    let wallet = customer.text("#wallet").await;
    assert!(wallet.contains("€20.00"), "{wallet}");
    watcher
        .until(
            "A3 free again on the watcher's map",
            "return document.querySelector('.seat[data-label=\"A3\"]').classList.contains('free')",
        )
        .await;

    // The admin suspends the customer.
    app.admin().await;
    let admin = driver.browser("admin", DESKTOP.0, DESKTOP.1).await;
    admin.open(&format!("{base}/signin?next=/admin")).await;
    admin.fill("input[name=email]", "root@example.com").await;
    admin
        .fill("input[name=password]", "correct horse battery")
        .await;
    admin.click("form button[type=submit]").await;
    admin.until_at("/admin").await;
    let carla = admin
        .js(
            "return Array.from(document.querySelectorAll('[data-user]')).find(r => r.textContent.includes('carla@example.com')).dataset.user",
            vec![],
        )
        .await;
    let carla = carla.as_str().unwrap().to_owned();
    admin
        .click(&format!("[data-user=\"{carla}\"] [data-admin-action]"))
        .await;
    admin
        .until(
            "Carla suspended",
            &format!(
                "const r = document.querySelector('[data-user=\"{carla}\"]'); return r && r.textContent.includes('Suspended')"
            ),
        )
        .await;
    capture(&admin, &base, "admin").await;
    customer.open(&format!("{base}/bookings")).await;
    assert!(
        customer.text("h1").await.contains("sign in"),
        "a suspended customer's pages ask to sign in"
    );

    for browser in [watcher, customer, boss, admin] {
        browser.close().await;
    }
}

async fn dashboard_rows(browser: &Browser) -> usize {
    browser
        .js(
            "return document.querySelectorAll('[data-show-row]').length",
            vec![],
        )
        .await
        .as_u64()
        .unwrap_or(0) as usize
}

async fn other_organizers_show(app: &TestApp) -> String {
    let (_, show) = app.show_with("someone-else@example.com", 2, 10, 2).await;
    show["id"].as_str().map(str::to_owned).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_explain_problems_in_words() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let client = reqwest::Client::new();
    for (path, status, words) in [
        ("/shows/shw_nothing", 404, "Not found"),
        ("/no/such/page", 404, "This page does not exist"),
        ("/bookings", 401, "Please sign in"),
        ("/organizer", 401, "Please sign in"),
    ] {
        let response = client
            .get(format!("{}{}", app.base, path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(words), "{path}: {body}");
        assert!(!body.contains("\"type\""), "{path} shows a raw problem");
    }
    // The API keeps answering problem documents.
    let api = client
        .get(format!("{}{}", app.base, "/api/v1/no/such"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    // A layout preview with mistakes gets the API's problem document and saves nothing.
    let preview = client
        .post(format!("{}{}", app.base, "/pages/layout-preview"))
        .json(&json!({"name": "", "sections": [{"name": "S", "generate": {"rows": "A-C", "seats_per_row": 0, "category": "x"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status().as_u16(), 422);
    let problem: Value = preview.json().await.unwrap();
    assert_eq!(problem["type"], "validation");
    assert!(problem["errors"].as_array().is_some_and(|e| e.len() >= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_room_page_moves_on_by_itself() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let base = app.base.clone();
    let (organizer, show) = app.show_with("queue-org@example.com", 8, 50, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let room = app
        .call(
            reqwest::Method::PUT,
            &format!("/shows/{show_id}/waiting-room"),
            Some(&organizer.token),
            Some(
                json!({"enabled": true, "admission_rate_per_minute": 1, "session_minutes": 10,
                        "opens_at": app.clock.now_plus_minutes(0)}),
            ),
        )
        .await;
    assert_eq!(room.status.as_u16(), 200, "{}", room.body);
    // Three people are in the line first.
    for n in 0..3 {
        let early = app
            .register(&format!("early{n}@example.com"), "customer")
            .await;
        let joined = app
            .call(
                reqwest::Method::POST,
                &format!("/queues/{show_id}/join"),
                Some(&early.token),
                None,
            )
            .await;
        assert!(joined.status.is_success(), "{}", joined.body);
    }
    app.register("dana@example.com", "customer").await;

    let driver = Chromedriver::start().await;
    let dana = driver.browser("dana", DESKTOP.0, DESKTOP.1).await;
    dana.open(&format!("{base}/signin?next=/shows/{show_id}"))
        .await;
    dana.fill("input[name=email]", "dana@example.com").await;
    dana.fill("input[name=password]", "correct horse battery")
        .await;
    dana.click("form button[type=submit]").await;
    dana.until_at(&format!("/shows/{show_id}")).await;
    wait_live(&dana).await;

    // Holding without having queued sends her to the line, which shows where she stands.
    dana.click(".seat[data-label=\"A1\"]").await;
    dana.click("#hold-selected").await;
    dana.until_at(&format!("/shows/{show_id}/queue")).await;
    let ahead = dana
        .until(
            "Dana's place in the line",
            "const a = document.getElementById('queue-ahead'); return a && /^[0-9]+$/.test(a.textContent) && a.textContent",
        )
        .await;
    let ahead: u64 = ahead.as_str().unwrap().parse().unwrap();
    assert!(ahead >= 1, "three people joined before Dana; {ahead} ahead");
    assert_eq!(dana.text("#queue-position").await, (ahead + 1).to_string());
    assert!(dana.text("#queue-wait").await.contains("min"));
    capture(&dana, &base, "queue").await;

    // The gate lets one in a minute; her page moves on to the seats by itself.
    let mut moved = false;
    for _ in 0..8 {
        app.clock.advance_minutes(1);
        let at_show = dana.js("return location.pathname", vec![]).await;
        if at_show == json!(format!("/shows/{show_id}")) {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    assert!(moved, "the waiting-room page never moved on");
    wait_live(&dana).await;
    dana.click(".seat[data-label=\"A1\"]").await;
    dana.click("#hold-selected").await;
    dana.until_at("/holds/").await;
    assert!(dana.text("main").await.contains("A1"));

    // Her bank asks for 3-D Secure: she confirms, and the booking follows by itself.
    dana.fill("input[name=card_number]", "4000 0000 0000 3220")
        .await;
    dana.click("#pay").await;
    dana.until(
        "the bank's check",
        "const c = document.getElementById('three-ds'); return c && !c.hidden",
    )
    .await;
    capture(&dana, &base, "hold-3ds").await;
    dana.click("#confirm-payment").await;
    dana.until_at("/bookings/").await;
    assert_eq!(dana.text("#booking-title").await, "You're going!");
    dana.close().await;
}

#[tokio::test]
async fn a_sold_out_show_keeps_a_waitlist_and_group_bookings_scratch_a_card() {
    let app = TestApp::spawn_with(Engine::Sqlite, |config| {
        config.fixed_scratch_draw = Some(0.45);
    })
    .await;
    let base = app.base.clone();
    let (_, show) = app.show_with("waitlist-org@example.com", 2, 1, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    // Everything is sold: two seats and the one standing place.
    let buyer = app.register("buyer@example.com", "customer").await;
    let seats = app.book_seats(&buyer, &show, &["A1", "A2"]).await;
    let other = app.register("other@example.com", "customer").await;
    app.book_seats(&other, &show, &["B1", "B2"]).await;
    let floor = app.seat_map(&show_id).await["areas"][0]["id"].clone();
    let held = app
        .call(
            reqwest::Method::POST,
            "/holds",
            Some(&other.token),
            Some(json!({"show_id": show_id, "areas": [{"area_id": floor, "quantity": 1}]})),
        )
        .await;
    let paid = app
        .call(reqwest::Method::POST, "/bookings", Some(&other.token),
              Some(json!({"hold_id": held.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}})))
        .await;
    assert_eq!(paid.status.as_u16(), 201, "{}", paid.body);
    app.register("erin@example.com", "customer").await;

    let driver = Chromedriver::start().await;
    let erin = driver.browser("erin", DESKTOP.0, DESKTOP.1).await;
    erin.open(&format!("{base}/signin?next=/shows/{show_id}"))
        .await;
    erin.fill("input[name=email]", "erin@example.com").await;
    erin.fill("input[name=password]", "correct horse battery")
        .await;
    erin.click("form button[type=submit]").await;
    erin.until_at(&format!("/shows/{show_id}")).await;
    wait_live(&erin).await;
    assert!(erin.text("#waitlist").await.contains("Sold out"));
    erin.fill("#waitlist-form input[name=quantity]", "2").await;
    erin.click("#waitlist-form button[type=submit]").await;
    erin.until("her place on the list", "const w = document.getElementById('waitlist'); return w && w.textContent.includes('number 1')")
        .await;
    capture(&erin, &base, "waitlist").await;
    wait_live(&erin).await;

    // Two seats come back: her page hears of the offer and shows where to pay.
    app.cancel_booking(&buyer, &seats, "wallet").await;
    erin.until("the offer", "const w = document.getElementById('waitlist'); return w && w.textContent.includes('held for you')")
        .await;
    erin.click("#waitlist a").await;
    erin.until_at("/holds/").await;
    assert!(erin.text("main").await.contains("A1"));
    erin.fill("input[name=card_number]", "4242 4242 4242 4242")
        .await;
    erin.click("#pay").await;
    erin.until_at("/bookings/").await;

    // A group booking of hers earns a scratch card, scratched once on her bookings page.
    let (_, group) = app.show_with("group-org@example.com", 4, 1, 4).await;
    let erin_api = app.login("erin@example.com").await;
    app.book_seats(&erin_api, &group, &["A1", "A2", "A3"]).await;
    erin.open(&format!("{base}/bookings")).await;
    assert!(
        erin.text("#points").await.contains("500"),
        "{}",
        erin.text("#points").await
    );
    erin.click("[data-reveal-card]").await;
    erin.until("the prize", "const c = document.querySelector('.scratch.revealed'); return c && c.textContent.includes('free drink')")
        .await;
    capture(&erin, &base, "scratch-card").await;
    only_from_server(&erin, &base).await;
    erin.close().await;
}
