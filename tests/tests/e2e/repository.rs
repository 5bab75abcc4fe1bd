//! The repository stands alone: what its sources point a reader at is in it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, `target/` left out.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.ends_with("target") {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// A clone has only the repository: a comment that sends a reader to a file kept outside
/// it (a style guide next to the checkout) leaves a contributor with nothing to read.
#[test]
fn every_file_a_source_comment_points_at_is_in_the_repository() {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "fuzz"] {
        if root().join(dir).is_dir() {
            sources(&root().join(dir), &mut files);
        }
    }
    assert!(files.len() > 20, "found only {} sources", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.strip_prefix(root()).unwrap_or(file).display(), n + 1);
            // Assembled so that this test's own source does not match.
            if line.contains(&["..", "/shared"].concat()) {
                problems.push(format!("{at} points outside the repository"));
            }
            for (i, _) in line.match_indices("see ") {
                let named = line[i + 4..].trim_start_matches(['`', '(']);
                let name: String = named
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "_-./".contains(*c))
                    .collect();
                let name = name.trim_end_matches('.');
                if name.ends_with(".md") && !root().join(name).exists() {
                    problems.push(format!("{at} says see {name}, which is not in the repository"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `pub const NAME` in the files under `dir`.
fn constants(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    sources(dir, &mut files);
    let mut found = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let line = line.trim_start();
            let rest = line.strip_prefix("pub const ").or_else(|| line.strip_prefix("const "));
            if let Some(name) = rest.and_then(|r| r.split(':').next()) {
                found.push((name.trim().to_string(), file.clone()));
            }
        }
    }
    found
}

/// A value every program shares (the default receive buffer, the payload limits) is named
/// once, in `common`: a program that defines it again can drift from the others.
#[test]
fn no_program_defines_again_a_constant_common_has() {
    let shared: Vec<String> = constants(&root().join("crates/common/src"))
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name != "_")
        .collect();
    assert!(shared.iter().any(|n| n == "DEFAULT_BUFFER_SIZE"), "{shared:?}");
    let mut again = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("common") || dir.ends_with("testkit") || !dir.join("src").is_dir() {
            continue;
        }
        for (name, file) in constants(&dir.join("src")) {
            if shared.contains(&name) {
                again.push(format!("{} defines {name} again", file.display()));
            }
        }
    }
    assert!(again.is_empty(), "{}", again.join("\n"));
}

#[test]
fn the_conventions_a_contributor_needs_are_in_contributing_md() {
    let text = std::fs::read_to_string(root().join("CONTRIBUTING.md")).unwrap();
    for habit in [
        "No `unwrap()`",
        "Errors are one line",
        "what crossed the wire",
        "Ephemeral ports only",
        "Loopback only",
        "Deadlines everywhere",
        "No sleeps for readiness",
        "Comments say why",
    ] {
        assert!(text.contains(habit), "CONTRIBUTING.md does not say {habit:?}");
    }
}
