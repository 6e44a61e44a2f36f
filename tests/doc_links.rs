//! The Markdown docs' links between each other resolve: every relative link names a file
//! that exists, and every `#anchor` one of that file's headings (as GitHub makes anchors
//! of them). A section renumbered or renamed otherwise leaves links that go nowhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The Markdown files whose links are checked, relative to the workspace root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root.to_path_buf(), root.join("docs")] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces made `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .filter_map(|line| {
            let hashes = line.len() - line.trim_start_matches('#').len();
            (hashes > 0 && line[hashes..].starts_with(' ')).then(|| anchor(&line[hashes..]))
        })
        .collect()
}

/// The targets of the inline links (`[text](target)`) in `text`'s prose.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn links_between_the_docs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = documents(root);
    assert!(files.len() >= 5, "found only {files:?}");
    let texts: HashMap<PathBuf, String> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::read_to_string(f).expect("a readable doc"),
            )
        })
        .collect();
    let mut broken = Vec::new();
    let mut checked = 0;
    for (file, text) in &texts {
        for link in links(text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a directory").join(path)
            };
            checked += 1;
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            };
            if fragment.is_empty() || target.extension().map_or(true, |e| e != "md") {
                continue;
            }
            let heads = match texts.get(&target) {
                Some(text) => anchors(text),
                None => anchors(&std::fs::read_to_string(&target).expect("a readable doc")),
            };
            if !heads.iter().any(|h| h == fragment) {
                broken.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    assert!(
        checked >= 5,
        "only {checked} links found: the parser missed them"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor("7. Reading the diagnostics"),
        "7-reading-the-diagnostics"
    );
    assert_eq!(
        anchor("Small requests wait behind async calls in slices (tokio)"),
        "small-requests-wait-behind-async-calls-in-slices-tokio"
    );
    assert_eq!(anchor("`par_<name>_async`"), "par_name_async");
    let text = "# Title\n```sh\n# not a heading\n```\n## 2. Next\nSee [a](#title).\n";
    assert_eq!(anchors(text), ["title", "2-next"]);
    assert_eq!(links(text), ["#title"]);
}
