//! The live endpoints: a WebSocket that follows any number of shows and an SSE stream per show.
//! Both start with a snapshot (the seat map and the sequence it is current to) and then send
//! each numbered change (on the WebSocket, changes batched together share one message, a JSON
//! array); a client that sees a sequence jump re-fetches. Each WebSocket has a
//! bounded outbox: a viewer that cannot keep up is closed (code 1013), never buffered for.

use crate::error::{ApiError, ApiResult};
use crate::extract::path_id;
use crate::live::{ConnectionPermit, Frame, snapshot_frame};
use crate::routes::catalog::seat_map_json;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use boxoffice_core::DomainError;
use boxoffice_core::ids::ShowId;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WireFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type WebSocket =
    tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Messages a WebSocket may have queued for its client before it counts as too slow: as many
/// as a show's ring holds, since a batch of changes arrives all at once.
const OUTBOX: usize = 256;
/// Frames are written in pieces of at most this size: the socket's write buffer grows to the
/// largest frame it ever wrote and keeps that size, so a 30 KB seat map sent whole would cost
/// every viewer 30 KB for as long as it stays connected.
const FRAGMENT: usize = 4 * 1024;
const TOO_SLOW: u16 = 1013;
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(websocket))
        .routes(routes!(show_events))
}

fn at_capacity() -> ApiError {
    ApiError::Problem {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "too_many_connections",
        detail: "this server follows as many live connections as it can; try again shortly".into(),
    }
}

#[utoipa::path(
    get,
    path = "/ws",
    tag = "live",
    summary = "Live seat maps over a WebSocket",
    description = "Send `{\"type\":\"subscribe\",\"show_id\":…}` or `unsubscribe`. Per show the \
        server sends a `snapshot` (the seat map and its `seq`), then `seat_held`, `seat_released`, \
        `seat_sold`, `availability`, `show_changed`, `show_cancelled`, `queue_position`, `checked_in`, each with the \
        show's next `seq` and `announced_at` (when it was announced, right after its commit), and `resync` when changes may have been missed (a fresh `snapshot` follows); on a gap, subscribe again. Changes sent together come as one message: a \
        JSON array of the events in order. Bad messages get an `error` message. Pings every \
        heartbeat; a client silent for two heartbeats, or too slow to read, is closed.",
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn websocket(
    State(app): State<AppState>,
    mut request: axum::extract::Request,
) -> ApiResult<Response> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec());
    let version_13 = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let (Some(key), true, true, true) = (
        key,
        version_13,
        has(header::UPGRADE, "websocket"),
        has(header::CONNECTION, "upgrade"),
    ) else {
        return Err(ApiError::problem(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "connect with a WebSocket client (Upgrade: websocket, version 13)",
        ));
    };
    let on_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::Internal("the connection cannot be upgraded".into()))?;
    let permit = app.live.admit().ok_or_else(at_capacity)?;
    // Viewers only send short commands and receive small frames: small buffers keep a crowd of
    // ten thousand viewers in tens of megabytes instead of 128 KiB read buffers each.
    let config = WebSocketConfig::default()
        .max_message_size(Some(4 * 1024))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let socket =
            tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, Some(config))
                .await;
        follow(app, socket, permit).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .map_err(|error| ApiError::Internal(error.to_string()))
}

