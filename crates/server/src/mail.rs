//! E-mail to customers about their bookings: booking confirmations with tickets, cancellations
//! and refunds, released holds, changed shows. Rendered from templates (text and HTML) for the
//! domain events in the outbox, so sending never blocks or fails a booking; sent over SMTP when
//! configured, else written as `.eml` files into a folder (a demo shows them).

use crate::state::AppState;
use boxoffice_core::ids::{HoldId, PaymentId, ShowId, UserId};
use boxoffice_core::outbox::EventKind;
use boxoffice_store::{Channel, Message, StoreError};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Environment;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Events handled per round.
const BATCH: i64 = 64;
/// The most customers told about one change of a show.
const MAX_RECIPIENTS: i64 = 10_000;

/// Where mail goes.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `smtp://…` or `smtps://…` (user and password in the URL); `None` writes files.
    pub smtp_url: Option<String>,
    pub from: String,
    /// Where `.eml` files go when there is no SMTP server.
    pub folder: PathBuf,
    /// The address of the pages, for links in mail; this server's own address when unset.
    pub public_url: Option<String>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Boxoffice <tickets@boxoffice.invalid>".into(),
            folder: PathBuf::from("mail"),
            public_url: None,
        }
    }
}

pub struct Mailer {
    settings: MailSettings,
    from: Mailbox,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    templates: Environment<'static>,
}

/// One e-mail, before it is rendered.
struct Letter {
    to: UserId,
    subject: String,
    intro: String,
    lines: Vec<String>,
    tickets: Vec<Value>,
    link: Option<String>,
    outro: String,
}

impl Mailer {
    pub fn new(settings: MailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings.from.parse()?;
        let smtp = settings
            .smtp_url
            .as_deref()
            .map(|url| AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map(|b| b.build()))
            .transpose()?;
        let mut templates = Environment::new();
        templates.add_template("message.txt", include_str!("../templates/mail/message.txt"))?;
        templates.add_template(
            "message.html",
            include_str!("../templates/mail/message.html"),
        )?;
        Ok(Self {
            settings,
            from,
            smtp,
            templates,
        })
    }

    /// Sends what new events call for, then marks them: a crash in between sends some twice
    /// (each carries the event's id as its Message-ID, so mail clients fold the repeat).
    pub async fn round(&self, app: &AppState) -> Result<(), StoreError> {
        let messages = app.store.unsent(Channel::Mail, BATCH).await?;
        let mut done = Vec::with_capacity(messages.len());
        for message in &messages {
            let letters = match letters_for(app, message, &self.base_url(app)).await {
                Ok(letters) => letters,
                Err(error) => {
                    tracing::warn!(%error, message = %message.id, "could not prepare mail; skipped");
                    Vec::new()
                }
            };
            let mut sent_all = true;
            for letter in letters {
                if let Err(error) = self.send(app, message, letter).await {
                    tracing::warn!(%error, message = %message.id, "mail not sent; trying again later");
                    sent_all = false;
                }
            }
            if !sent_all {
                break;
            }
            done.push(message.id.clone());
        }
        app.store
            .mark_sent(Channel::Mail, &done, app.clock.now())
            .await
    }

    fn base_url(&self, app: &AppState) -> String {
        self.settings
            .public_url
            .clone()
            .or_else(|| app.own_url.get().cloned())
            .unwrap_or_default()
    }

    /// Sends one letter; `Err` only for a failure worth trying again (the server or the folder
    /// was not there). A letter that cannot be written at all (a bad address) is logged and
    /// dropped, so it never holds up the mail behind it.
    async fn send(&self, app: &AppState, message: &Message, letter: Letter) -> anyhow::Result<()> {
        let Some(user) = app.store.user(&letter.to).await? else {
            return Ok(());
        };
        let email = match self.compose(message, &user, letter) {
            Ok(email) => email,
            Err(error) => {
                tracing::warn!(%error, user = %user.id, "mail could not be written; dropped");
                return Ok(());
            }
        };
        match &self.smtp {
            Some(smtp) => {
                smtp.send(email).await?;
            }
            None => {
                tokio::fs::create_dir_all(&self.settings.folder).await?;
                let file = self.settings.folder.join(format!(
                    "{}-{}-{}.eml",
                    message.created_at.unix_ms(),
                    message.id,
                    user.id
                ));
                // Written aside and renamed into place, so whoever reads the folder never sees a
                // letter half written.
                let partial = file.with_extension("eml.partial");
                tokio::fs::write(&partial, email.formatted()).await?;
                tokio::fs::rename(&partial, &file).await?;
            }
        }
        crate::metrics::mail_sent();
        Ok(())
    }

