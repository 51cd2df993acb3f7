//! The tenant-wall matrix, generated from the route table (the OpenAPI document): every actor
//! × every documented operation × objects of each owner. Only the allowed combinations may
//! succeed; every other one gets 401, 403 or 404 and changes nothing.

use boxoffice_testkit::{Engine, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// Owns the hold and the booking.
    CustomerA,
    CustomerB,
    /// Organizer X owns the venue, event and show.
    OwnerX,
    StaffX,
    OwnerY,
    Admin,
}

struct World {
    tokens: Vec<(Who, Option<String>)>,
    venue: String,
    event: String,
    show: String,
    hold: String,
    booking: String,
    customer_b: String,
    customer_b_email: String,
    staff_x: String,
    organizer_x: String,
    /// The owner's pending invitation to `customer_b`.
    invitation: String,
    /// The owner's webhook endpoint, and its delivery of the booking's event.
    webhook: String,
    delivery: String,
    /// The payment of `booking`.
    payment: String,
    /// A ticket of `booking`.
    ticket: String,
}

/// An account with its session, for casting in a world.
struct Person {
    session: Session,
    email: String,
}

async fn person(app: &TestApp, email: &str, role: &str) -> Person {
    Person {
        session: app.register(email, role).await,
        email: email.to_owned(),
    }
}

/// `owner` invites `staff`, who accepts.
async fn hire(app: &TestApp, owner: &Person, staff: &Person) -> Person {
    let invitation = create(
        app,
        &owner.session.token,
        "/organizer/members",
        json!({"email": staff.email, "role": "staff"}),
    )
    .await;
    let accept = format!("/invitations/{}/accept", invitation["id"].as_str().unwrap());
    let accepted = app
        .call(Method::POST, &accept, Some(&staff.session.token), None)
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    Person {
        session: app.login(&staff.email).await,
        email: staff.email.clone(),
    }
}

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let reply = app.call(Method::POST, path, Some(token), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {}", reply.body);
    reply.body
}

