//! The Boxoffice binary: `serve` (the default), `migrate` and `seed`.

use anyhow::Context;
use boxoffice_core::SystemClock;
use boxoffice_server::demo;
use boxoffice_server::ratelimit::{Rate, RateLimits};
use clap::{Parser, Subcommand};
use std::sync::Arc;

/// Many small allocations per request from every worker thread: glibc's allocator spent a
/// tenth of a flash sale's CPU in its locks and consolidation (perf); mimalloc's per-thread
/// heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "Ticketing and booking for events and showtimes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// A TOML file of settings named like the flags (`listen = "0.0.0.0:8080"`,
    /// `rate_ip = "50/s:200"`, `database = "postgres://…"`); flags and environment override it.
    #[arg(long, env = "BOXOFFICE_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
}

/// The settings file, if one is named, as defaults under the flags and the environment:
/// precedence is flag, then environment, then file, then built-in default.
fn parse_cli(args: Vec<String>) -> anyhow::Result<Cli> {
    use clap::{CommandFactory, FromArgMatches};
    let named = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_owned))
        })
        .or_else(|| std::env::var("BOXOFFICE_CONFIG").ok());
    let mut command = Cli::command();
    if let Some(path) = named {
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("parse {path}"))?;
        let mut settings: Vec<(String, &'static str)> = Vec::new();
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    anyhow::bail!("{path}: {key} = {other:?}: give a string, number or boolean")
                }
            };
            let id = if key == "database" {
                "url".to_owned()
            } else {
                key
            };
            // Read once per process; clap keeps defaults as static strings.
            settings.push((id, Box::leak(value.into_boxed_str())));
        }
        let mut known: Vec<String> = command
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        if let Some(serve) = command.find_subcommand("serve") {
            known.extend(serve.get_arguments().map(|a| a.get_id().to_string()));
        }
        if let Some((unknown, _)) = settings.iter().find(|(id, _)| !known.contains(id)) {
            anyhow::bail!("{path}: unknown setting {unknown:?}");
        }
        let apply =
            |arg: clap::Arg| match settings.iter().find(|(id, _)| arg.get_id() == id.as_str()) {
                Some((_, value)) => arg.default_value(*value),
                None => arg,
            };
        command = command
            .mut_args(apply)
            .mut_subcommand("serve", |serve| serve.mut_args(apply));
    }
    let matches = command.try_get_matches_from(args)?;
    Ok(Cli::from_arg_matches(&matches)?)
}

