//! What the shipped documents promise a newcomer: the README states the build prerequisites
//! before its first command, and the commented example config agrees with the reference and the
//! code about what each setting does.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's first command builds pingora, whose zlib-ng is built by cmake: a fresh machine
/// must learn that, with the install line for its system, before it runs that command.
#[test]
fn readme_states_cmake_before_the_first_command() {
    let readme = read("README.md");
    let first = readme
        .find("cargo run")
        .expect("the README has a first command");
    let before = &readme[..first];
    for system in ["apt-get install", "dnf install", "brew install"] {
        assert!(
            before
                .lines()
                .any(|l| l.contains(system) && l.contains("cmake")),
            "no `{system} … cmake` line before the README's first command"
        );
    }
}

/// `conf/example.toml` documents `header_timeout_ms` as applied (`408`, connection closed), as
/// the reference says and `a_client_sending_a_partial_head_is_cut_off_after_header_timeout`
/// shows; no setting is described as accepted but ignored.
#[test]
fn example_config_describes_header_timeout_as_applied() {
    let example = read("conf/example.toml");
    assert!(
        !example.to_ascii_lowercase().contains("not applied"),
        "conf/example.toml still calls a setting not applied"
    );
    let lines: Vec<&str> = example.lines().collect();
    let key = lines
        .iter()
        .position(|l| l.starts_with("header_timeout_ms"))
        .expect("conf/example.toml sets header_timeout_ms");
    let comment: Vec<&str> = lines[..key]
        .iter()
        .rev()
        .take_while(|l| l.starts_with('#'))
        .copied()
        .collect();
    assert!(
        comment.iter().any(|l| l.contains("408")),
        "the header_timeout_ms comment does not say what happens: {comment:?}"
    );
    let reference = read("docs/config-reference.md");
    assert!(
        reference
            .lines()
            .any(|l| l.starts_with("| `header_timeout_ms`") && l.contains("408")),
        "docs/config-reference.md no longer documents header_timeout_ms's 408"
    );
}
