//! The scripts look for the programs where cargo put them, and say so when one is missing.

use testkit::{Command, output};

/// With `CARGO_TARGET_DIR` set, `scripts/lib.sh` looks in that folder (cargo metadata says
/// where), and a program missing there is one line naming it, not a misleading timeout.
#[test]
fn scripts_find_the_programs_where_cargo_put_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::temp_dir().join(format!("udp-elsewhere-{}", std::process::id()));
    let out = output(
        Command::new("bash")
            .args([
                "-c",
                ". scripts/lib.sh; echo \"$bin\"; need udp-server; echo not reached",
            ])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("BIN_DIR"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        target.join("debug").to_string_lossy()
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("udp-server is missing: build it with cargo build --workspace"),
        "{stderr}"
    );
}
