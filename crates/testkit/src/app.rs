//! The real app on `127.0.0.1:0` with a movable clock, and a client that talks to it as a
//! customer or organizer would.

use crate::{Engine, TestDatabase};
use boxoffice_core::{Clock, ManualClock, Timestamp};
use boxoffice_server::auth::PasswordCost;
use boxoffice_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Speaks to the server through [`Api`] (it derefs to one).
pub struct TestApp {
    pub api: Api,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub engine: Engine,
    /// The server's own state, for tests that reach behind the API (the live layer's load).
    pub state: boxoffice_server::state::AppState,
    _db: TestDatabase,
    stop: Option<oneshot::Sender<()>>,
    /// The running server, to wait for when it is stopped.
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// 2030-01-01: far enough ahead that shows created "tomorrow" are in the future.
pub const START: Timestamp = Timestamp::from_unix_ms(1_893_456_000_000);

impl TestApp {
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, |_| {}).await
    }

    /// The server's database, for tools that reach it directly (the bench's pgbench ceilings).
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// The settings every test server uses: cheap password hashing, a fast sweeper and live
    /// tick, and rate limits far above what a test sends (the rate-limit tests set their own).
    pub fn test_config() -> boxoffice_server::Config {
        let generous = boxoffice_server::ratelimit::Rate::parse("100000/s:100000").expect("a rate");
        boxoffice_server::Config {
            password_cost: PasswordCost::CHEAPEST,
            hashing_concurrency: 4,
            sweep_interval: std::time::Duration::from_millis(50),
            dispatch_interval: std::time::Duration::from_millis(50),
            // Long enough that a test can act while a payment is still being decided, even on a
            // loaded machine.
            simulated_payment_delay: std::time::Duration::from_millis(1_000),
            // Each test server writes its mail into a folder of its own.
            mail: boxoffice_server::mail::MailSettings {
                folder: std::env::temp_dir()
                    .join(format!("boxoffice-mail-{}", uuid::Uuid::now_v7().simple())),
                ..Default::default()
            },
            webhook_timeout: std::time::Duration::from_secs(2),
            live: boxoffice_server::live::LiveLimits {
                tick: std::time::Duration::from_millis(50),
                availability_every: std::time::Duration::from_millis(50),
                ..Default::default()
            },
            rate_limits: boxoffice_server::ratelimit::RateLimits {
                ip: generous,
                auth: generous,
                user: generous,
                orders: generous,
            },
            ..Default::default()
        }
    }

    /// A test server with `adjust` applied to [`TestApp::test_config`].
    pub async fn spawn_with(
        engine: Engine,
        adjust: impl FnOnce(&mut boxoffice_server::Config),
    ) -> Self {
        let db = TestDatabase::fresh(engine).await;
        let store = db.store().await;
        let clock = ManualClock::starting_at(START);
        let mut config = Self::test_config();
        adjust(&mut config);
        let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let (state, base, stop, serving) =
            Self::serve(store.clone(), shared_clock.clone(), config).await;
        Self {
            api: Api::new(base, shared_clock),
            store,
            clock,
            engine,
            state,
            _db: db,
            stop: Some(stop),
            serving: Some(serving),
        }
    }

    #[allow(clippy::type_complexity)]
    async fn serve(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: boxoffice_server::Config,
    ) -> (
        boxoffice_server::state::AppState,
        String,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let app = boxoffice_server::state(store, clock, config)
            .await
            .expect("app state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let state = app.clone();
        let serving = tokio::spawn(boxoffice_server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        (state, base, stop, serving)
    }

    /// Stops the server (its background tasks drop whatever they were doing, as in a crash of
    /// the process) and starts a fresh one on the same database, clock and settings, at a new
    /// address.
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        let config = self.state.config.clone();
        let (state, base, stop, serving) =
            Self::serve(self.store.clone(), self.api.clock.clone(), config).await;
        self.state = state;
        self.api = Api::new(base, self.api.clock.clone());
        self.stop = Some(stop);
        self.serving = Some(serving);
    }

    /// A second instance of the service on the same database (its own connections, caches and
    /// background tasks) and clock, as a scaled-out deployment runs it; stopped when dropped.
    pub async fn sibling(&self) -> Sibling {
        let store = self._db.store().await;
        let (state, base, stop, _serving) =
            Self::serve(store, self.api.clock.clone(), self.state.config.clone()).await;
        Sibling {
            api: Api::new(base, self.api.clock.clone()),
            state,
            _stop: stop,
        }
    }

    /// A platform admin, created directly in the store (no one can sign up as admin).
    pub async fn admin(&self) -> Session {
        let passwords =
            boxoffice_server::auth::Passwords::new(PasswordCost::CHEAPEST, 1).expect("hasher");
        let hash = passwords
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        let admin = boxoffice_core::user::User {
            id: boxoffice_core::ids::UserId::generate(),
            email: "root@example.com".into(),
            name: "Root".into(),
            role: boxoffice_core::user::Role::Admin,
            state: boxoffice_core::user::AccountState::Active,
            organizer: None,
            created_at: self.clock.now(),
        };
        self.store
            .insert_user(&admin, &hash, None)
            .await
            .expect("insert the admin");
        self.login("root@example.com").await
    }
}

/// A client of one server's API, as a customer or organizer would use it.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    /// The server's clock (shows are scheduled relative to it).
    pub clock: Arc<dyn Clock>,
}

