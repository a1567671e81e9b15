//! The `pinch` binary: everything is in the library; see `cli.rs`.

fn main() {
    std::process::exit(pinch::cli::main());
}
