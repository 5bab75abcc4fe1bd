//! `--save PATH`: every received payload's bytes appended to a file, in arrival order
//! (NetAssist's "receive to file"). Nothing is added between datagrams: a file sent in
//! chunks is saved as the file, and a lost chunk is a hole in it.
//!
//! PATH may be a FIFO (`mkfifo`) read by another program. Two things could then hang the
//! program, and neither does: opening a FIFO nobody reads fails at once (it would wait for a
//! reader, before the `listening` line, deaf to Ctrl-C), and a reader that stops reading
//! (`kill -STOP`) makes writes wait only until a stop is asked for ([`Save::stop_on`]).
//! A write that fails (a full disk) is said once; what could not be written is counted and
//! the program carries on, so its summary is still printed.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{describe, echo_path, hint};
use crate::shutdown::Shutdown;
use crate::{Error, Result};

/// Bytes gathered before they are written: one system call per 64 KiB, not per datagram.
const BUFFER: usize = 64 * 1024;

/// An open `--save` file.
#[derive(Debug)]
pub struct Save {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Bytes handed to [`Save::write`].
    bytes: u64,
    /// Bytes that could not be written (after `failure`).
    lost: u64,
    /// Why writing stopped, if it did, and what was saved; shared with [`Save::status`].
    status: Arc<Mutex<SaveStatus>>,
    /// A stop request ends a wait for a reader that does not read.
    stop: Option<Shutdown>,
}

impl Save {
    /// Opens (creating it if need be) `path` for appending, at start-up: a path that cannot
    /// be written fails now, before anything is received.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the path and the OS error (a missing directory, no
    /// permission); [`Error::Runtime`] for a FIFO nobody reads yet, too many open files or
    /// another fault of the machine's.
    pub fn open(path: &Path) -> Result<Self> {
        let what = format!("cannot write --save {}", echo_path(path));
        let file = open_append(path).map_err(|e| {
            if is_fifo_without_reader(&e) {
                Error::Runtime(format!(
                    "{what}: it is a FIFO and nobody reads it yet: start its reader first (e.g. cat {} > copy.bin &)",
                    echo_path(path)
                ))
            } else {
                Error::path(&what, &e)
            }
        })?;
        Ok(Save {
            path: path.to_path_buf(),
            file,
            buffer: Vec::with_capacity(BUFFER),
            bytes: 0,
            lost: 0,
            status: Arc::default(),
            stop: None,
        })
    }

    /// Gives up waiting for a FIFO's reader once `shutdown` is triggered, so a reader that
    /// stopped reading cannot keep the program from stopping.
    pub fn stop_on(mut self, shutdown: &Shutdown) -> Self {
        self.stop = Some(shutdown.clone());
        self
    }

    /// What happened to the file, for after the run: read it once [`Save::finish`] has
    /// run (a program exits 1 when writing failed).
    pub fn status(&self) -> Arc<Mutex<SaveStatus>> {
        Arc::clone(&self.status)
    }

    /// Appends one payload. A write that fails is said once (a warning); from then on the
    /// bytes are counted as not written.
    ///
    /// # Errors
    /// None today: a failing file no longer stops the program (the signature stays for the
    /// programs that call it).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.bytes += data.len() as u64;
        if self.has_failed() {
            self.lost += data.len() as u64;
            return Ok(());
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= BUFFER {
            self.write_buffer();
        }
        Ok(())
    }

    /// Writes out what is buffered and says what was saved: `saved 1048576 B to out.bin`,
    /// and what could not be: `; 4096 B could not be written: no space left on device …`.
    ///
    /// # Errors
    /// None today (see [`Save::write`]).
    pub fn finish(mut self) -> Result<String> {
        self.settle();
        let path = echo_path(&self.path);
        let status = lock(&self.status);
        let mut text = format!("saved {} B to {path}", status.saved);
        if let Some(why) = status.failure.as_deref() {
            text += &format!("; {} B could not be written: {why}", self.lost);
        }
        Ok(text)
    }

    /// Bytes saved so far (handed over and not known to be lost).
    pub fn bytes(&self) -> u64 {
        self.bytes - self.lost
    }

    /// Writes what is buffered and records what was saved.
    fn settle(&mut self) {
        self.write_buffer();
        lock(&self.status).saved = self.bytes - self.lost;
    }

