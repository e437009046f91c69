//! Logging for both binaries: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json`
//! gives one JSON object per line for log shippers, anything else readable text.
//! Logs go to stderr so that stdout stays free for command output (`kafka-worker publish`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
