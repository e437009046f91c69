//! Paths a job names (`envFile`, `cwd`) must stay inside a directory the operator
//! configured, judged after following every symlink, so neither `..` nor a link
//! pointing out gets a job anywhere else.

use std::path::{Component, Path, PathBuf};

/// Why a path was not resolved inside its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// It points outside the directory (absolute, `..` above it, or a symlink out).
    Outside,
    /// It could not be resolved; the reason says why (missing, no permission…).
    Unresolvable(String),
}

/// `path` joined to `dir` with every symlink followed, if that stays inside `dir`.
pub async fn resolve_inside(dir: &Path, path: &str) -> Result<PathBuf, Escape> {
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(|e| Escape::Unresolvable(format!("{}: {e}", dir.display())))?;
    let resolved = match tokio::fs::canonicalize(dir.join(path)).await {
        Ok(resolved) => resolved,
        // A missing path inside the directory is unresolvable; one that points outside
        // it is refused as such, without saying whether it exists.
        Err(_) if !lexically_inside(Path::new(path)) => return Err(Escape::Outside),
        Err(e) => return Err(Escape::Unresolvable(e.to_string())),
    };
    if resolved.starts_with(&dir) {
        Ok(resolved)
    } else {
        Err(Escape::Outside)
    }
}

/// Whether `relative` stays inside the directory it is joined to, judged from the
/// path alone (no `..` climbing above it, not absolute).
fn lexically_inside(relative: &Path) -> bool {
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_containment() {
        assert!(lexically_inside(Path::new("a.env")));
        assert!(lexically_inside(Path::new("sub/../a.env")));
        assert!(!lexically_inside(Path::new("../a.env")));
        assert!(!lexically_inside(Path::new("sub/../../a.env")));
        assert!(!lexically_inside(Path::new("/etc/passwd")));
    }

    #[tokio::test]
    async fn symlinks_and_parents_cannot_leave() {
        let root = tempfile::tempdir().expect("temp dir");
        let jail = root.path().join("jail");
        std::fs::create_dir_all(jail.join("sub")).expect("dirs");
        std::os::unix::fs::symlink(root.path(), jail.join("out")).expect("symlink");
        std::os::unix::fs::symlink(jail.join("sub"), jail.join("in")).expect("symlink");
        let inside = resolve_inside(&jail, "in").await.expect("a link inside");
        assert!(inside.ends_with("jail/sub"), "{}", inside.display());
        assert!(resolve_inside(&jail, ".").await.is_ok());
        for escape in ["..", "out", "out/jail/..", "sub/../..", "/tmp", "/"] {
            assert_eq!(
                resolve_inside(&jail, escape).await,
                Err(Escape::Outside),
                "{escape}"
            );
        }
        assert!(matches!(
            resolve_inside(&jail, "missing").await,
            Err(Escape::Unresolvable(_))
        ));
    }
}
