//! ARMv5 (armel) release builds: the thread pointer through the kernel.
//!
//! On ARM, code reaches thread-local storage through `__aeabi_read_tp`. The
//! release linker's runtime (Zig's compiler-rt) defines it as `mrc p15, 0,
//! r0, c13, c0, 3`, an ARMv6K instruction: on an ARMv5 CPU (Kirkwood NAS
//! boxes) every thread-local access would be an illegal instruction. This
//! strong definition, the same as glibc's own for armel, jumps to the
//! kernel's user helper `__kuser_get_tls` at 0xffff0fe0 instead, which
//! every ARM Linux kernel provides and which, as the EABI requires of
//! `__aeabi_read_tp`, changes only r0. Hard-float builds (armv7) keep the
//! instruction: their CPUs have it.

#[cfg(all(target_arch = "arm", target_os = "linux", target_abi = "eabi"))]
std::arch::global_asm!(
    ".text",
    ".globl __aeabi_read_tp",
    ".type __aeabi_read_tp, %function",
    ".p2align 2",
    "__aeabi_read_tp:",
    // r0 = 0xffff0fff; pc = r0 - 31 = 0xffff0fe0; the helper returns to lr.
    "mvn r0, #0xf000",
    "sub pc, r0, #31",
    ".size __aeabi_read_tp, . - __aeabi_read_tp",
);

#[cfg(test)]
mod tests {
    #[test]
    fn thread_locals_work_in_new_threads() {
        thread_local!(static SLOT: std::cell::Cell<u32> = const { std::cell::Cell::new(7) });
        SLOT.with(|s| s.set(11));
        let other = std::thread::spawn(|| SLOT.with(|s| s.get())).join();
        assert_eq!(other.ok(), Some(7));
        assert_eq!(SLOT.with(|s| s.get()), 11);
    }
}
