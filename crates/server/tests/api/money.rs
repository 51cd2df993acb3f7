//! The wallet and the double-entry ledger over HTTP: refunds by the show's policy to the card or
//! the wallet, paying from the wallet alone or split with a card, a wallet that cannot be
//! overdrawn even by concurrent spends, a cancelled show refunded in full, and books that
//! always balance.

use boxoffice_testkit::{Engine, Reply, Session, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn hold(app: &TestApp, customer: &Session, show: &Value, labels: &[&str]) -> String {
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    let reply = app
        .call(
            Method::POST,
            "/holds",
            Some(&customer.token),
            Some(json!({ "show_id": show_id, "seat_ids": seat_ids(&map, labels) })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn pay(app: &TestApp, customer: &Session, hold: &str, payment: Value) -> Reply {
    app.call(
        Method::POST,
        "/bookings",
        Some(&customer.token),
        Some(json!({ "hold_id": hold, "payment": payment })),
    )
    .await
}

fn card() -> Value {
    json!({ "method": "card", "card_number": "4242424242424242" })
}

async fn balance(app: &TestApp, customer: &Session) -> i64 {
    let wallet = app
        .call(Method::GET, "/me/wallet", Some(&customer.token), None)
        .await;
    assert_eq!(wallet.status, StatusCode::OK, "{}", wallet.body);
    wallet.body["balance_minor"].as_i64().unwrap()
}

async fn cancel(app: &TestApp, customer: &Session, booking: &Value, body: Value) -> Reply {
    app.call(
        Method::POST,
        &format!("/bookings/{}/cancel", booking["id"].as_str().unwrap()),
        Some(&customer.token),
        Some(body),
    )
    .await
}

async fn books_balance(app: &TestApp, admin: &Session) -> Value {
    let check = app
        .call(Method::GET, "/admin/ledger/check", Some(&admin.token), None)
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert_eq!(check.body["balanced"], true, "{}", check.body);
    assert_eq!(check.body["unbalanced_transactions"], 0);
    assert_eq!(check.body["negative_wallets"], 0);
    check.body
}

async fn refunds_wallets_and_the_books(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.admin().await;
    let (organizer, show) = app.show_with("money-org@example.com", 8, 10, 6).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice-money@example.com", "customer").await;

    // The organizer's policy: full refunds until 12 hours before, 25 % after. Bad values are
    // refused and change nothing.
    let policy = format!("/shows/{show_id}/refund-policy");
    let bad = app
        .call(
            Method::PUT,
            &policy,
            Some(&organizer.token),
            Some(json!({"full_until_hours_before": 12, "partial_percent": 150})),
        )
        .await;
    bad.problem(422, "validation");
    assert_eq!(
        app.call(Method::GET, &policy, None, None).await.body,
        json!({"full_until_hours_before": 24, "partial_percent": 50})
    );
    let set = app
        .call(
            Method::PUT,
            &policy,
            Some(&organizer.token),
            Some(json!({"full_until_hours_before": 12, "partial_percent": 25})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    // Two seats at €20 by card, cancelled a day ahead into the wallet: all €40 back.
    let first = pay(
        &app,
        &alice,
        &hold(&app, &alice, &show, &["A1", "A2"]).await,
        card(),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["wallet_minor"], 0);
    let refused = cancel(&app, &alice, &first.body, json!({"refund_to": "bank"})).await;
    refused.problem(422, "validation");
    let cancelled = cancel(&app, &alice, &first.body, json!({"refund_to": "wallet"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["refunded_minor"], 4_000);
    assert_eq!(cancelled.body["refund"], "refunded");
    assert_eq!(balance(&app, &alice).await, 4_000);

    // Paid from the wallet alone, then split with a card.
    let from_wallet = pay(
        &app,
        &alice,
        &hold(&app, &alice, &show, &["A3"]).await,
        json!({"method": "wallet"}),
    )
    .await;
    assert_eq!(
        from_wallet.status,
        StatusCode::CREATED,
        "{}",
        from_wallet.body
    );
    assert_eq!(from_wallet.body["wallet_minor"], 2_000);
    assert_eq!(balance(&app, &alice).await, 2_000);
    let split = pay(
        &app,
        &alice,
        &hold(&app, &alice, &show, &["A4", "A5"]).await,
        json!({"method": "card", "card_number": "4242424242424242", "wallet_minor": 1_500}),
    )
    .await;
    assert_eq!(split.status, StatusCode::CREATED, "{}", split.body);
    assert_eq!(split.body["wallet_minor"], 1_500);
    assert_eq!(balance(&app, &alice).await, 500);

    // More than the wallet holds is refused, and the hold stays.
    let short_hold = hold(&app, &alice, &show, &["B1"]).await;
    let short = pay(&app, &alice, &short_hold, json!({"method": "wallet"})).await;
    assert!(
        short.problem(402, "payment_declined")["detail"]
            .as_str()
            .unwrap()
            .contains("wallet")
    );
    let after = pay(&app, &alice, &short_hold, card()).await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);

    // Within 12 hours of the start only a quarter comes back, to the card; the wallet's share
    // of a split booking goes back to the wallet first.
    app.clock.advance_minutes(13 * 60);
    let alice = app.login("alice-money@example.com").await;
    let late = cancel(&app, &alice, &split.body, json!({})).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.body);
    assert_eq!(late.body["refunded_minor"], 1_000, "25 % of €40");
    assert_eq!(balance(&app, &alice).await, 500 + 1_000);

    // The organizer cancels the show: what is still booked comes back in full.
    let organizer = app.login("money-org@example.com").await;
    let off = app
        .call(
            Method::DELETE,
            &format!("/shows/{show_id}"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let wallet_paid = app
        .call(
            Method::GET,
            &format!("/bookings/{}", from_wallet.body["id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(wallet_paid.body["refunded_minor"], 2_000);
    assert_eq!(balance(&app, &alice).await, 1_500 + 2_000);

    // The card's share went back through the payment provider, once (a `payment.refunded` event
    // for the card-paid booking; the wallet-paid one owed the card nothing).
    let organizer_id =
        boxoffice_core::ids::OrganizerId::parse(show["organizer_id"].as_str().unwrap()).unwrap();
    let card_refunds = || async {
        app.store
            .messages_of(&organizer_id, 200)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind.as_str() == "payment.refunded")
            .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()["data"].clone())
            .collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if !card_refunds().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refunds = card_refunds().await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["booking_id"], after.body["id"]);
    assert_eq!(refunds[0]["refunded_minor"], 2_000);

    // Every movement is in the ledger, and the books balance.
    let admin = app.login("root@example.com").await;
    let check = books_balance(&app, &admin).await;
    assert!(check["transactions"].as_i64().unwrap() >= 8, "{check}");
    let ledger = app
        .call(
            Method::GET,
            &format!("/admin/ledger?account=wallet:{}:EUR", alice.user_id),
            Some(&admin.token),
            None,
        )
        .await;
    let moved: i64 = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["entries"].as_array().unwrap().clone())
        .filter(|e| e["account"] == format!("wallet:{}:EUR", alice.user_id))
        .map(|e| e["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(
        moved,
        balance(&app, &alice).await,
        "the balance is the sum of its entries"
    );
    app.call(Method::GET, "/admin/ledger/check", Some(&alice.token), None)
        .await
        .problem(403, "forbidden");
}

/// Law 1 for money: two bookings paid from one wallet at the same moment, together more than it
/// holds — one is booked, the other refused, and the wallet never goes below zero.
async fn concurrent_spends_never_overdraw_a_wallet(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.admin().await;
    let (organizer, first_show) = app.show_with("race-org@example.com", 4, 10, 4).await;
    let second_show = {
        let created = app
            .call(
                Method::POST,
                "/shows",
                Some(&organizer.token),
                Some(json!({
                    "event_id": first_show["event_id"], "venue_id": first_show["venue_id"],
                    "starts_at": app.clock.now_plus_minutes(3 * 24 * 60), "currency": "EUR",
                    "prices": {"standard": 2000, "standing": 1000}
                })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body
    };
    for show in [&first_show, &second_show] {
        let full = app
            .call(
                Method::PUT,
                &format!("/shows/{}/refund-policy", show["id"].as_str().unwrap()),
                Some(&organizer.token),
                Some(json!({"full_until_hours_before": 0, "partial_percent": 0})),
            )
            .await;
        assert_eq!(full.status, StatusCode::OK, "{}", full.body);
    }
    let bob = app.register("bob-race@example.com", "customer").await;
    // €20 into the wallet.
    let seed = pay(
        &app,
        &bob,
        &hold(&app, &bob, &first_show, &["B4"]).await,
        card(),
    )
    .await;
    let back = cancel(&app, &bob, &seed.body, json!({"refund_to": "wallet"})).await;
    assert_eq!(back.body["refunded_minor"], 2_000, "{}", back.body);
    for round in 0..5 {
        let holds = [
            hold(
                &app,
                &bob,
                &first_show,
                &[["A1", "A2", "A3", "A4", "B1"][round]],
            )
            .await,
            hold(
                &app,
                &bob,
                &second_show,
                &[["A1", "A2", "A3", "A4", "B1"][round]],
            )
            .await,
        ];
        let (one, two) = tokio::join!(
            pay(&app, &bob, &holds[0], json!({"method": "wallet"})),
            pay(&app, &bob, &holds[1], json!({"method": "wallet"})),
        );
        let statuses = [one.status.as_u16(), two.status.as_u16()];
        assert!(
            statuses.contains(&201) && statuses.contains(&402),
            "round {round}: {statuses:?} {} {}",
            one.body,
            two.body
        );
        assert_eq!(balance(&app, &bob).await, 0);
        // Put the €20 back for the next round.
        let won = if one.status == StatusCode::CREATED {
            one
        } else {
            two
        };
        let back = cancel(&app, &bob, &won.body, json!({"refund_to": "wallet"})).await;
        assert_eq!(back.status, StatusCode::OK, "{}", back.body);
        for hold_id in holds {
            app.call(
                Method::DELETE,
                &format!("/holds/{hold_id}"),
                Some(&bob.token),
                None,
            )
            .await;
        }
    }
    books_balance(&app, &admin).await;
}

crate::on_both_engines!(
    refunds_wallets_and_the_books,
    concurrent_spends_never_overdraw_a_wallet
);
