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
    staff_x: String,
    organizer_x: String,
}

async fn world(app: &TestApp) -> World {
    let (owner_x, show) = app.show_with("owner-x@example.com", 4, 10, 4).await;
    let staff = app.register("staff-x@example.com", "customer").await;
    let added = app
        .call(
            Method::POST,
            "/organizer/members",
            Some(&owner_x.token),
            Some(json!({"email": "staff-x@example.com", "role": "staff"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let staff_x = app.login("staff-x@example.com").await;
    let owner_y = app.register("owner-y@example.com", "organizer").await;
    let a = app.register("a@example.com", "customer").await;
    let b = app.register("b@example.com", "customer").await;
    let admin = app.admin().await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let area = app.seat_map(&show_id).await["areas"][0]["id"].clone();
    let hold_body = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 1}]});
    let paid = app
        .call(
            Method::POST,
            "/holds",
            Some(&a.token),
            Some(hold_body.clone()),
        )
        .await;
    let pay = json!({"hold_id": paid.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    let booking = app
        .call(Method::POST, "/bookings", Some(&a.token), Some(pay))
        .await;
    assert_eq!(booking.status, StatusCode::CREATED);
    let hold = app
        .call(Method::POST, "/holds", Some(&a.token), Some(hold_body))
        .await;
    let organizer = app
        .call(Method::GET, "/organizer", Some(&owner_x.token), None)
        .await;
    let token = |s: &Session| Some(s.token.clone());
    World {
        tokens: vec![
            (Who::Anonymous, None),
            (Who::CustomerA, token(&a)),
            (Who::CustomerB, token(&b)),
            (Who::OwnerX, token(&owner_x)),
            (Who::StaffX, token(&staff_x)),
            (Who::OwnerY, token(&owner_y)),
            (Who::Admin, token(&admin)),
        ],
        venue: show["venue_id"].as_str().unwrap().to_owned(),
        event: show["event_id"].as_str().unwrap().to_owned(),
        show: show_id,
        hold: hold.body["id"].as_str().unwrap().to_owned(),
        booking: booking.body["id"].as_str().unwrap().to_owned(),
        customer_b: b.user_id.clone(),
        staff_x: staff.user_id.clone(),
        organizer_x: organizer.body["id"].as_str().unwrap().to_owned(),
    }
}

impl World {
    /// The documented path with its parameter filled with the object of its kind.
    fn concrete(&self, path: &str) -> String {
        let id = if path.starts_with("/venues/") {
            &self.venue
        } else if path.starts_with("/events/") {
            &self.event
        } else if path.starts_with("/shows/") {
            &self.show
        } else if path.starts_with("/holds/") {
            &self.hold
        } else if path.starts_with("/bookings/") {
            &self.booking
        } else if path.starts_with("/admin/users/") {
            &self.customer_b
        } else if path.starts_with("/admin/organizers/") {
            &self.organizer_x
        } else {
            &self.staff_x
        };
        path.replace("{id}", id).replace("{user_id}", id)
    }

    /// A well-formed body, so a refusal is the wall's doing and not the body's.
    fn body(&self, method: &Method, path: &str) -> Option<Value> {
        let area_venue =
            json!({"name": "V", "areas": [{"name": "F", "category": "standing", "capacity": 5}]});
        Some(match (method.as_str(), path) {
            ("POST", "/admin/users") => {
                json!({"email": "new@example.com", "password": "long enough pass", "name": "New"})
            }
            ("POST", "/admin/organizers") => json!({"name": "Z", "owner_email": "b@example.com"}),
            ("POST", "/organizer/members") => json!({"email": "b@example.com", "role": "staff"}),
            ("POST", "/venues") => area_venue,
            ("PATCH", "/venues/{id}") => json!({"name": "Taken over"}),
            ("PUT", "/venues/{id}/layout") => {
                json!({"areas": [{"name": "F", "category": "standing", "capacity": 5}]})
            }
            ("POST", "/events") => json!({"title": "E", "kind": "other"}),
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
        "/me" | "/auth/logout" | "/bookings" | "/holds"
            if method == Method::GET || path != "/bookings" =>
        {
            signed_in
        }
        p if p.starts_with("/admin/") => who == Admin,
        "/organizer" | "/organizer/figures" | "/venues" | "/events" => member,
        "/organizer/members" => matches!(who, OwnerX | OwnerY),
        "/organizer/members/{user_id}" => who == OwnerX,
        "/shows" | "/events/{id}/schedule" => of_x,
        "/venues/{id}"
        | "/venues/{id}/layout"
        | "/events/{id}"
        | "/shows/{id}"
        | "/shows/{id}/sales" => of_x || who == Admin,
        "/holds/{id}" | "/bookings/{id}" if get => matches!(who, CustomerA | Admin),
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
    seen
}

async fn only_allowed_combinations_succeed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let world = world(&app).await;
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let public = ["/auth/register", "/auth/login", "/auth/refresh"];
    let before = snapshot(&app, &world).await;
    let mut refused = 0;
    for (method, path, _) in crate::openapi::operations(&doc)
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
        snapshot(&app, &world).await,
        before,
        "a refused call changed something"
    );
}

crate::on_both_engines!(only_allowed_combinations_succeed);
