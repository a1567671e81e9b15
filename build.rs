//! Build script: on Linux, links the functions an idle gateway runs next to
//! each other (`cross/idle-code.ld`, written by `bench/idle_code.sh`). The
//! kernel maps code in 64 KiB blocks around each page touched, so idle
//! wake-ups spread over the whole binary keep most of it resident; packed
//! together they keep a few blocks. The script only adds an output section
//! before `.text` (GNU ld and lld both read `INSERT BEFORE`).

fn main() {
    println!("cargo:rerun-if-changed=cross/idle-code.ld");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let script = std::path::Path::new(&dir).join("cross/idle-code.ld");
    if linux && script.is_file() && !dir.contains([' ', ',']) {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
