//! The idle-code layout is in the binary: `build.rs` linked it with
//! `cross/idle-code.ld`, so the functions an idle gateway runs sit in
//! `.text.idle`, before `.text`, and the script's patterns still match a
//! good share of them (a rename of idle code would shrink the section; a
//! stale script empties it).

#![cfg(target_os = "linux")]

/// (name, address, size) of every section of a 64-bit little-endian ELF.
fn sections(elf: &[u8]) -> Vec<(String, u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes"));
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF file");
    assert_eq!((elf[4], elf[5]), (2, 1), "64-bit little-endian");
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(0x28) as usize,
        u16_at(0x3a),
        u16_at(0x3c),
        u16_at(0x3e),
    );
    let header = |i: usize| shoff + i * shentsize;
    let names_at = u64_at(header(shstrndx) + 0x18) as usize;
    (0..shnum)
        .map(|i| {
            let h = header(i);
            let name_off =
                names_at + u32::from_le_bytes(elf[h..h + 4].try_into().expect("4")) as usize;
            let end = elf[name_off..].iter().position(|&b| b == 0).expect("NUL");
            let name = String::from_utf8_lossy(&elf[name_off..name_off + end]).into_owned();
            (name, u64_at(h + 0x10), u64_at(h + 0x20))
        })
        .collect()
}

#[test]
fn idle_code_is_linked_together_before_the_rest() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_pinch")).expect("the pinch binary");
    let all = sections(&elf);
    let find = |name: &str| all.iter().find(|s| s.0 == name).cloned();
    let idle = find(".text.idle").expect(".text.idle: build.rs links cross/idle-code.ld");
    let text = find(".text").expect(".text");
    assert!(
        idle.1 < text.1,
        "idle code before the rest: {idle:?} {text:?}"
    );
    // Release: about 540 KB; a debug build's functions are larger.
    assert!(
        idle.2 > 200 * 1024,
        "the patterns match the idle functions ({} bytes; regenerate with bench/idle_code.sh)",
        idle.2
    );
}
