//! An SMTP server on a loopback port that accepts every message and keeps it: enough of the
//! protocol (EHLO, MAIL, RCPT, DATA, QUIT) for a real SMTP client to deliver to it.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message as it arrived: the envelope recipients and the raw message.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub recipients: Vec<String>,
    pub data: String,
}

pub struct SmtpSink {
    pub url: String,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("smtp://{}", listener.local_addr().expect("bound address"));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let shared = delivered.clone();
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, shared.clone()));
            }
        });
        Self {
            url,
            delivered,
            _server: server,
        }
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().expect("smtp sink").clone()
    }
}

async fn session(socket: tokio::net::TcpStream, delivered: Arc<Mutex<Vec<Delivered>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let mut recipients = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") {
            recipients.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            recipients.push(line[8..].trim().trim_matches(['<', '>', ':']).to_owned());
            b"250 OK\r\n"
        } else if command == "DATA" {
            let _ = write.write_all(b"354 end with .\r\n").await;
            let mut data = String::new();
            while let Ok(Some(body)) = lines.next_line().await {
                if body == "." {
                    break;
                }
                data.push_str(&body);
                data.push('\n');
            }
            delivered.lock().expect("smtp sink").push(Delivered {
                recipients: recipients.clone(),
                data,
            });
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
