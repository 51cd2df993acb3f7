//! Law 2: a booking the API acknowledged survives `kill -9` of the process and a restart.

use boxoffice_testkit::{Engine, Reply, TestDatabase};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(database_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                database_url,
            ])
            .env("BOXOFFICE_LOG", "warn")
            .env(
                "BOXOFFICE_MAIL_DIR",
                std::env::temp_dir().join(format!("boxoffice-mail-{port}")),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("start boxoffice");
        // Owned from here, so the process is killed even if it never comes up.
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}/api/v1"),
        };
        for _ in 0..300 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("boxoffice did not come up on port {port}");
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        let request = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        Reply::from(request.send().await.unwrap()).await
    }

    /// SIGKILL: no shutdown, no flush, nothing but what was committed.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn booking_survives_kill_and_restart(engine: Engine) {
    let db = TestDatabase::fresh(engine).await;
    let server = Server::start(&db.url).await;
    let login = server
        .post(
            "/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "boxoffice-demo"}),
        )
        .await;
    let token = login.body["token"]
        .as_str()
        .expect("the demo account signs in")
        .to_owned();
    let shows = reqwest::get(format!("{}/shows?limit=1", server.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let show_id = shows["items"][0]["id"].as_str().unwrap().to_owned();
    let hold = server
        .post(
            "/holds",
            Some(&token),
            json!({"show_id": show_id, "best_available": {"category": "premium", "quantity": 2}}),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.body);
    let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    let booking = server.post("/bookings", Some(&token), pay).await;
    assert_eq!(booking.status, 201, "{}", booking.body);
    server.kill();

    let server = Server::start(&db.url).await;
    let again = server
        .get(
            &format!("/bookings/{}", booking.body["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body, booking.body,
        "the booking is exactly as acknowledged"
    );
    let seats = reqwest::get(format!("{}/shows/{show_id}/seats", server.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let sold = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "sold")
        .count();
    assert_eq!(sold, 2);
    let events = reqwest::get(format!("{}/events", server.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        2,
        "the demo was seeded once, not again"
    );
    server.kill();
}

#[tokio::test]
async fn sqlite_booking_survives_kill_and_restart() {
    booking_survives_kill_and_restart(Engine::Sqlite).await;
}

#[tokio::test]
async fn postgres_booking_survives_kill_and_restart() {
    booking_survives_kill_and_restart(Engine::Postgres).await;
}
