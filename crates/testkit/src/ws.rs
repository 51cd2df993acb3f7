//! A WebSocket client for tests of the live layer: connect, send JSON, read the next event
//! (pings skipped, a batch of events taken one by one), each bounded so a bug fails instead of
//! hanging.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connection, with the events of the last batch not read yet; the raw stream is reachable
/// through it (`socket.next()` reads the next wire message).
pub struct Socket {
    stream: Stream,
    unread: VecDeque<Value>,
}

impl From<Stream> for Socket {
    fn from(stream: Stream) -> Self {
        Self {
            stream,
            unread: VecDeque::new(),
        }
    }
}

impl std::ops::Deref for Socket {
    type Target = Stream;
    fn deref(&self) -> &Stream {
        &self.stream
    }
}

impl std::ops::DerefMut for Socket {
    fn deref_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

/// How long a message that should arrive at once may take; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Connects to `/api/v1/ws` of the server at `base` (`http://…`).
pub async fn connect(base: &str) -> Socket {
    let url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
    Socket::from(
        tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket")
            .0,
    )
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next event, skipping pings: a message is one event, or several in order as an array.
pub async fn next_json(socket: &mut Socket) -> Value {
    loop {
        if let Some(event) = socket.unread.pop_front() {
            return event;
        }
        let message = tokio::time::timeout(PATIENCE, socket.stream.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            match serde_json::from_str(&text).expect("JSON") {
                Value::Array(events) => {
                    assert!(!events.is_empty(), "a batch holds at least one event");
                    socket.unread.extend(events);
                }
                event => return event,
            }
        }
    }
}