/// A text message as data frames of at most [`FRAGMENT`] bytes (one frame if it is small).
fn fragments(text: Utf8Bytes) -> Vec<Message> {
    if text.len() <= FRAGMENT {
        return vec![Message::Text(text)];
    }
    let bytes: tokio_tungstenite::tungstenite::Bytes = text.into();
    let pieces = bytes.len().div_ceil(FRAGMENT);
    (0..pieces)
        .map(|i| {
            let piece = bytes.slice(i * FRAGMENT..((i + 1) * FRAGMENT).min(bytes.len()));
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            Message::Frame(WireFrame::message(piece, opcode, i + 1 == pieces))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Subscribe { show_id: String },
    Unsubscribe { show_id: String },
}

/// Closes the connection (with a reason) from wherever the trouble is noticed: the first reason
/// wins, and the writer sends it before anything still queued.
#[derive(Clone, Default)]
struct Closer(Arc<Closing>);

#[derive(Default)]
struct Closing {
    frame: std::sync::Mutex<Option<CloseFrame>>,
    /// Woken once; the writer waits on one long-lived notification rather than registering
    /// a new waiter for every message it sends.
    requested: tokio::sync::Notify,
}

impl Closer {
    fn close(&self, code: u16, reason: &'static str) {
        let mut frame = self.0.frame.lock().expect("close lock");
        if frame.is_none() {
            *frame = Some(CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from_static(reason),
            });
            self.0.requested.notify_one();
        }
    }

    fn frame(&self) -> Option<CloseFrame> {
        self.0.frame.lock().expect("close lock").clone()
    }

    fn too_slow(&self) {
        crate::metrics::slow_consumer_dropped("websocket");
        self.close(TOO_SLOW, "too slow: reconnect and subscribe again");
    }
}

async fn follow(app: AppState, socket: WebSocket, _permit: ConnectionPermit) {
    let limits = app.live.limits.clone();
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
    let closer = Closer::default();
    let closing = closer.clone();
    let mut writer = tokio::spawn(async move {
        let requested = closing.0.requested.notified();
        tokio::pin!(requested);
        loop {
            // A requested close goes out before anything still queued, and also when the
            // connection's senders are already gone.
            let message = tokio::select! {
                biased;
                _ = &mut requested => None,
                message = outgoing.recv() => message,
            };
            let Some(message) = message else {
                let frame = closing.frame();
                if frame.is_some() {
                    let close = sink.send(Message::Close(frame));
                    let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
                }
                return;
            };
            // Whatever else is already queued goes out with it, written together: under load a
            // viewer's messages share one write instead of a system call each.
            let mut batch = vec![message];
            while batch.len() < OUTBOX {
                match outgoing.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let sending = async {
                for message in batch {
                    match message {
                        Message::Text(text) if text.len() > FRAGMENT => {
                            for piece in fragments(text) {
                                sink.feed(piece).await?;
                            }
                        }
                        other => sink.feed(other).await?,
                    }
                }
                sink.flush().await
            };
            // Most writes finish at once; only one that waits for the socket gets a timer (a
            // timer per message was a visible share of delivering to thousands of viewers).
            let mut sending = std::pin::pin!(sending);
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(sending.as_mut().poll(cx))).await;
            let outcome = match first {
                std::task::Poll::Ready(result) => Ok(result),
                std::task::Poll::Pending => {
                    tokio::time::timeout(limits.write_timeout, sending).await
                }
            };
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    crate::metrics::slow_consumer_dropped("websocket");
                    return;
                }
            }
        }
    });
    let mut following: HashMap<ShowId, JoinHandle<()>> = HashMap::new();
    let mut stopping = app.stopping.subscribe();
    let mut heartbeat = tokio::time::interval(limits.heartbeat);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    obey(&app, &text, &mut following, &outbox, &closer);
                }
                Some(Ok(Message::Binary(_))) => {
                    closer.close(POLICY, "send JSON text messages");
                    break;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > limits.heartbeat * 2 {
                    closer.close(GOING_AWAY, "no answer to heartbeats");
                    break;
                } else if outbox.try_send(Message::Ping(Default::default())).is_err() {
                    closer.too_slow();
                }
            }
            _ = stopping.wait_for(|stop| *stop) => {
                closer.close(GOING_AWAY, "the server is restarting: reconnect");
                break;
            }
            _ = &mut writer => break,
        }
    }
    for (_, task) in following {
        task.abort();
    }
    drop(outbox);
    if !writer.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
        writer.abort();
    }
}

fn obey(
    app: &AppState,
    text: &str,
    following: &mut HashMap<ShowId, JoinHandle<()>>,
    outbox: &mpsc::Sender<Message>,
    closer: &Closer,
) {
    let reply_error = |detail: String| {
        let body = serde_json::json!({ "type": "error", "detail": detail }).to_string();
        if outbox.try_send(Message::Text(body.into())).is_err() {
            closer.too_slow();
        }
    };
    let command = match serde_json::from_str::<Command>(text) {
        Ok(command) => command,
        Err(error) => {
            return reply_error(format!(
                "not a command ({error}); send {{\"type\":\"subscribe\",\"show_id\":\"shw_…\"}}"
            ));
        }
    };
    let parse = |raw: &str| ShowId::parse(raw).ok_or(format!("{raw:?} is not a show id"));
    following.retain(|_, task| !task.is_finished());
    match command {
        Command::Subscribe { show_id } => {
            let show = match parse(&show_id) {
                Ok(show) => show,
                Err(detail) => return reply_error(detail),
            };
            if following.contains_key(&show) {
                return;
            }
            if following.len() >= app.live.limits.max_subscriptions {
                return reply_error(format!(
                    "at most {} shows per connection",
                    app.live.limits.max_subscriptions
                ));
            }
            let task = tokio::spawn(forward(
                app.clone(),
                show.clone(),
                outbox.clone(),
                closer.clone(),
            ));
            following.insert(show, task);
        }
        Command::Unsubscribe { show_id } => match parse(&show_id) {
            Ok(show) => {
                if let Some(task) = following.remove(&show) {
                    task.abort();
                }
            }
            Err(detail) => reply_error(detail),
        },
    }
}

