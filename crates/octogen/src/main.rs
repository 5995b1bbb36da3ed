//! `octogen`: the server and its command-line tools in one binary.

/// Every `println!` of this crate goes through `output::print_line`, which
/// exits quietly when the reader of standard output has gone away
/// (`octogen … | head -1`) where `std::println!` would panic (exit 101).
macro_rules! println {
    () => {
        $crate::output::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::print_line(format_args!($($arg)*))
    };
}

mod admin_client;
mod cli_error;
mod commands;
mod duration;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::cli_error::CliResult;

/// mimalloc instead of glibc malloc: the server allocates per request and per
/// search hit, and glibc's allocator was about a tenth of its CPU under load
/// (BENCHMARKS.md §1).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "octogen",
    version,
    about = "Self-hosted Octogen Platform Catalog API: server, operator and client commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(commands::serve::ServeArgs),
    /// Run the server on embedded defaults with a sample catalog, and print a working API key.
    Demo(commands::serve::DemoArgs),
    /// Operator commands against a running server: organizations, catalogs, grants.
    Admin {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: commands::admin::AdminCommand,
    },
    /// Import a catalog feed into a running server (one index run).
    Catalog {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Manage organizations' API keys on a running server.
    Keys {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
    /// List the catalogs your API key may search (key from OCTO_API_KEY).
    Catalogs(commands::client::CatalogsArgs),
    /// Search products in your granted catalogs (key from OCTO_API_KEY).
    Search(commands::client::SearchArgs),
    /// Look up a product by its page URL (key from OCTO_API_KEY).
    Lookup(commands::client::LookupArgs),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Import a feed file or URL: products seen are added or updated, products not seen become inactive.
    Import(commands::catalog::ImportArgs),
}

/// The server operator commands reach when `OCTOGEN_SERVER` is not set.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// Where operator commands look for a local server's token when `OCTOGEN_DATA_DIR` is not set.
pub const DEFAULT_DATA_DIR: &str = "octogen-data";

/// How operator commands reach the server.
#[derive(Args, Clone)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "OCTOGEN_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Operator token. Default: $OCTOGEN_ADMIN_TOKEN, else the token file in --data-dir (prefer
    /// those: flags are visible to other local users).
    #[arg(long = "admin-token", global = true)]
    pub admin_token: Option<SecretString>,
    /// Data directory of a local server, to find the operator token it generated.
    #[arg(long, env = "OCTOGEN_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    pub fn admin_client(&self) -> CliResult<admin_client::AdminClient> {
        admin_client::AdminClient::new(&self.server, self.admin_token.clone(), &self.data_dir)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::serve(args).await,
            Command::Demo(args) => commands::serve::demo(args).await,
            Command::Admin { connection, command } => commands::admin::run(&connection, command).await,
            Command::Keys { connection, command } => commands::keys::run(&connection, command).await,
            Command::Catalogs(args) => commands::client::catalogs(args).await,
            Command::Search(args) => commands::client::search(args).await,
            Command::Lookup(args) => commands::client::lookup(args).await,
            Command::Catalog { connection, command: CatalogCommand::Import(args) } => {
                commands::catalog::import(&connection, args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}