#[derive(clap::Args, Clone)]
struct DatabaseArgs {
    /// `sqlite://PATH` (the default, a file in the working directory) or `postgres://…`.
    #[arg(
        long = "database",
        env = "DATABASE_URL",
        default_value = "sqlite://boxoffice.db",
        global = true
    )]
    url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (migrates, and seeds demo data into an empty database).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Seed demo data into an empty database and exit.
    Seed,
    /// Drive running servers over HTTP and report throughput, latency and the checker's verdict.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, env = "BOXOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Do not seed demo data into an empty database.
    #[arg(long, env = "BOXOFFICE_NO_DEMO")]
    no_demo: bool,
    /// Mark session cookies Secure (set when the service is behind TLS).
    #[arg(long, env = "BOXOFFICE_COOKIE_SECURE")]
    cookie_secure: bool,
    /// Access-token lifetime in minutes.
    #[arg(long, env = "BOXOFFICE_TOKEN_TTL_MINUTES", default_value_t = 15)]
    token_ttl_minutes: i64,
    /// `redis://HOST:PORT` to run as one of several instances (shared live updates and limits).
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Requests per client address on every route, as RATE/UNIT:BURST (s, m or h).
    #[arg(long, env = "BOXOFFICE_RATE_IP", default_value = "50/s:200", value_parser = Rate::parse)]
    rate_ip: Rate,
    /// Sign-in, sign-up and refresh attempts per client address.
    #[arg(long, env = "BOXOFFICE_RATE_AUTH", default_value = "10/m:10", value_parser = Rate::parse)]
    rate_auth: Rate,
    /// Requests per signed-in user on every route.
    #[arg(long, env = "BOXOFFICE_RATE_USER", default_value = "20/s:100", value_parser = Rate::parse)]
    rate_user: Rate,
    /// Holds and bookings per user (the burst guard).
    #[arg(long, env = "BOXOFFICE_RATE_ORDERS", default_value = "1/s:5", value_parser = Rate::parse)]
    rate_orders: Rate,
    /// Take the client address from the last X-Forwarded-For hop (only behind a proxy you run).
    #[arg(long, env = "BOXOFFICE_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// WebSocket and SSE connections this process accepts at once.
    #[arg(long, env = "BOXOFFICE_MAX_LIVE_CONNECTIONS", default_value_t = 10_000)]
    max_live_connections: usize,
    /// Changes to one show within this many milliseconds of its last live send go out
    /// together (0: each at once).
    #[arg(long, env = "BOXOFFICE_LIVE_BATCH_MS", default_value_t = 100)]
    live_batch_ms: u64,
    /// Milliseconds a seat map or show view may be served from memory; changes anywhere in the
    /// cluster invalidate it at once, so this only bounds staleness if a change notice is lost.
    #[arg(long, env = "BOXOFFICE_READ_CACHE_MS", default_value_t = 250)]
    read_cache_ms: i64,
    /// Milliseconds a session check is reused; sign-outs and account changes clear it on every
    /// instance at once (through Redis), so this only bounds a lost notice. 0 checks every request.
    #[arg(long, env = "BOXOFFICE_SESSION_CACHE_MS", default_value_t = 1_000)]
    session_cache_ms: i64,
    /// Milliseconds between sweeps of expired holds.
    #[arg(long, env = "BOXOFFICE_SWEEP_MS", default_value_t = 5_000)]
    sweep_ms: u64,
    /// Send customer e-mail over SMTP: `smtps://USER:PASSWORD@HOST` (TLS), or
    /// `smtp://HOST:587?tls=required` (STARTTLS). Without it, mail is written to --mail-dir.
    #[arg(long, env = "BOXOFFICE_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of customer e-mail.
    #[arg(
        long,
        env = "BOXOFFICE_MAIL_FROM",
        default_value = "Boxoffice <tickets@boxoffice.invalid>"
    )]
    mail_from: String,
    /// Where `.eml` files go when no SMTP server is set.
    #[arg(long, env = "BOXOFFICE_MAIL_DIR", default_value = "mail")]
    mail_dir: std::path::PathBuf,
    /// The address customers reach the pages at, for links in e-mail (default: the listen address).
    #[arg(long, env = "BOXOFFICE_PUBLIC_URL")]
    public_url: Option<String>,
}

