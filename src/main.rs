//! The `scimgate` command line: `demo`, `run`, `check`, `reload`, `log`, `token new` /
//! `token list` / `token revoke`, `brake status` / `brake release` / `brake hold`, and
//! `store migrate` / `store copy` for a PostgreSQL store.

use clap::{Parser, Subcommand};
use scimgate::commands::{self, CommandError, DemoOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// SCIM 2.0 gateway in front of a legacy user service.
#[derive(Parser)]
#[command(name = "scimgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the built-in legacy service and the gateway in front of it.
    Demo {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The SCIM API key (random when omitted).
        #[arg(long)]
        token: Option<String>,
        /// The seeded members' password (random when omitted).
        #[arg(long)]
        password: Option<String>,
        /// Folder for state (a fresh temporary folder when omitted).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Run the gateway as configured.
    Run {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Take the listening sockets over from the running instance (graceful binary upgrade;
        /// then send the old process SIGQUIT).
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a config file; exits non-zero when it has problems.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Ask the gateway running with this config to reload it (same as SIGHUP).
    Reload {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the most recent provisioning events (server.provisioning_log).
    Log {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Manage SCIM API keys.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The brake on mass deprovisioning: status, release, hold.
    Brake {
        #[command(subcommand)]
        action: BrakeAction,
    },
    /// Manage a PostgreSQL store ([store] url): migrate its schema, copy a SQLite store into it.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Apply the schema migrations the database lacks (for [store] migrate = "manual").
    Migrate {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Copy a SQLite store (users, managed flags, stored attributes, timestamps, pending
    /// creates, brake holds) into the config's PostgreSQL store; running it again has nothing to do.
    Copy {
        /// The SQLite store file to copy from.
        #[arg(long)]
        from: PathBuf,
        /// The config file naming the PostgreSQL store.
        #[arg(long)]
        config: PathBuf,
        /// Replace rows PostgreSQL already holds with other data (otherwise nothing is copied).
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Subcommand)]
enum BrakeAction {
    /// Show each tenant's thresholds, current window and hold (since when, how many refused).
    Status {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// End a tenant's hold: a fresh window opens and the identity provider's retries go through.
    Release {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// Deactivations and deletes the fresh window allows beyond the threshold (to let a
        /// reviewed mass offboarding through).
        #[arg(long, default_value_t = 0)]
        allow: u64,
    },
    /// Hold a tenant's deactivations and deletes by hand, until `brake release`.
    Hold {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Print a new key once, and the hash line to paste into the config.
    New {
        /// The tenant the key acts for.
        #[arg(long)]
        tenant: String,
    },
    /// List every key, the config's and the store's: id, tenant, label, source, created, created
    /// by, last used, revoked (never a secret or hash).
    List {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke a store key at once (a config key is refused: remove it from the file and reload).
    Revoke {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The key's id (as `token list` shows it).
        key_id: String,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            listen,
            token,
            password,
            data,
        } => demo(listen, token, password, data),
        Command::Run { config, upgrade } => commands::run(&config, upgrade),
        Command::Check { config } => commands::check(&config).map(|report| println!("{report}")),
        Command::Reload { config } => commands::reload(&config).map(|report| println!("{report}")),
        Command::Log { config, lines } => {
            commands::log(&config, lines).map(|report| println!("{report}"))
        }
        Command::Token {
            action: TokenAction::New { tenant },
        } => {
            print!("{}", commands::token_new(&tenant));
            Ok(())
        }
        Command::Token {
            action: TokenAction::List { config },
        } => commands::token::list(&config).map(|report| println!("{report}")),
        Command::Token {
            action: TokenAction::Revoke { config, key_id },
        } => commands::token::revoke(&config, &key_id).map(|report| println!("{report}")),
        Command::Brake {
            action: BrakeAction::Status { config, tenant },
        } => commands::brake::status(&config, tenant.as_deref()).map(|r| println!("{r}")),
        Command::Brake {
            action:
                BrakeAction::Release {
                    config,
                    tenant,
                    allow,
                },
        } => commands::brake::release(&config, &tenant, allow).map(|r| println!("{r}")),
        Command::Brake {
            action: BrakeAction::Hold { config, tenant },
        } => commands::brake::hold(&config, &tenant).map(|r| println!("{r}")),
        Command::Store {
            action: StoreAction::Migrate { config },
        } => commands::store::migrate(&config).map(|report| println!("{report}")),
        Command::Store {
            action:
                StoreAction::Copy {
                    from,
                    config,
                    overwrite,
                },
        } => commands::store::copy(&from, &config, overwrite).map(|report| println!("{report}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(message.exit_code())
        }
    }
}

fn demo(
    listen: SocketAddr,
    token: Option<String>,
    password: Option<String>,
    data: Option<PathBuf>,
) -> Result<(), CommandError> {
    let data = match data {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("scimgate-demo-")
            .tempdir()
            .map_err(CommandError::TempDir)?
            .keep(),
    };
    let password = password.unwrap_or_else(|| {
        let key = scimgate::auth::generate_key();
        key[scimgate::auth::KEY_PREFIX.len()..][..16].to_string()
    });
    let token = token.unwrap_or_else(scimgate::auth::generate_key);
    commands::demo(DemoOptions {
        listen,
        token,
        password,
        data,
    })
}

/// pingora's HTTP/1 client logs every request head it writes at trace level, backend
/// credentials included: those events are dropped, whatever `RUST_LOG` says.
const NEVER_TRACED: &str = "pingora_core::protocols::http::v1::client";

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora=warn"));
    let no_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE || !meta.target().starts_with(NEVER_TRACED)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(no_secrets),
        )
        .init();
}
