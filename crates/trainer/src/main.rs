//! The `gatecast` command line.

fn main() {
    eprintln!(
        "gatecast {}: the train/evaluate/forecast commands are not built yet.\n\
         Until then, `cargo run --release --example synthetic_lstm` trains an LSTM on synthetic data.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