impl ServeArgs {
    fn config(&self) -> boxoffice_server::Config {
        let defaults = boxoffice_server::Config::default();
        boxoffice_server::Config {
            cookie_secure: self.cookie_secure,
            token_ttl_minutes: self.token_ttl_minutes,
            redis_url: self.redis_url.clone(),
            rate_limits: RateLimits {
                ip: self.rate_ip,
                auth: self.rate_auth,
                user: self.rate_user,
                orders: self.rate_orders,
            },
            trust_forwarded_for: self.trust_forwarded_for,
            live: boxoffice_server::live::LiveLimits {
                max_connections: self.max_live_connections,
                batch: std::time::Duration::from_millis(self.live_batch_ms),
                ..defaults.live.clone()
            },
            sweep_interval: std::time::Duration::from_millis(self.sweep_ms.max(10)),
            read_cache_ms: self.read_cache_ms.max(0),
            session_cache_ms: self.session_cache_ms.max(0),
            mail: boxoffice_server::mail::MailSettings {
                smtp_url: self.smtp_url.clone(),
                from: self.mail_from.clone(),
                folder: self.mail_dir.clone(),
                public_url: self.public_url.clone(),
            },
            ..defaults
        }
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    /// `flash-sale`, `browse`, `fanout` (WebSocket viewers; --clients is the viewer count) or
    /// `queue-join` (the waiting room over HTTP, and a line of --people in process).
    scenario: String,
    /// Base URL(s) of the server(s), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    target: Vec<String>,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Stop after this many operations.
    #[arg(long)]
    requests: Option<u64>,
    /// Reserved seats of the flash-sale show.
    #[arg(long, default_value_t = 200)]
    seats: usize,
    /// General-admission places of the flash-sale show.
    #[arg(long, default_value_t = 300)]
    ga: i64,
    /// The servers' PostgreSQL, to measure its ceiling with pgbench.
    #[arg(long)]
    pg_url: Option<String>,
    /// Seconds each ceiling is measured for.
    #[arg(long, default_value_t = 5)]
    ceiling_seconds: u64,
    /// People put in the line by queue-join's in-process part.
    #[arg(long, default_value_t = 1_000_000)]
    people: u64,
    /// A Redis for queue-join to measure the shared line in.
    #[arg(long)]
    redis_url: Option<String>,
    /// fanout: seat changes per second, all sellers together (default: as fast as they can).
    #[arg(long)]
    rate: Option<f64>,
    /// flash-sale: the share of granted holds paid (the rest are released); 0 measures the
    /// hold path alone.
    #[arg(long, default_value_t = 0.8)]
    pay_share: f64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let scenario = boxoffice_bench::Scenario::parse(&args.scenario).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown scenario {:?}: use flash-sale, browse, fanout or queue-join",
            args.scenario
        )
    })?;
    let options = boxoffice_bench::Options {
        targets: args.target,
        clients: args.clients,
        duration: std::time::Duration::from_secs_f64(args.duration.max(0.1)),
        max_requests: args.requests,
        seats: args.seats,
        ga_capacity: args.ga,
        pg_url: args.pg_url,
        ceiling_duration: std::time::Duration::from_secs(args.ceiling_seconds.max(1)),
        people: args.people.max(1),
        redis_url: args.redis_url,
        change_rate: args.rate.filter(|r| *r > 0.0),
        pay_share: args.pay_share,
    };
    let report = boxoffice_bench::run(scenario, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let clean = report.checker.as_ref().is_none_or(|v| v.clean);
    anyhow::ensure!(clean, "the checker found violations");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut cli = parse_cli(args.clone()).unwrap_or_else(|error| exit_with(error));
    if cli.command.is_none() {
        // No subcommand means `serve`, with its settings from flags, environment and file.
        let serve = ["boxoffice".to_owned(), "serve".to_owned()]
            .into_iter()
            .chain(args.into_iter().skip(1))
            .collect();
        cli = parse_cli(serve).unwrap_or_else(|error| exit_with(error));
    }
    // The bench prints its report on stdout, so its own log lines go to stderr.
    init_logs(matches!(cli.command, Some(Command::Bench(_))));
    let command = cli.command.expect("serve is the default");
    if let Command::Bench(args) = command {
        return bench(args).await;
    }
    let store = boxoffice_store::connect(&cli.database.url)
        .await
        .with_context(|| format!("open {}", cli.database.url))?;
    store.migrate().await.context("migrate the database")?;
    match command {
        Command::Migrate => {
            tracing::info!(engine = store.engine(), "migrations applied");
            Ok(())
        }
        Command::Bench(_) => unreachable!("handled before the store is opened"),
        Command::Seed => {
            let app =
                boxoffice_server::state(store, Arc::new(SystemClock), Default::default()).await?;
            announce_demo(demo::seed(&app).await?);
            Ok(())
        }
        Command::Serve(args) => {
            let app = boxoffice_server::state(store.clone(), Arc::new(SystemClock), args.config())
                .await?;
            if !args.no_demo {
                announce_demo(demo::seed(&app).await?);
            }
            let listen = &args.listen;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listen on {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, engine = store.engine(), redis = args.redis_url.is_some(), "boxoffice is serving");
            boxoffice_server::serve(listener, app, shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

fn init_logs(to_stderr: bool) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("BOXOFFICE_LOG")
            .unwrap_or_else(|_| "info,sqlx=warn".into())
    };
    let writer = move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    // JSON for production log pipelines; readable lines for a terminal. Either way every line of
    // a request carries its span, and so its request id.
    match std::env::var("BOXOFFICE_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter(filter())
            .with_writer(writer)
            .init(),
        _ => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(writer)
            .init(),
    }
}

/// Clap's own errors (and `--help`) print as clap prints them; others as one line.
fn exit_with(error: anyhow::Error) -> ! {
    match error.downcast::<clap::Error>() {
        Ok(clap_error) => clap_error.exit(),
        Err(other) => {
            eprintln!("error: {other:#}");
            std::process::exit(2)
        }
    }
}

fn announce_demo(seeded: bool) {
    if seeded {
        let accounts: Vec<_> = demo::DEMO_ACCOUNTS
            .iter()
            .map(|(email, _, _)| *email)
            .collect();
        tracing::info!(
            "demo data seeded; sign in as {} with password {:?} (demo only)",
            accounts.join(", "),
            demo::DEMO_PASSWORD
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
