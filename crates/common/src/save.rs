//! `--save PATH`: every received payload's bytes appended to a file, in arrival order
//! (NetAssist's "receive to file"). Nothing is added between datagrams: a file sent in
//! chunks is saved as the file, and a lost chunk is a hole in it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// An open `--save` file.
#[derive(Debug)]
pub struct Save {
    path: PathBuf,
    file: BufWriter<File>,
    bytes: u64,
}

impl Save {
    /// Opens (creating it if need be) `path` for appending, at start-up: a path that cannot
    /// be written fails now, before anything is received.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the path and the OS error.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
            Error::Usage(format!(
                "cannot write --save {}: {}",
                path.display(),
                crate::error::describe(&e)
            ))
        })?;
        Ok(Save {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
            bytes: 0,
        })
    }

    /// Appends one payload.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the write fails (a full disk).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::io(format!("cannot write to {}", self.path.display()), &e))?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered and says what was saved: `saved 1048576 B to out.bin`.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the flush fails.
    pub fn finish(mut self) -> Result<String> {
        self.file
            .flush()
            .map_err(|e| Error::io(format!("cannot write to {}", self.path.display()), &e))?;
        Ok(format!("saved {} B to {}", self.bytes, self.path.display()))
    }

    /// Bytes saved so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_appended_as_they_are_and_a_bad_path_fails_at_once() {
        let path = std::env::temp_dir().join(format!("udp-save-{}.bin", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut save = Save::open(&path).unwrap();
        save.write(b"ab").unwrap();
        save.write(b"").unwrap();
        save.write(&[0, 0xff]).unwrap();
        assert_eq!(save.bytes(), 4);
        assert!(save.finish().unwrap().starts_with("saved 4 B to "));
        assert_eq!(std::fs::read(&path).unwrap(), [b'a', b'b', 0, 0xff]);
        std::fs::remove_file(&path).unwrap();
        let err = Save::open(Path::new("/nonexistent-dir/out.bin")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .starts_with("cannot write --save /nonexistent-dir/out.bin: "),
            "{err}"
        );
    }
}