/// The roles are relative to the objects: `owner` and `staff` run the organizer that owns the
/// venue, event and show; `buyer` owns the hold and the booking; the others own nothing here.
async fn world(
    app: &TestApp,
    owner: &Person,
    staff: &Person,
    other_owner: &Person,
    buyer: &Person,
    other: &Person,
    admin: &Session,
) -> World {
    let token = owner.session.token.as_str();
    let venue = create(
        app,
        token,
        "/venues",
        json!({"name": "Hall", "areas": [{"name": "Floor", "category": "standing", "capacity": 10}],
        "sections": [{"name": "S", "rows": [{"label": "A", "count": 4, "category": "standard"}]}]}),
    )
    .await;
    let event = create(
        app,
        token,
        "/events",
        json!({"title": "Gig", "kind": "concert"}),
    )
    .await;
    let show = create(app, token, "/shows", json!({"event_id": event["id"], "venue_id": venue["id"],
        "starts_at": app.clock.now_plus_minutes(24 * 60), "currency": "EUR", "prices": {"standard": 100, "standing": 50}})).await;
    // Nothing listens on the discard port: the delivery stays pending, retried.
    let webhook = create(
        app,
        token,
        "/webhooks",
        json!({"url": "http://127.0.0.1:9/hooks"}),
    )
    .await;
    let webhook = webhook["id"].as_str().unwrap().to_owned();
    let hold_body = json!({"show_id": show["id"], "areas": [{"area_id": venue["areas"][0]["id"], "quantity": 1}]});
    let paid = create(app, &buyer.session.token, "/holds", hold_body.clone()).await;
    let pay = json!({"hold_id": paid["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    let booking = create(app, &buyer.session.token, "/bookings", pay).await;
    let paid_hold = boxoffice_core::ids::HoldId::parse(paid["id"].as_str().unwrap()).unwrap();
    let payment = app.store.payments_of_hold(&paid_hold).await.unwrap()[0]
        .id
        .to_string();
    let hold = create(app, &buyer.session.token, "/holds", hold_body).await;
    // A waiting room that exists but is off: its settings and figures can be read, nobody queues.
    let room = app
        .call(
            Method::PUT,
            &format!("/shows/{}/waiting-room", show["id"].as_str().unwrap()),
            Some(token),
            Some(json!({"enabled": false, "admission_rate_per_minute": 60})),
        )
        .await;
    assert_eq!(room.status, StatusCode::OK, "{}", room.body);
    let organizer = app.call(Method::GET, "/organizer", Some(token), None).await;
    let invitation = create(
        app,
        token,
        "/organizer/members",
        json!({"email": other.email, "role": "staff"}),
    )
    .await;
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let listed = app
            .call(
                Method::GET,
                &format!("/webhooks/{webhook}/deliveries"),
                Some(token),
                None,
            )
            .await;
        delivery = listed.body[0]["id"].clone();
        if delivery.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let delivery = delivery
        .as_str()
        .expect("the booking's delivery")
        .to_owned();
    let token = |p: &Person| Some(p.session.token.clone());
    World {
        webhook,
        delivery,
        payment,
        ticket: booking["tickets"][0]["id"].as_str().unwrap().to_owned(),
        tokens: vec![
            (Who::Anonymous, None),
            (Who::CustomerA, token(buyer)),
            (Who::CustomerB, token(other)),
            (Who::OwnerX, token(owner)),
            (Who::StaffX, token(staff)),
            (Who::OwnerY, token(other_owner)),
            (Who::Admin, Some(admin.token.clone())),
        ],
        venue: venue["id"].as_str().unwrap().to_owned(),
        event: event["id"].as_str().unwrap().to_owned(),
        show: show["id"].as_str().unwrap().to_owned(),
        hold: hold["id"].as_str().unwrap().to_owned(),
        booking: booking["id"].as_str().unwrap().to_owned(),
        customer_b: other.session.user_id.clone(),
        customer_b_email: other.email.clone(),
        staff_x: staff.session.user_id.clone(),
        organizer_x: organizer.body["id"].as_str().unwrap().to_owned(),
        invitation: invitation["id"].as_str().unwrap().to_owned(),
    }
}

impl World {
    /// The documented path with its parameter filled with the object of its kind.
    fn concrete(&self, path: &str) -> String {
        let id = if path.starts_with("/venues/") {
            &self.venue
        } else if path.starts_with("/events/") {
            &self.event
        } else if path.starts_with("/shows/") || path.starts_with("/queues/") {
            &self.show
        } else if path.starts_with("/holds/") {
            &self.hold
        } else if path.starts_with("/bookings/") {
            &self.booking
        } else if path.starts_with("/admin/users/") {
            &self.customer_b
        } else if path.starts_with("/invitations/") {
            &self.invitation
        } else if path.starts_with("/admin/organizers/") {
            &self.organizer_x
        } else if path.starts_with("/webhooks/") {
            &self.webhook
        } else if path.starts_with("/payments/") {
            &self.payment
        } else if path.starts_with("/tickets/") {
            &self.ticket
        } else if path.starts_with("/organizers/") {
            &self.organizer_x
        } else {
            &self.staff_x
        };
        path.replace("{id}", id)
            .replace("{user_id}", id)
            .replace("{show_id}", id)
            .replace("{delivery_id}", &self.delivery)
    }

    /// A well-formed body, so a refusal is the wall's doing and not the body's.
    fn body(&self, method: &Method, path: &str) -> Option<Value> {
        let area_venue =
            json!({"name": "V", "areas": [{"name": "F", "category": "standing", "capacity": 5}]});
        Some(match (method.as_str(), path) {
            ("POST", "/admin/users") => {
                json!({"email": "new@example.com", "password": "long enough pass", "name": "New"})
            }
            ("POST", "/admin/organizers") => {
                json!({"name": "Z", "owner_email": self.customer_b_email})
            }
            ("POST", "/organizer/members") => {
                json!({"email": self.customer_b_email, "role": "staff"})
            }
            ("POST", "/venues") => area_venue,
            ("PATCH", "/venues/{id}") => json!({"name": "Taken over"}),
            ("PUT", "/venues/{id}/layout") => {
                json!({"areas": [{"name": "F", "category": "standing", "capacity": 5}]})
            }
            ("POST", "/events") => json!({"title": "E", "kind": "other"}),
            ("POST", "/webhooks") => json!({"url": "http://127.0.0.1:9/taken-over"}),
            ("POST", "/checkin") => json!({"code": "BO1.x.y", "gate": "north"}),
            ("POST", "/checkin/batch") => json!({"scans": []}),
            ("POST", "/shows/{id}/waitlist") => json!({"quantity": 1}),
            ("POST", "/promo-codes") => {
                json!({"code": "WALL", "discount": {"percent": 5}, "max_uses": 1})
            }
            ("PATCH", "/events/{id}") => json!({"title": "Taken over"}),
            ("POST", "/events/{id}/schedule") => {
                json!({"venue_id": self.venue, "from": "2030-03-01", "to": "2030-03-02",
                "times": ["10:00"], "currency": "EUR", "prices": {"standard": 1, "standing": 1}})
            }
            ("POST", "/shows") => {
                json!({"event_id": self.event, "venue_id": self.venue, "starts_at": "2030-04-01T10:00:00Z",
                "currency": "EUR", "prices": {"standard": 1, "standing": 1}})
            }
            ("PATCH", "/shows/{id}") => json!({"hold_minutes": 5}),
            ("PUT", "/shows/{id}/areas/{area_id}/capacity") => json!({"capacity": 10}),
            ("PUT", "/shows/{id}/refund-policy") => {
                json!({"full_until_hours_before": 1, "partial_percent": 0})
            }
            ("PUT", "/shows/{id}/waiting-room") => {
                json!({"enabled": true, "admission_rate_per_minute": 10})
            }
            ("POST", "/holds") => {
                json!({"show_id": self.show, "best_available": {"category": "standard", "quantity": 1}})
            }
            ("POST", "/bookings") => {
                json!({"hold_id": self.hold, "payment": {"method": "card", "card_number": "4242424242424242"}})
            }
            _ => return None,
        })
    }
}

/// Who may do what to the objects of `World`.
fn allowed(who: Who, method: &Method, path: &str) -> bool {
    use Who::*;
    let signed_in = who != Anonymous;
    let member = matches!(who, OwnerX | StaffX | OwnerY);
    let of_x = matches!(who, OwnerX | StaffX);
    let get = method == Method::GET;
    match path {
        "/events" | "/events/{id}" | "/shows" | "/shows/{id}" | "/shows/{id}/seats" if get => true,
        "/shows/{id}/waiting-room" if get => true,
        "/shows/{id}/refund-policy" if get => true,
        "/shows/{id}/refund-policy" => of_x || who == Admin,
        "/me/wallet" | "/me/waitlist" | "/me/loyalty" | "/me/scratch-cards" => signed_in,
        "/scratch-cards/{id}/reveal" => who == CustomerA,
        "/shows/{id}/waitlist" if get => of_x,
        "/shows/{id}/waitlist" | "/waitlist/{id}" => signed_in,
        "/organizers/{id}/ticket-keys" => get,
        "/tickets/{id}" => matches!(who, CustomerA | OwnerX | StaffX | Admin),
        "/shows/{id}/revocations" | "/shows/{id}/checkins" => of_x || who == Admin,
        "/checkin" | "/checkin/batch" => member,
        "/promo-codes" => member,
        "/shows/{id}/waiting-room" | "/shows/{id}/waiting-room/stats" => of_x || who == Admin,
        // The room is off: nobody has a place in its line or may take one.
        "/queues/{show_id}/join" | "/queues/{show_id}/position" => false,
        "/me" | "/auth/logout" | "/bookings" | "/holds"
            if method == Method::GET || path != "/bookings" =>
        {
            signed_in
        }
        p if p.starts_with("/admin/") => who == Admin,
        "/organizer" | "/organizer/figures" | "/venues" | "/events" | "/webhooks" => member,
        "/webhooks/{id}"
        | "/webhooks/{id}/deliveries"
        | "/webhooks/{id}/deliveries/{delivery_id}/replay" => of_x,
        "/organizer/members" => matches!(who, OwnerX | OwnerY),
        "/organizer/members/{user_id}" => who == OwnerX,
        "/organizer/invitations" => matches!(who, OwnerX | OwnerY),
        "/me/invitations" => signed_in,
        "/invitations/{id}/accept" | "/invitations/{id}/decline" => who == CustomerB,
        "/shows" | "/events/{id}/schedule" => of_x,
        "/venues/{id}"
        | "/venues/{id}/layout"
        | "/events/{id}"
        | "/shows/{id}"
        | "/shows/{id}/sales"
        | "/shows/{id}/areas/{area_id}/capacity" => of_x || who == Admin,
        "/holds/{id}" | "/bookings/{id}" if get => matches!(who, CustomerA | Admin),
        "/payments/{id}" | "/payments/{id}/confirm" => who == CustomerA,
        "/holds/{id}" | "/bookings" | "/bookings/{id}/cancel" => who == CustomerA,
        other => panic!("the matrix has no rule for {method} {other}: add one"),
    }
}

async fn snapshot(app: &TestApp, world: &World) -> Vec<Value> {
    let admin = world
        .tokens
        .iter()
        .find(|(w, _)| *w == Who::Admin)
        .unwrap()
        .1
        .clone();
    let owner = world
        .tokens
        .iter()
        .find(|(w, _)| *w == Who::OwnerX)
        .unwrap()
        .1
        .clone();
    let mut seen = Vec::new();
    for path in [
        format!("/venues/{}", world.venue),
        format!("/events/{}", world.event),
        format!("/shows/{}", world.show),
        format!("/shows/{}/seats", world.show),
        format!("/shows/{}/refund-policy", world.show),
        format!("/holds/{}", world.hold),
        format!("/bookings/{}", world.booking),
        "/admin/users".to_owned(),
        "/admin/organizers".to_owned(),
    ] {
        seen.push(
            app.call(Method::GET, &path, admin.as_deref(), None)
                .await
                .body,
        );
    }
    seen.push(
        app.call(Method::GET, "/organizer", owner.as_deref(), None)
            .await
            .body,
    );
    seen.push(
        app.call(Method::GET, "/webhooks", owner.as_deref(), None)
            .await
            .body,
    );
    let sent = app
        .call(
            Method::GET,
            "/organizer/invitations",
            owner.as_deref(),
            None,
        )
        .await;
    assert_eq!(
        sent.body.as_array().map(Vec::len),
        Some(1),
        "the pending invitation is part of the snapshot"
    );
    seen.push(sent.body);
    seen
}

async fn only_allowed_combinations_succeed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let (owner_x, owner_y) = (
        person(&app, "owner-x@example.com", "organizer").await,
        person(&app, "owner-y@example.com", "organizer").await,
    );
    let staff_x = hire(
        &app,
        &owner_x,
        &person(&app, "staff-x@example.com", "customer").await,
    )
    .await;
    let staff_y = hire(
        &app,
        &owner_y,
        &person(&app, "staff-y@example.com", "customer").await,
    )
    .await;
    let (a, b) = (
        person(&app, "a@example.com", "customer").await,
        person(&app, "b@example.com", "customer").await,
    );
    let admin = app.admin().await;
    // Objects of each owner: X's catalog bought by A, then Y's catalog bought by B.
    let x_world = world(&app, &owner_x, &staff_x, &owner_y, &a, &b, &admin).await;
    let y_world = world(&app, &owner_y, &staff_y, &owner_x, &b, &a, &admin).await;
    for world in [x_world, y_world] {
        check_world(&app, &doc, &world).await;
    }
}

async fn check_world(app: &TestApp, doc: &Value, world: &World) {
    // Public, and live streams never end, so a plain call cannot judge them: live.rs covers them.
    let public = [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/ws",
        "/shows/{id}/events",
        // Signed by the payment provider, not signed in: payments.rs tries to forge it.
        "/payments/webhook",
    ];
    let before = snapshot(app, world).await;
    let mut refused = 0;
    for (method, path, _) in crate::openapi::operations(doc)
        .into_iter()
        .filter(|(_, p, _)| !public.contains(&p.as_str()))
    {
        for (who, token) in &world.tokens {
            let may = allowed(*who, &method, &path);
            if may && method != Method::GET {
                continue; // Allowed changes are exercised by the tests of each feature.
            }
            let reply = app
                .call(
                    method.clone(),
                    &world.concrete(&path),
                    token.as_deref(),
                    world.body(&method, &path),
                )
                .await;
            if may {
                assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "{who:?} may {method} {path}: {}",
                    reply.body
                );
            } else {
                refused += 1;
                let expected: &[u16] = if *who == Who::Anonymous {
                    &[401]
                } else {
                    &[403, 404]
                };
                assert!(
                    expected.contains(&reply.status.as_u16()),
                    "{who:?} must not {method} {path}: got {} {}",
                    reply.status,
                    reply.body
                );
                assert_eq!(reply.content_type, "application/problem+json");
            }
        }
    }
    assert!(refused > 100, "the matrix refused only {refused} calls");
    assert_eq!(
        snapshot(app, world).await,
        before,
        "a refused call changed something"
    );
}

crate::on_both_engines!(only_allowed_combinations_succeed);
