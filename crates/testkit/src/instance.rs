//! A `boxoffice serve` process on a free loopback port: what production runs, one instance of
//! several, for tests of kills, restarts and many instances sharing PostgreSQL and Redis.

use crate::app::Api;
use boxoffice_core::SystemClock;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub struct Instance {
    pub api: Api,
    pub port: u16,
    child: Option<Child>,
}

impl Instance {
    /// Starts the binary with `database_url` and the given environment, and waits until it is
    /// healthy. Demo data is never seeded.
    pub async fn start(binary: &Path, database_url: &str, env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("BOXOFFICE_NO_DEMO", "true")
            .env("BOXOFFICE_LOG", "warn")
            // Mail of test servers goes to the temporary folder, not the working directory.
            .env(
                "BOXOFFICE_MAIL_DIR",
                std::env::temp_dir().join(format!("boxoffice-mail-{port}")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start boxoffice");
        // Owned from here, so the process is killed even if it never comes up.
        let instance = Self {
            api: Api::new(format!("http://127.0.0.1:{port}"), Arc::new(SystemClock)),
            port,
            child: Some(child),
        };
        for _ in 0..600 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return instance;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("boxoffice did not come up on port {port}");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown, no flush, nothing but what was committed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit on its own; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..400 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        panic!("boxoffice did not stop within 10 s of SIGTERM");
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }
}

impl std::ops::Deref for Instance {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
