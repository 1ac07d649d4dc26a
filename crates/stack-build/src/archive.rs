//! `ADD` of a local tar archive: Docker unpacks it instead of copying it.
//! Recognised by content, not name: plain or gzip tar is unpacked; a bzip2,
//! xz or zstd stream is refused rather than copied as a file the user did
//! not mean to have.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::GzDecoder;

/// A tar stream ready to unpack.
pub struct Archive(Box<dyn Read>);

/// `path` as a tar archive, or `None` when it is not one.
pub fn open(path: &Path) -> io::Result<Option<Archive>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut f, &mut magic)?;
    let magic = &magic[..n];
    f.seek(SeekFrom::Start(0))?;
    let compressed = |what: &str| {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ADD of a {what}-compressed archive is not supported (plain or gzip tar is)"),
        ))
    };
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(GzDecoder::new(f))
    } else if magic.starts_with(b"BZh") {
        return compressed("bzip2");
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return compressed("xz");
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return compressed("zstd");
    } else {
        Box::new(f)
    };
    // A tar header says `ustar` at offset 257; read the first block to see.
    let mut reader = reader;
    let mut header = vec![0u8; 512];
    let n = read_up_to(&mut reader, &mut header)?;
    if n < 512 || &header[257..262] != b"ustar" {
        // gzip of something else, or any other file: copied as it is.
        return Ok(None);
    }
    let rest = io::Cursor::new(header).chain(reader);
    Ok(Some(Archive(Box::new(rest))))
}

/// Unpacks into `dest` (made if missing), owners and modes as in the
/// archive; entries that would land outside `dest` (`..`, through a link)
/// are refused by the `tar` crate.
pub fn unpack(archive: Archive, dest: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut a = tar::Archive::new(archive.0);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_unpack_xattrs(true);
    a.set_overwrite(true);
    a.unpack(dest)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(gzip: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "d/f", &b"abc"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        if !gzip {
            return bytes;
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn tar_and_gzip_unpack_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        for gzip in [false, true] {
            let src = dir.path().join(format!("a{gzip}.tar"));
            std::fs::write(&src, tarball(gzip)).unwrap();
            let out = dir.path().join(format!("out{gzip}"));
            unpack(open(&src).unwrap().expect("an archive"), &out).unwrap();
            assert_eq!(std::fs::read(out.join("d/f")).unwrap(), b"abc");
        }
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "not an archive").unwrap();
        assert!(open(&plain).unwrap().is_none());
        let bz = dir.path().join("x.tar.bz2");
        std::fs::write(&bz, b"BZh91AY&SY").unwrap();
        let e = open(&bz).err().unwrap();
        assert!(e.to_string().contains("bzip2"), "{e}");
    }
}
