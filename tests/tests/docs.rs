//! The teaching documents cannot drift from the code: every file, function, test, script
//! and crate that `docs/chapter.md` names exists; the Chinese twins have the same
//! sections; the README's two commands are the same in both languages.

use std::fs;
use std::path::{Path, PathBuf};

#[cfg(unix)]
#[path = "docs/sessions.rs"]
mod sessions;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `code spans` of a piece of Markdown.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The numbered rows of the tables: `| 3 | … |` split into cells.
fn rows(doc: &str) -> Vec<Vec<String>> {
    doc.lines()
        .filter(|l| l.starts_with("| "))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells[0].parse::<u32>().is_ok())
        .collect()
}

/// `# A`, `## B` … as their levels: the shape of a document, whatever its language.
fn heading_levels(doc: &str) -> Vec<usize> {
    let mut in_code = false;
    let mut levels = Vec::new();
    for line in doc.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            levels.push(line.chars().take_while(|&c| c == '#').count());
        }
    }
    levels
}

/// What is wrong with one code span that names a path (`FILE` or `FILE::FUNCTION`), a
/// script in a command, or a crate in `cargo run -p CRATE`.
fn problems_in(span: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let is_path = |s: &str| {
        ["crates/", "tests/", "scripts/", "docs/", "fuzz/"]
            .iter()
            .any(|p| s.starts_with(p))
    };
    if !span.contains(' ') && is_path(span) {
        let (file, function) = match span.split_once("::") {
            Some((file, function)) => (file, Some(function)),
            None => (span, None),
        };
        if function.is_none() && root().join(file).is_dir() {
            return problems;
        }
        match fs::read_to_string(root().join(file)) {
            Err(_) => problems.push(format!("no file {file}")),
            Ok(source) => {
                if let Some(f) = function {
                    if !source.contains(&format!("fn {f}(")) && !source.contains(&format!("fn {f}<")) {
                        problems.push(format!("no fn {f} in {file}"));
                    }
                }
            }
        }
        return problems;
    }
    let words: Vec<&str> = span.split_whitespace().collect();
    for w in &words {
        if w.starts_with("scripts/") && !root().join(w).exists() {
            problems.push(format!("no script {w}"));
        }
    }
    if let Some(i) = words.windows(3).position(|w| w[0] == "cargo" && w[1] == "run") {
        match words.get(i + 3) {
            Some(name) if words[i + 2] == "-p" && root().join("crates").join(name).join("Cargo.toml").exists() => {}
            _ => problems.push(format!("`{span}` does not run a crate of this workspace")),
        }
    }
    problems
}

