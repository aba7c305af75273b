//! Records the git commit the extension is built from, for the Parquet footer's `created_by`
//! (`ticklake version X.Y.Z (build <hash>)`); `unknown` outside a git checkout (e.g. a source distribution).

use std::process::Command;

fn main() {
    let hash = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TICKLAKE_BUILD_HASH={hash}");
    // Rebuild when HEAD moves (a worktree's .git is a file pointing elsewhere: then only the hash of this build).
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