/// Sends one show's snapshot, then its changes, into the connection's outbox.
async fn forward(app: AppState, show: ShowId, outbox: mpsc::Sender<Message>, closer: Closer) {
    let (mut changes, seq) = app.live.subscribe(&show);
    let snapshot = match seat_map_json(&app, &show).await {
        Ok(seat_map) => snapshot_frame(&show, seq, &seat_map),
        Err(error) => {
            let body = serde_json::json!({
                "type": "error",
                "show_id": show,
                "detail": error.to_string(),
            });
            let _ = outbox.try_send(Message::Text(body.to_string().into()));
            return;
        }
    };
    let mut next = Some(snapshot.json);
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => match changes.recv().await {
                Ok(delivery) => {
                    delivery.taken();
                    delivery.message.clone()
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return closer.too_slow(),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if outbox.try_send(Message::Text(message)).is_err() {
            return closer.too_slow();
        }
    }
}

#[utoipa::path(
    get,
    path = "/shows/{id}/events",
    tag = "live",
    summary = "A show's live changes as server-sent events",
    description = "The first event is a `snapshot` (the seat map) unless `Last-Event-ID` names a \
        sequence this server still remembers, in which case the events after it are replayed. \
        Every event's id is the show's sequence. A client that falls too far behind is \
        disconnected and resumes with `Last-Event-ID`.",
    params(("id" = String, Path), ("Last-Event-ID" = Option<String>, Header, description = "The last sequence received")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn show_events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let show = path_id(&id, ShowId::parse, "show")?;
    app.store
        .show(&show)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    let permit = app.live.admit().ok_or_else(at_capacity)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (changes, seq) = app.live.subscribe(&show);
    let first: Vec<Frame> = match resume.and_then(|last| app.live.since(&show, last)) {
        // What the subscription delivers from now on is not sent twice.
        Some(missed) => missed.into_iter().filter(|f| f.seq <= seq).collect(),
        None => vec![snapshot_frame(
            &show,
            seq,
            &seat_map_json(&app, &show).await?,
        )],
    };
    let mut stopping = app.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let changes = tokio_stream::wrappers::BroadcastStream::new(changes);
    let live = tokio_stream::StreamExt::map_while(changes, move |change| {
        let _still_open = &permit;
        match change {
            Ok(delivery) => {
                delivery.taken();
                Some(futures_util::stream::iter(delivery.frames.to_vec()))
            }
            Err(_lagged) => {
                crate::metrics::slow_consumer_dropped("sse");
                None
            }
        }
    });
    // Each change is an event of its own (with its sequence as the id), batched or not.
    let events = futures_util::stream::iter(first)
        .chain(live.flatten())
        .map(|frame| {
            Ok::<_, std::convert::Infallible>(
                Event::default()
                    .id(frame.seq.to_string())
                    .event(&*frame.kind)
                    .data(frame.json.as_str()),
            )
        })
        .take_until(stopped);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(app.live.limits.heartbeat))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_go_out_as_fragments_of_one_message() {
        let short = fragments(Utf8Bytes::from("{\"seq\":1}"));
        assert!(matches!(short.as_slice(), [Message::Text(t)] if t.as_str() == "{\"seq\":1}"));

        let text = "é".repeat(FRAGMENT); // two bytes a character: pieces split characters
        let pieces = fragments(Utf8Bytes::from(text.clone()));
        assert_eq!(pieces.len(), 2);
        let mut joined = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let Message::Frame(frame) = piece else {
                panic!("a raw frame")
            };
            let header = frame.header();
            assert_eq!(header.is_final, i == 1);
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(header.opcode, OpCode::Data(expected));
            assert!(frame.payload().len() <= FRAGMENT);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }
}
