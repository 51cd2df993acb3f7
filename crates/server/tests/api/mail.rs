//! Customer e-mail behind the outbox: a booking's confirmation with its tickets, its
//! cancellation, and a released hold, written as `.eml` files by default and delivered to a
//! real SMTP server (on loopback) when one is configured.

use boxoffice_testkit::smtp::SmtpSink;
use boxoffice_testkit::{Engine, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The `.eml` files written so far, by name.
fn mail_files(app: &TestApp) -> Vec<String> {
    let folder = &app.state.config.mail.folder;
    let mut files: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never saw {what}");
}

async fn customers_get_mail_about_their_bookings(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("mail-org@example.com", 4, 10, 4).await;
    let alice = app.register("alice-mail@example.com", "customer").await;
    let booking = app.book_seats(&alice, &show, &["A1", "A2"]).await;
    until("the confirmation", || mail_files(&app).len() == 1).await;
    // Quoted-printable bodies wrap long lines with a trailing `=`.
    let confirmation = &mail_files(&app)[0].replace("=\r\n", "").replace("=\n", "");
    assert!(
        confirmation.contains("<alice-mail@example.com>"),
        "{confirmation}"
    );
    assert!(
        confirmation.contains("Subject: Your tickets: Test Gig"),
        "{confirmation}"
    );
    assert!(confirmation.contains("Content-Type: text/plain"));
    assert!(confirmation.contains("Content-Type: text/html"));
    for ticket in booking["tickets"].as_array().unwrap() {
        assert!(
            confirmation.contains(ticket["code"].as_str().unwrap()),
            "ticket code missing: {confirmation}"
        );
    }
    // Cancelling writes a second mail; a hold left to run out a third.
    let cancel = format!("/bookings/{}/cancel", booking["id"].as_str().unwrap());
    let cancelled = app
        .call(Method::POST, &cancel, Some(&alice.token), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    // The cancellation, and the refund of the card's share (half of it, a day before the show).
    until("the cancellation and the refund", || {
        mail_files(&app).len() == 3
    })
    .await;
    assert!(
        mail_files(&app)
            .iter()
            .any(|m| m.contains("Subject: Refunded: Test Gig"))
    );
    assert!(
        mail_files(&app)
            .iter()
            .any(|m| m.contains("Subject: Booking cancelled: Test Gig"))
    );
    let map = app.seat_map(show["id"].as_str().unwrap()).await;
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({ "show_id": show["id"], "seat_ids": seat_ids(&map, &["B1"]) })),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    app.clock.advance_minutes(11);
    until("the release notice", || mail_files(&app).len() == 4).await;
    assert!(
        mail_files(&app)
            .iter()
            .any(|m| m.contains("Subject: Your seats were released"))
    );
    // Each event is mailed once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mail_files(&app).len(), 4);
}

crate::on_both_engines!(customers_get_mail_about_their_bookings);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smtp_configured_mail_goes_to_the_server() {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = TestApp::spawn_with(Engine::Sqlite, |config| {
        config.mail.smtp_url = Some(url.clone());
    })
    .await;
    let (_, show) = app.show_with("smtp-org@example.com", 4, 10, 4).await;
    let bob = app.register("bob-smtp@example.com", "customer").await;
    app.book_seats(&bob, &show, &["A3"]).await;
    until("the message at the SMTP server", || {
        !sink.delivered().is_empty()
    })
    .await;
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].recipients, ["bob-smtp@example.com"]);
    assert!(
        delivered[0]
            .data
            .contains("Subject: Your tickets: Test Gig")
    );
    assert!(
        mail_files(&app).is_empty(),
        "no files when SMTP is configured"
    );
}
