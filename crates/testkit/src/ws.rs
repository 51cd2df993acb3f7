//! A WebSocket client for tests of the live layer: connect, send JSON, read the next JSON
//! message (pings skipped), each bounded so a bug fails instead of hanging.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a message that should arrive at once may take; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Connects to `/api/v1/ws` of the server at `base` (`http://…`).
pub async fn connect(base: &str) -> Socket {
    let url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON message, skipping pings.
pub async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}