impl Api {
    pub fn new(base: String, clock: Arc<dyn Clock>) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        Self { base, http, clock }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A raw request, for tests about headers and bad input.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("the server answers")).await
    }

    /// Registers an account and returns its bearer token.
    pub async fn register(&self, email: &str, role: &str) -> Session {
        let reply = self
            .call(
                Method::POST,
                "/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery", "name": email, "role": role})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register {email}: {}",
            reply.body
        );
        Session {
            token: reply.body["token"].as_str().expect("a token").to_owned(),
            user_id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
            refresh_token: reply.body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        }
    }

    /// An organizer with a venue (rows A and B of `seats_per_row` standard seats, a standing
    /// area of `capacity`), an event and one show tomorrow; returns the organizer and the show.
    pub async fn show_with(
        &self,
        email: &str,
        seats_per_row: i64,
        capacity: i64,
        max_per_order: i64,
    ) -> (Session, Value) {
        let organizer = self.register(email, "organizer").await;
        let venue = self
            .call(
                Method::POST,
                "/venues",
                Some(&organizer.token),
                Some(json!({
                    "name": "Test Hall", "city": "Testville",
                    "sections": [{"name": "Stalls", "rows": [
                        {"label": "A", "count": seats_per_row, "category": "standard"},
                        {"label": "B", "count": seats_per_row, "category": "standard"}]}],
                    "areas": [{"name": "Floor", "category": "standing", "capacity": capacity}]
                })),
            )
            .await;
        assert_eq!(venue.status, StatusCode::CREATED, "{}", venue.body);
        let event = self
            .call(
                Method::POST,
                "/events",
                Some(&organizer.token),
                Some(json!({"title": "Test Gig", "kind": "concert"})),
            )
            .await;
        assert_eq!(event.status, StatusCode::CREATED, "{}", event.body);
        let show = self
            .call(
                Method::POST,
                "/shows",
                Some(&organizer.token),
                Some(json!({
                    "event_id": event.body["id"], "venue_id": venue.body["id"],
                    "starts_at": self.clock.now().plus_minutes(24 * 60), "currency": "EUR",
                    "prices": {"standard": 2000, "standing": 1000}, "hold_minutes": 10,
                    "max_tickets_per_order": max_per_order, "max_tickets_per_customer": max_per_order
                })),
            )
            .await;
        assert_eq!(show.status, StatusCode::CREATED, "{}", show.body);
        (organizer, show.body)
    }

    pub async fn login(&self, email: &str) -> Session {
        let reply = self
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login {email}: {}",
            reply.body
        );
        Session {
            token: reply.body["token"].as_str().expect("a token").to_owned(),
            user_id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
            refresh_token: reply.body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        }
    }

    /// Holds the seats `labels` of `show` for `customer` and pays by card; the booking.
    pub async fn book_seats(&self, customer: &Session, show: &Value, labels: &[&str]) -> Value {
        let show_id = show["id"].as_str().expect("a show id");
        let map = self.seat_map(show_id).await;
        let hold = self
            .call(
                Method::POST,
                "/holds",
                Some(&customer.token),
                Some(json!({ "show_id": show_id, "seat_ids": seat_ids(&map, labels) })),
            )
            .await;
        assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
        self.pay_hold(customer, &hold.body).await
    }

    /// Pays for `hold` by card (a test card that succeeds at once); the booking.
    pub async fn pay_hold(&self, customer: &Session, hold: &Value) -> Value {
        let booking = self
            .call(
                Method::POST,
                "/bookings",
                Some(&customer.token),
                Some(json!({ "hold_id": hold["id"], "payment": { "method": "card", "card_number": "4242424242424242" } })),
            )
            .await;
        assert_eq!(booking.status, StatusCode::CREATED, "{}", booking.body);
        booking.body
    }

    /// Cancels `customer`'s `booking` with the refund going `refund_to` (`card` or `wallet`).
    pub async fn cancel_booking(&self, customer: &Session, booking: &Value, refund_to: &str) {
        let reply = self
            .call(
                Method::POST,
                &format!(
                    "/bookings/{}/cancel",
                    booking["id"].as_str().expect("a booking id")
                ),
                Some(&customer.token),
                Some(json!({ "refund_to": refund_to })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    pub async fn seat_map(&self, show_id: &str) -> Value {
        let reply = self
            .call(Method::GET, &format!("/shows/{show_id}/seats"), None, None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Another instance next to a [`TestApp`] (see [`TestApp::sibling`]).
pub struct Sibling {
    pub api: Api,
    pub state: boxoffice_server::state::AppState,
    _stop: oneshot::Sender<()>,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub refresh_token: String,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Self {
            status,
            content_type,
            headers,
            body,
        }
    }

    /// Asserts an RFC 9457 problem of the given status and type, and returns it.
    pub fn problem(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body {}",
            self.body
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "body {}",
            self.body
        );
        assert_eq!(self.body["type"], kind, "body {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        &self.body
    }
}

/// The ids of the seats with these labels in a seat map (as `GET /shows/{id}/seats` answers).
pub fn seat_ids(map: &Value, labels: &[impl AsRef<str>]) -> Vec<Value> {
    labels
        .iter()
        .map(|label| {
            let label = label.as_ref();
            map["seats"]
                .as_array()
                .expect("a seat map")
                .iter()
                .find(|s| s["label"] == label)
                .unwrap_or_else(|| panic!("no seat {label}"))["id"]
                .clone()
        })
        .collect()
}