    fn has_failed(&self) -> bool {
        lock(&self.status).failure.is_some()
    }

    /// Writes the buffer, waiting for a slow reader unless a stop was asked for.
    fn write_buffer(&mut self) {
        let mut written = 0;
        while written < self.buffer.len() {
            match self.file.write(&self.buffer[written..]) {
                Ok(0) => {
                    self.fail(written, "the file accepts no more bytes".into());
                    return;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.stop.as_ref().is_some_and(Shutdown::is_triggered) {
                        self.fail(
                            written,
                            "its reader is not reading (the program was asked to stop)".into(),
                        );
                        return;
                    }
                    wait_writable(&self.file);
                }
                Err(e) => {
                    let why = format!("{}{}", describe(&e), hint(&e));
                    self.fail(written, why);
                    return;
                }
            }
        }
        self.buffer.clear();
    }

    /// Writing stopped with `written` bytes of the buffer out: the rest is lost.
    fn fail(&mut self, written: usize, why: String) {
        self.lost += (self.buffer.len() - written) as u64;
        self.buffer.clear();
        log::warn!(
            "--save {}: {why}; the rest is not saved (counted in the summary)",
            echo_path(&self.path)
        );
        lock(&self.status).failure = Some(why);
    }
}

/// What became of a `--save` file (see [`Save::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveStatus {
    /// Why writing stopped, if it did.
    pub failure: Option<String>,
    /// Bytes written, once [`Save::finish`] has run.
    pub saved: u64,
}

impl Drop for Save {
    /// What is buffered is written even when [`Save::finish`] is never called (a caller
    /// that logs its result at a level turned off, an early return).
    fn drop(&mut self) {
        self.settle();
    }
}

fn lock(status: &Mutex<SaveStatus>) -> std::sync::MutexGuard<'_, SaveStatus> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens for appending. On Unix without blocking: a FIFO nobody reads fails with ENXIO at
/// once instead of waiting for a reader, and a full FIFO says so (`WouldBlock`) instead of
/// holding the program. A regular file behaves as ever.
#[cfg(unix)]
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(unix)]
fn is_fifo_without_reader(err: &io::Error) -> bool {
    err.raw_os_error() == Some(nix::libc::ENXIO)
}

#[cfg(not(unix))]
fn is_fifo_without_reader(_: &io::Error) -> bool {
    false
}

/// Waits up to [`crate::shutdown::POLL_INTERVAL`] for room in a full FIFO.
#[cfg(unix)]
fn wait_writable(file: &File) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut probe = [PollFd::new(file.as_fd(), PollFlags::POLLOUT)];
    let wait = PollTimeout::try_from(crate::shutdown::POLL_INTERVAL).unwrap_or(PollTimeout::NONE);
    let _ = poll(&mut probe, wait);
}

#[cfg(not(unix))]
fn wait_writable(_: &File) {
    std::thread::sleep(crate::shutdown::POLL_INTERVAL);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `log::info!("{}", save.finish()?)` with info logs off (`-q`) never calls finish():
    /// the last 64 KiB were lost until dropping the Save wrote them.
    #[test]
    fn what_is_buffered_is_written_when_dropped() {
        let path = std::env::temp_dir().join(format!("udp-save-drop-{}.bin", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut save = Save::open(&path).unwrap();
        let status = save.status();
        save.write(&[1; 1000]).unwrap();
        drop(save);
        assert_eq!(std::fs::read(&path).unwrap().len(), 1000);
        assert_eq!(status.lock().unwrap().saved, 1000);
        std::fs::remove_file(&path).unwrap();
    }

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

    /// A full disk (`/dev/full`) used to end the program with an error and no summary; now
    /// the failure is said, the bytes not written are counted, and writing carries on.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_is_counted_not_fatal() {
        let mut save = Save::open(Path::new("/dev/full")).unwrap();
        let status = save.status();
        save.write(&[7; 100_000]).unwrap();
        save.write(b"more").unwrap();
        assert_eq!(save.bytes(), 0);
        assert_eq!(
            save.finish().unwrap(),
            "saved 0 B to /dev/full; 100004 B could not be written: no space left on device (the disk is full: free space or write elsewhere)"
        );
        let status = status.lock().unwrap();
        assert!(status.failure.as_deref().unwrap().starts_with("no space left"));
        assert_eq!(status.saved, 0);
    }
}