    fn compose(
        &self,
        message: &Message,
        user: &boxoffice_core::user::User,
        letter: Letter,
    ) -> anyhow::Result<lettre::Message> {
        let context = json!({
            "name": user.name, "subject": letter.subject, "intro": letter.intro, "lines": letter.lines,
            "tickets": letter.tickets, "link": letter.link, "outro": letter.outro,
        });
        let context = minijinja::Value::from_serialize(&context);
        let text = self
            .templates
            .get_template("message.txt")?
            .render(&context)?;
        let html = self
            .templates
            .get_template("message.html")?
            .render(&context)?;
        let to = Mailbox::new(Some(user.name.clone()), user.email.parse()?);
        Ok(lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject)
            .message_id(Some(format!("<{}.{}@boxoffice>", message.id, user.id)))
            .multipart(MultiPart::alternative_plain_html(text, html))?)
    }
}

/// The show's event title and local start, for subjects and lines.
async fn show_words(app: &AppState, show: &ShowId) -> anyhow::Result<(String, String)> {
    let show = app
        .store
        .show(show)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no show {show}"))?;
    let title = app
        .store
        .event(&show.event_id)
        .await?
        .map(|e| e.title)
        .unwrap_or_default();
    Ok((title, local_words(app, &show, show.starts_at).await?))
}

