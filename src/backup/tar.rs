//! A minimal ustar (POSIX tar) codec: enough to write a backup that `tar`
//! can list and extract, and to read one back. Pure: headers are encoded to
//! and decoded from 512-byte blocks; the caller moves the bytes.
//!
//! Only regular files and directories; names up to 255 bytes (split into
//! ustar's prefix and name fields). Decoding rejects what a backup never
//! holds: links, devices, absolute names, `..`, bad checksums, sizes that
//! are not octal.

pub const BLOCK: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
    pub kind: Kind,
}

fn put_octal(field: &mut [u8], value: u64) -> Result<(), String> {
    // width-1 octal digits and a NUL.
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return Err(format!("value {value} does not fit a tar header field"));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Splits a path into ustar's (prefix, name).
fn split_name(path: &str) -> Result<(&str, &str), String> {
    if path.len() <= 100 {
        return Ok(("", path));
    }
    // The prefix ends at a '/', is at most 155 bytes, the name at most 100.
    for (i, b) in path.bytes().enumerate().rev() {
        if b == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            return Ok((&path[..i], &path[i + 1..]));
        }
    }
    Err(format!("path too long for the archive: {path}"))
}

/// The 512-byte header block of an entry.
pub fn encode(h: &Header) -> Result<[u8; BLOCK], String> {
    let mut b = [0u8; BLOCK];
    let (prefix, name) = split_name(&h.path)?;
    b[..name.len()].copy_from_slice(name.as_bytes());
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777))?;
    put_octal(&mut b[108..116], 0)?;
    put_octal(&mut b[116..124], 0)?;
    put_octal(&mut b[124..136], h.size)?;
    put_octal(&mut b[136..148], h.mtime)?;
    b[156] = match h.kind {
        Kind::File => b'0',
        Kind::Dir => b'5',
    };
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    Ok(b)
}

fn field_str(f: &[u8]) -> Result<&str, String> {
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    std::str::from_utf8(&f[..end]).map_err(|_| "a name in the archive is not UTF-8".to_string())
}

fn parse_octal(f: &[u8]) -> Result<u64, String> {
    let mut v: u64 = 0;
    let mut any = false;
    for &c in f {
        match c {
            b'0'..=b'7' => {
                any = true;
                v = v
                    .checked_mul(8)
                    .and_then(|x| x.checked_add(u64::from(c - b'0')))
                    .ok_or("a number in the archive is too large")?;
            }
            b' ' | 0 if !any => continue,
            b' ' | 0 => break,
            _ => return Err("a number in the archive is not octal".into()),
        }
    }
    Ok(v)
}

/// Whether a relative archive path is safe to extract under a directory.
pub fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Decodes one header block; `Ok(None)` for the all-zero end block.
pub fn decode(b: &[u8; BLOCK]) -> Result<Option<Header>, String> {
    if b.iter().all(|&c| c == 0) {
        return Ok(None);
    }
    let stored = parse_octal(&b[148..156])?;
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(x)
            }
        })
        .sum();
    if stored != sum {
        return Err("the archive is damaged (a header checksum does not match)".into());
    }
    if &b[257..262] != b"ustar" {
        return Err("not a ustar archive".into());
    }
    let name = field_str(&b[..100])?;
    let prefix = field_str(&b[345..500])?;
    let path = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    };
    let path = path.trim_end_matches('/').to_string();
    if !safe_path(&path) {
        return Err(format!("unsafe path in the archive: {path:?}"));
    }
    let kind = match b[156] {
        b'0' | 0 => Kind::File,
        b'5' => Kind::Dir,
        other => {
            return Err(format!(
            "unsupported entry type {:?} for {path} (a backup holds only files and directories)",
            other as char
        ))
        }
    };
    Ok(Some(Header {
        path,
        mode: parse_octal(&b[100..108])? as u32 & 0o7777,
        size: parse_octal(&b[124..136])?,
        mtime: parse_octal(&b[136..148])?,
        kind,
    }))
}

/// Zero bytes that pad `size` to a whole block.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(path: &str, size: u64) -> Header {
        Header {
            path: path.into(),
            mode: 0o600,
            size,
            mtime: 1_700_000_000,
            kind: Kind::File,
        }
    }

    #[test]
    fn headers_round_trip_including_long_names() {
        let long = format!("workspace/{}/{}", "d".repeat(120), "f".repeat(90));
        for hd in [h(".env", 12), h(&long, (1 << 33) - 1)] {
            let b = encode(&hd).expect("encode");
            assert_eq!(decode(&b).expect("decode"), Some(hd));
        }
        assert!(encode(&h(&"x".repeat(300), 1)).is_err());
        assert!(encode(&h("big", 1 << 33)).is_err());
    }

    #[test]
    fn hostile_headers_are_errors() {
        let mut b = encode(&h("a", 1)).expect("encode");
        b[0] = b'b';
        assert!(decode(&b).unwrap_err().contains("checksum"));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "./a"] {
            let mut hd = h("x", 1);
            hd.path = bad.into();
            let b = encode(&hd).expect("encode");
            assert!(decode(&b).is_err(), "{bad}");
        }
        let mut b = encode(&h("a", 1)).expect("encode");
        b[156] = b'2'; // a symlink
        b[148..156].copy_from_slice(b"        ");
        let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(decode(&b).unwrap_err().contains("unsupported"));
        assert_eq!(decode(&[0u8; BLOCK]).expect("end"), None);
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
    }

    #[test]
    fn system_tar_lists_what_we_write() {
        let dir = std::env::temp_dir().join(format!("pinch-tar-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("t.tar");
        let mut out = Vec::new();
        let body = b"hello";
        out.extend_from_slice(&encode(&h("workspace/MEMORY.md", body.len() as u64)).expect("e"));
        out.extend_from_slice(body);
        out.extend(std::iter::repeat(0).take(padding(body.len() as u64)));
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        std::fs::write(&file, &out).expect("write");
        match std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&file)
            .output()
        {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                assert!(text.contains("workspace/MEMORY.md"), "{text}");
            }
            Err(e) => println!("SKIPPED: no tar to cross-check with ({e})"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
