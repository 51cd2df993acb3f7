//! The Boxoffice binary: `serve` (the default), `migrate` and `seed`.

use anyhow::Context;
use boxoffice_core::SystemClock;
use boxoffice_server::demo;
use clap::{Parser, Subcommand};
use std::sync::Arc;

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
    Serve {
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
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Seed demo data into an empty database and exit.
    Seed,
    /// Drive running servers over HTTP and report throughput, latency and the checker's verdict.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// `flash-sale` or `browse`.
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
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let scenario = boxoffice_bench::Scenario::parse(&args.scenario).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown scenario {:?}: use flash-sale or browse",
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
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("BOXOFFICE_LOG")
            .unwrap_or_else(|_| "info,sqlx=warn".into())
    };
    // JSON for production log pipelines; readable lines for a terminal. Either way every line of
    // a request carries its span, and so its request id.
    match std::env::var("BOXOFFICE_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter(filter())
            .init(),
        _ => tracing_subscriber::fmt().with_env_filter(filter()).init(),
    }
    let cli = Cli::parse();
    if let Some(Command::Bench(args)) = cli.command {
        return bench(args).await;
    }
    let command = cli.command.unwrap_or(Command::Serve {
        listen: std::env::var("BOXOFFICE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into()),
        no_demo: false,
        cookie_secure: false,
        token_ttl_minutes: 15,
    });
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
        Command::Serve {
            listen,
            no_demo,
            cookie_secure,
            token_ttl_minutes,
        } => {
            let config = boxoffice_server::Config {
                cookie_secure,
                token_ttl_minutes,
                ..Default::default()
            };
            let app = boxoffice_server::state(store.clone(), Arc::new(SystemClock), config).await?;
            if !no_demo {
                announce_demo(demo::seed(&app).await?);
            }
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("listen on {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, engine = store.engine(), "boxoffice is serving");
            boxoffice_server::serve(listener, app, shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
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