/// A moment in the show's venue's time zone, as "Friday 4 December, 19:30".
async fn local_words(
    app: &AppState,
    show: &boxoffice_core::catalog::Show,
    at: boxoffice_core::Timestamp,
) -> anyhow::Result<String> {
    let zone = app
        .store
        .venue_place(&show.venue_id)
        .await?
        .map(|v| v.timezone)
        .unwrap_or_else(|| "UTC".into());
    Ok(boxoffice_core::schedule::local_moment(at, &zone)
        .map(|m| format!("{}, {}", m.day, m.time))
        .unwrap_or_else(|| at.to_rfc3339()))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn money(minor: &Value, currency: &Value) -> String {
    crate::pages::money(minor.as_i64().unwrap_or(0), currency.as_str())
}

/// The e-mails an event calls for (none for most organizer-only events).
async fn letters_for(app: &AppState, message: &Message, base: &str) -> anyhow::Result<Vec<Letter>> {
    let body: Value = serde_json::from_str(&message.body)?;
    let data = &body["data"];
    let show_of = |v: &Value| {
        ShowId::parse(v.as_str().unwrap_or("")).ok_or_else(|| anyhow::anyhow!("no show id"))
    };
    let letters = match message.kind {
        EventKind::BookingConfirmed => {
            let booking = &data["booking"];
            let (title, when) = show_words(app, &show_of(&booking["show_id"])?).await?;
            let currency = &booking["total"]["currency"];
            let tickets = booking["tickets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    json!({ "label": t["label"].as_str().unwrap_or("Standing"), "category": text(&t["category"]),
                            "price": money(&t["price_minor"], currency), "code": text(&t["code"]) })
                })
                .collect();
            vec![Letter {
                to: UserId::from_trusted(text(&booking["user_id"])),
                subject: format!("Your tickets: {title}, {when}"),
                intro: format!("you're going to {title} on {when}."),
                lines: vec![format!(
                    "Booking {} · {} · paid with {}",
                    text(&booking["id"]),
                    money(&booking["total"]["amount_minor"], currency),
                    text(&booking["payment_reference"])
                )],
                tickets,
                link: Some(format!("{base}/bookings/{}", text(&booking["id"]))),
                outro: "Show the ticket codes at the door.".into(),
            }]
        }
        EventKind::BookingCancelled => {
            let booking = &data["booking"];
            let (title, when) = show_words(app, &show_of(&booking["show_id"])?).await?;
            let by_organizer = data["reason"] == "show_cancelled";
            vec![Letter {
                to: UserId::from_trusted(text(&booking["user_id"])),
                subject: format!("Booking cancelled: {title}, {when}"),
                intro: if by_organizer {
                    format!(
                        "the organizer has cancelled {title} on {when}, so your booking is cancelled."
                    )
                } else {
                    format!("your booking for {title} on {when} is cancelled, as you asked.")
                },
                lines: vec![format!("Booking {}", text(&booking["id"]))],
                tickets: Vec::new(),
                link: Some(format!("{base}/bookings/{}", text(&booking["id"]))),
                outro: "Your money is on its way back; refunds follow the organizer's policy."
                    .into(),
            }]
        }
        EventKind::HoldExpired => {
            let hold = HoldId::parse(data["hold_id"].as_str().unwrap_or(""))
                .ok_or_else(|| anyhow::anyhow!("no hold id"))?;
            let Some(hold) = app.store.hold(&hold).await? else {
                return Ok(Vec::new());
            };
            let (title, when) = show_words(app, &hold.show_id).await?;
            let offer = app
                .store
                .waitlist_entries_of(Some(&hold.show_id), &hold.user_id, app.clock.now())
                .await?
                .iter()
                .any(|e| e.hold_id.as_ref() == Some(&hold.id));
            if offer {
                return Ok(vec![Letter {
                    to: hold.user_id.clone(),
                    subject: format!("Your waitlist offer ran out: {title}"),
                    intro: format!(
                        "the places held for you from the waitlist for {title} on {when} were not paid for in time, so they went to the next person waiting."
                    ),
                    lines: hold.items.iter().map(|i| i.label.clone()).collect(),
                    tickets: Vec::new(),
                    link: Some(format!("{base}/shows/{}", hold.show_id)),
                    outro: "Join the waitlist again if you still want to go.".into(),
                }]);
            }
            vec![Letter {
                to: hold.user_id.clone(),
                subject: format!("Your seats were released: {title}"),
                intro: format!(
                    "the seats you held for {title} on {when} were released because the time to pay ran out."
                ),
                lines: hold.items.iter().map(|i| i.label.clone()).collect(),
                tickets: Vec::new(),
                link: Some(format!("{base}/shows/{}", hold.show_id)),
                outro: "You can pick seats again while there are some left.".into(),
            }]
        }
        EventKind::ShowChanged => {
            let show = show_of(&data["show"]["id"])?;
            let (title, when) = show_words(app, &show).await?;
            app.store
                .booking_holders(&show, MAX_RECIPIENTS)
                .await?
                .into_iter()
                .map(|to| Letter {
                    to,
                    subject: format!("Changes to {title}, {when}"),
                    intro: format!("the organizer changed the details of {title} on {when}."),
                    lines: Vec::new(),
                    tickets: Vec::new(),
                    link: Some(format!("{base}/shows/{show}")),
                    outro: "Your tickets stay valid.".into(),
                })
                .collect()
        }
        EventKind::PaymentRefunded => {
            let payment = PaymentId::parse(data["payment"]["id"].as_str().unwrap_or(""))
                .ok_or_else(|| anyhow::anyhow!("no payment id"))?;
            let Some(payment) = app.store.payment(&payment).await? else {
                return Ok(Vec::new());
            };
            let (title, when) = show_words(app, &payment.show_id).await?;
            vec![Letter {
                to: payment.user_id.clone(),
                subject: format!("Refunded: {title}"),
                intro: format!(
                    "we refunded {} to your card ending {} for {title} on {when}.",
                    crate::pages::money(
                        data["refunded_minor"]
                            .as_i64()
                            .unwrap_or(payment.amount.amount_minor),
                        Some(payment.amount.currency.as_str())
                    ),
                    payment.card_last4
                ),
                lines: payment.failure_reason.iter().cloned().collect(),
                tickets: Vec::new(),
                link: Some(format!("{base}/shows/{}", payment.show_id)),
                outro: "Sorry it did not work out this time.".into(),
            }]
        }
        EventKind::WaitlistOffered => {
            let hold = &data["hold"];
            let show = show_of(&hold["show_id"])?;
            let (title, when) = show_words(app, &show).await?;
            let deadline = match boxoffice_core::Timestamp::parse_rfc3339(
                hold["expires_at"].as_str().unwrap_or(""),
            ) {
                Some(at) => match app.store.show(&show).await? {
                    Some(show) => local_words(app, &show, at).await?,
                    None => at.to_rfc3339(),
                },
                None => String::new(),
            };
            vec![Letter {
                to: UserId::from_trusted(text(&data["entry"]["user_id"])),
                subject: format!("Places for you: {title}, {when}"),
                intro: format!(
                    "places came back for {title} on {when}, and you were next on the waitlist: they are held in your name."
                ),
                lines: hold["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| format!("{} · {}", text(&i["label"]), text(&i["category"])))
                    .chain(std::iter::once(format!(
                        "Total {} · pay by {deadline}",
                        money(&hold["total"]["amount_minor"], &hold["total"]["currency"])
                    )))
                    .collect(),
                tickets: Vec::new(),
                link: Some(format!("{base}/holds/{}", text(&hold["id"]))),
                outro: "If you do not pay in time, the places go to the next person waiting."
                    .into(),
            }]
        }
        // Organizers hear about these through webhooks; customers get the booking's own mail.
        EventKind::ShowCancelled
        | EventKind::BookingRefunded
        | EventKind::PaymentSucceeded
        | EventKind::PaymentFailed => Vec::new(),
    };
    Ok(letters)
}