fn check_chapter(path: &str) -> Vec<Vec<String>> {
    let doc = read(path);
    let rows = rows(&doc);
    assert!(rows.len() >= 19, "{path}: {} rows", rows.len());
    let mut problems = Vec::new();
    for row in &rows {
        let n = &row[0];
        assert_eq!(row.len(), 7, "{path} row {n}: 7 cells expected, got {row:?}");
        for span in row.iter().flat_map(|cell| code_spans(cell)) {
            problems.extend(problems_in(span).into_iter().map(|p| format!("{path} row {n}: {p}")));
        }
        if !row[4].contains("::") {
            problems.push(format!("{path} row {n}: `where` names no FILE::FUNCTION"));
        }
        if !code_spans(&row[5])
            .iter()
            .any(|c| c.starts_with("cargo ") || c.contains("scripts/") || c.starts_with("python3 -c"))
        {
            problems.push(format!("{path} row {n}: no command"));
        }
        if !code_spans(&row[6])
            .iter()
            .any(|c| c.contains("::") || c.starts_with("scripts/"))
        {
            problems.push(format!("{path} row {n}: no test"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    rows
}

#[test]
fn every_row_of_the_chapter_names_files_functions_commands_and_tests_that_exist() {
    check_chapter("docs/chapter.md");
}

#[test]
fn the_chinese_chapter_has_the_same_sections_and_rows() {
    let en = check_chapter("docs/chapter.md");
    let zh = check_chapter("docs/chapter.zh-CN.md");
    assert_eq!(
        heading_levels(&read("docs/chapter.md")),
        heading_levels(&read("docs/chapter.zh-CN.md"))
    );
    assert_eq!(en.len(), zh.len(), "row count");
    for (e, z) in en.iter().zip(&zh) {
        // Code is the same in both languages: the same calls, places, commands and tests.
        for col in 2..7 {
            assert_eq!(
                code_spans(&e[col]),
                code_spans(&z[col]),
                "row {} column {col} differs between the English and Chinese chapter",
                e[0]
            );
        }
    }
}

#[test]
fn the_chinese_readme_has_the_same_sections_and_the_same_two_commands() {
    let en = read("README.md");
    let zh = read("README.zh-CN.md");
    assert_eq!(heading_levels(&en), heading_levels(&zh));
    let first_block = |doc: &str| {
        doc.split("```sh")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .map(str::to_string)
    };
    let commands = |block: Option<String>| -> Vec<String> {
        block
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('#').next())
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let two = commands(first_block(&en));
    assert_eq!(two, ["cargo run -p udp-server", "cargo test --workspace"]);
    assert_eq!(commands(first_block(&zh)), two);
    assert!(
        en.lines().take(5).any(|l| l.contains("README.zh-CN.md")),
        "README.md links its Chinese twin at the top"
    );
    // The crates' READMEs name paths inside their crate; the rest name them from the root.
    for path in user_docs().into_iter().filter(|d| !d.starts_with("crates/")) {
        let doc = read(&path);
        for span in code_spans(&doc) {
            let problems = problems_in(span);
            assert!(problems.is_empty(), "{path}: {problems:?}");
        }
    }
}

#[test]
fn every_crate_has_a_readme() {
    for entry in fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let readme = dir.join("README.md");
        assert!(readme.exists(), "{} has no README.md", dir.display());
        let text = fs::read_to_string(readme).unwrap();
        assert!(text.contains("cp -r"), "{}: say how to copy it", dir.display());
    }
}

/// The README (in both languages) says how long `scripts/demo.sh` takes, as the script does.
#[test]
fn the_readmes_and_the_demo_agree_on_its_length() {
    let seconds = |text: &str, before: &str, after: &str| -> Option<u32> {
        let start = text.find(before)? + before.len();
        text[start..].split(after).next()?.trim().parse().ok()
    };
    let script = seconds(&read("scripts/demo.sh"), "; about ", " seconds in all").expect("demo.sh says its length");
    let en = read("README.md");
    let en_line = en
        .lines()
        .find(|l| l.contains("`scripts/demo.sh` —"))
        .expect("the README's demo line");
    assert_eq!(seconds(en_line, "in about ", " seconds"), Some(script), "{en_line}");
    let zh = read("README.zh-CN.md");
    let zh_line = zh
        .lines()
        .find(|l| l.contains("`scripts/demo.sh` —"))
        .expect("the Chinese README's demo line");
    assert_eq!(seconds(zh_line, "大约 ", " 秒"), Some(script), "{zh_line}");
}

/// The commands that need no second terminal (the README's, and the refusals of
/// docs/tools.md) run as printed, output and exit code included (trycmd reads the
/// ```console blocks), in both languages.
#[test]
fn the_readme_one_liners_run_as_printed() {
    let bin = |name: &str| {
        let exe = std::env::current_exe().unwrap();
        exe.parent().and_then(|deps| deps.parent()).unwrap().join(name)
    };
    trycmd::TestCases::new()
        .register_bin("udp-server", bin("udp-server"))
        .register_bin("udp-client", bin("udp-client"))
        .register_bin("udp-broadcast", bin("udp-broadcast"))
        .env("RUST_LOG", "")
        .case(root().join("README.md"))
        .case(root().join("README.zh-CN.md"))
        .case(root().join("docs/tools.md"))
        .case(root().join("docs/tools.zh-CN.md"));
}

/// A document's shape, language aside: its fenced blocks, its tables' row counts, and the
/// code spans of its prose.
struct Shape {
    /// (language, content): `text` and `console` blocks as written; `sh` blocks without
    /// their `#` comments, which are prose and may be translated.
    blocks: Vec<(String, String)>,
    table_rows: Vec<usize>,
    spans: std::collections::BTreeSet<String>,
}

fn shape(doc: &str) -> Shape {
    let (mut blocks, mut table_rows, mut prose) = (Vec::new(), Vec::new(), String::new());
    let mut fence: Option<(String, String)> = None;
    let mut rows = 0;
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("```") {
            match fence.take() {
                Some((lang, body)) => blocks.push((lang, body)),
                None => fence = Some((rest.trim().to_string(), String::new())),
            }
            continue;
        }
        if let Some((lang, body)) = &mut fence {
            let kept = if lang == "sh" {
                line.split(" #").next().unwrap_or("").trim_end()
            } else {
                line
            };
            body.push_str(kept);
            body.push('\n');
            continue;
        }
        if line.starts_with('|') {
            rows += 1;
        } else if rows > 0 {
            table_rows.push(rows);
            rows = 0;
        }
        prose.push_str(line);
        prose.push('\n');
    }
    if rows > 0 {
        table_rows.push(rows);
    }
    // A span broken across two lines is the same span.
    let spans = code_spans(&prose)
        .into_iter()
        .map(|span| span.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    Shape {
        blocks,
        table_rows,
        spans,
    }
}

/// Every user document: the READMEs, the crates' READMEs and everything under `docs/`.
fn user_docs() -> Vec<String> {
    let mut docs = vec!["README.md".to_string(), "README.zh-CN.md".to_string()];
    for dir in ["docs", "crates"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if dir == "docs" && name.ends_with(".md") {
                docs.push(format!("docs/{name}"));
            } else if dir == "crates" && path.join("README.md").exists() {
                docs.push(format!("crates/{name}/README.md"));
            }
        }
    }
    docs.sort();
    docs
}

/// Each English document with its Chinese twin: the READMEs and every page of `docs/`.
fn twins() -> Vec<(String, String)> {
    let pairs: Vec<_> = user_docs()
        .into_iter()
        .filter(|d| !d.starts_with("crates/") && !d.ends_with(".zh-CN.md"))
        .map(|en| {
            let zh = en.replace(".md", ".zh-CN.md");
            assert!(root().join(&zh).exists(), "{en} has no Chinese twin {zh}");
            (en, zh)
        })
        .collect();
    for doc in user_docs().iter().filter(|d| d.ends_with(".zh-CN.md")) {
        assert!(
            root().join(doc.replace(".zh-CN.md", ".md")).exists(),
            "{doc} has no English twin"
        );
    }
    pairs
}

/// The Chinese twin carries everything the English carries, and nothing it does not: every
/// section, table row, command (code span) and fenced transcript.
#[test]
fn english_and_chinese_carry_the_same_sections_rows_commands_and_transcripts() {
    let pairs = twins();
    assert!(pairs.len() >= 9, "the READMEs and the pages of docs/: {pairs:?}");
    for (en_path, zh_path) in &pairs {
        let (en_doc, zh_doc) = (read(en_path), read(zh_path));
        assert_eq!(heading_levels(&en_doc), heading_levels(&zh_doc), "{zh_path}: sections");
        let (en, zh) = (shape(&en_doc), shape(&zh_doc));
        assert_eq!(en.table_rows, zh.table_rows, "{zh_path}: rows per table");
        assert_eq!(en.blocks.len(), zh.blocks.len(), "{zh_path}: fenced blocks");
        for (e, z) in en.blocks.iter().zip(&zh.blocks) {
            assert_eq!(e, z, "{zh_path}: a fenced block differs from {en_path}'s");
        }
        let missing: Vec<_> = en.spans.difference(&zh.spans).collect();
        assert!(missing.is_empty(), "{zh_path} lacks what {en_path} has: {missing:?}");
        let extra: Vec<_> = zh.spans.difference(&en.spans).collect();
        assert!(extra.is_empty(), "{en_path} lacks what {zh_path} has: {extra:?}");
    }
}

/// A newcomer's README fits a few screens; the long parts live in `docs/`.
#[test]
fn both_readmes_are_under_250_lines() {
    for path in ["README.md", "README.zh-CN.md"] {
        let lines = read(path).lines().count();
        assert!(lines < 250, "{path} has {lines} lines: move a section into docs/");
    }
}

/// A clone has no folder beside it, and a user doc that points there points at nothing.
#[test]
fn no_user_doc_points_outside_the_repository() {
    // Assembled so that this test's own source does not name the folder.
    let outside = ["..", "/shared"].concat();
    for path in user_docs() {
        assert!(!read(&path).contains(&outside), "{path} names {outside}");
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every relative link `[text](path)` or `[text](path#anchor)` in a user doc names a file or
/// folder that exists, and the anchor a heading of that file.
#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    for path in user_docs() {
        let doc = read(&path);
        let dir = Path::new(&path).parent().unwrap_or(Path::new(""));
        for link in doc.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                PathBuf::from(&path)
            } else {
                dir.join(file)
            };
            let Ok(text) = fs::read_to_string(root().join(&target)) else {
                if !root().join(&target).is_dir() {
                    problems.push(format!("{path}: ({link}) names no file"));
                }
                continue;
            };
            let mut in_code = false;
            let anchors: Vec<String> = text
                .lines()
                .filter(|l| {
                    if l.starts_with("```") {
                        in_code = !in_code;
                    }
                    !in_code && l.starts_with('#')
                })
                .map(anchor)
                .collect();
            if !fragment.is_empty() && !anchors.iter().any(|a| a == fragment) {
                problems.push(format!("{path}: ({link}) names no heading of {}", target.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The Chinese documents keep the glossary's terms (docs/chapter.zh-CN.md, at the top): no
/// 负载 for payload (载荷), no 监听者 for a receiver (接收方: "listen" is TCP's), 环回 for
/// loopback (the glossary alone names 回环, a common spelling of it; 环路 is the echo loop),
/// NetAssist always as 网络调试助手, and the book's chapter never as a school lesson (课文); and
/// the map names 绑定 and the chapter's six traits (书中（1）…) in its order.
#[test]
fn the_chinese_documents_keep_the_glossarys_terms() {
    for path in user_docs().iter().filter(|d| d.ends_with(".zh-CN.md")) {
        let doc = read(path);
        // The glossary names the drifted spellings it rules out; the rest must not use them.
        let doc = match doc.split_once("## 术语表") {
            Some((before, glossary)) => {
                format!("{before}{}", glossary.split_once("\n## ").map_or("", |(_, rest)| rest))
            }
            None => doc,
        };
        let prose: String = doc
            .split("```")
            .step_by(2)
            .flat_map(|part| part.split('`').step_by(2))
            .collect();
        for drifted in ["负载", "监听者", "回环", "课文"] {
            assert!(!prose.contains(drifted), "{path} uses {drifted}");
        }
        let netassist = prose.replace("网络调试助手（NetAssist）", "");
        assert!(
            !netassist.contains("NetAssist"),
            "{path}: say 网络调试助手, not NetAssist"
        );
    }
    let map = read("docs/chapter.zh-CN.md");
    assert!(map.contains("绑定") && map.contains("## 术语表"), "the glossary");
    let mut at = 0;
    for n in ["（1）", "（2）", "（3）", "（4）", "（5）", "（6）"] {
        let label = format!("书中{n}");
        let found = map[at..]
            .find(&label)
            .unwrap_or_else(|| panic!("no {label} after the previous trait"));
        at += found + label.len();
    }
}

/// The transcripts that start a server in the background (```shellsession blocks) run as
/// printed, in both languages, each in a folder of its own (`scripts/` linked into it):
/// every line each program printed, and nothing else, in the order of its own stream.
/// (`kill` is the Unix command; on Windows the trycmd transcripts above still run.)
#[cfg(unix)]
#[test]
fn the_sessions_with_a_background_server_run_as_printed() {
    let (mut problems, mut count) = (Vec::new(), 0);
    for path in user_docs() {
        for (n, steps) in sessions::sessions(&read(&path)).iter().enumerate() {
            count += 1;
            let name = format!("udp-docs-{}-{}-{n}", std::process::id(), path.replace('/', "_"));
            let dir = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(root().join("scripts"), dir.join("scripts")).unwrap();
            match sessions::run(&dir, steps) {
                Ok(()) => {
                    let _ = fs::remove_dir_all(&dir);
                }
                Err(e) => problems.push(format!("{path}, session {} (in {}): {e}", n + 1, dir.display())),
            }
        }
    }
    assert!(count >= 26, "{count} sessions found in the docs");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The README's first transcripts (the server as `cargo run -p udp-server` starts it, the
/// client's `hello`, the summary on Ctrl-C) are what the programs print, line for line:
/// run as a session, with the port the OS chose in place of the client's 54321 and of the
/// round trip.
#[cfg(unix)]
#[test]
fn the_readmes_first_lines_are_what_the_server_and_client_print() {
    for path in ["README.md", "README.zh-CN.md"] {
        let doc = read(path);
        let texts: Vec<&str> = doc
            .split("```text\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        let vary = |line: &str| line.replace("54321", "[..]").replace("rtt 0.152 ms", "rtt [..] ms");
        let server: Vec<String> = texts[0]
            .lines()
            .skip_while(|l| !l.contains("Running"))
            .skip(1)
            .map(vary)
            .collect();
        let client: Vec<String> = texts[1].lines().skip(1).map(vary).collect();
        let summary = code_spans(&doc)
            .into_iter()
            .find(|s| s.starts_with("udp-server: received"))
            .expect("the summary on Ctrl-C");
        assert_eq!(server.len(), 4, "{path}: two log lines, listening, a datagram");
        let steps = [
            sessions::Step {
                command: "udp-server --bind 8888 &".into(),
                code: 0,
                expected: server,
            },
            sessions::Step {
                command: "udp-client 8888 hello".into(),
                code: 0,
                expected: client,
            },
            sessions::Step {
                command: "kill %1".into(),
                code: 0,
                expected: vec![summary.to_string()],
            },
        ];
        let dir = std::env::temp_dir().join(format!("udp-docs-{}-first-{path}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let result = sessions::run(&dir, &steps);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(result, Ok(()), "{path}");
    }
}

/// `text` with every port-like number (4 or 5 digits) as `[..]`: the messages of the
/// README's table use example ports, the transcripts of docs/messages.md ports of their own.
fn any_port(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if (4..=5).contains(&digits.len()) {
            "[..]"
        } else {
            &digits
        });
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Every message of the README's table (first column) is printed, word for word, in one
/// of the transcripts of docs/messages.md, which the session test runs: the table cannot
/// drift from what the programs say.
#[test]
fn every_message_in_the_readmes_table_is_one_the_programs_print() {
    let transcripts: Vec<String> = read("docs/messages.md")
        .split("```shellsession\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .flat_map(str::lines)
        .filter(|l| !l.starts_with("$ ") && !l.starts_with("? "))
        .map(any_port)
        .collect();
    for path in ["README.md", "README.zh-CN.md"] {
        let doc = read(path);
        let table = doc
            .lines()
            .skip_while(|l| !l.starts_with("## Messages you will meet") && !l.starts_with("## 常见输出信息对照"))
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2);
        let mut rows = 0;
        for row in table {
            rows += 1;
            let message = code_spans(row.split(" | ").next().unwrap_or(""))
                .first()
                .map(|m| any_port(m))
                .unwrap_or_default();
            assert!(
                transcripts.iter().any(|t| sessions_line_matches(t, &message)),
                "{path}: `{message}` is in no transcript of docs/messages.md"
            );
        }
        assert!(rows >= 15, "{path}: {rows} messages in the table");
    }
}

/// A transcript line (with `[..]`) against a message (whose ports are `[..]` too).
fn sessions_line_matches(pattern: &str, message: &str) -> bool {
    // The message's own `[..]` stand for ports; in the pattern they match anything.
    let parts: Vec<&str> = pattern.split("[..]").collect();
    let mut rest = message;
    for (i, part) in parts.iter().enumerate() {
        match rest.find(part) {
            Some(0) => rest = &rest[part.len()..],
            Some(at) if i > 0 => rest = &rest[at + part.len()..],
            _ => return false,
        }
    }
    rest.is_empty() || pattern.ends_with("[..]")
}

/// Every `.rs` file under `dir`, recursively (sources, tests, examples, fuzz targets).
fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// docs/safety.md is the list of attacks and of the test that proves each: every row of its
/// tables names in its last column a test (or a test file or script), and every test named
/// there is a `fn` of the workspace's sources, in both languages, so a renamed or deleted
/// test cannot leave the page claiming a proof that is gone.
#[test]
fn every_test_the_safety_page_cites_exists() {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "fuzz"] {
        rust_sources(&root().join(dir), &mut files);
    }
    let sources: String = files
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let is_test_name = |s: &str| {
        s.contains('_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    for path in ["docs/safety.md", "docs/safety.zh-CN.md"] {
        let doc = read(path);
        let (mut problems, mut cited) = (Vec::new(), 0);
        let rows = doc
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
            .filter(|l| !l.starts_with("| tried |") && !l.starts_with("| 尝试 |"));
        for row in rows {
            let last = row.trim_end().trim_end_matches('|').rsplit(" | ").next().unwrap_or("");
            let spans = code_spans(last);
            if !spans.iter().any(|s| is_test_name(s) || s.contains('/')) {
                problems.push(format!("a row proved by no test: {row}"));
            }
            for name in spans.into_iter().filter(|s| is_test_name(s)) {
                cited += 1;
                if !sources.contains(&format!("fn {name}(")) {
                    problems.push(format!("no test fn {name}"));
                }
            }
        }
        assert!(cited >= 60, "{path}: {cited} tests cited");
        assert!(problems.is_empty(), "{path}:\n{}", problems.join("\n"));
    }
}
