//! File-path globs of `collect_list[].file_path`: `*`, `?` and `[...]` within one path
//! component, and `**` for any number of directories. Expansion lists the matching regular
//! files in sorted order.

use std::fs;
use std::path::{Path, PathBuf};

/// Whether `name` matches the one-component `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let mut set = &p[1..close];
                let negate = matches!(set.first(), Some('!') | Some('^'));
                if negate {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every existing path matching the absolute `pattern`.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::from("/")];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if comp == "**" {
                walk(dir, &mut next);
            } else if is_pattern(comp) {
                let Ok(rd) = fs::read_dir(dir) else { continue };
                for e in rd.flatten() {
                    if let Some(name) = e.file_name().to_str() {
                        if matches(comp, name) {
                            next.push(dir.join(name));
                        }
                    }
                }
            } else {
                let p = dir.join(comp);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        next.sort();
        next.dedup();
        current = next;
    }
    current.retain(|p| p.is_file());
    current
}

/// `dir` and every directory below it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_patterns() {
        assert!(matches("*.log", "app.log"));
        assert!(!matches("*.log", "app.log.1"));
        assert!(matches("app.log*", "app.log.1"));
        assert!(matches("a?c", "abc"));
        assert!(matches("[ab]x", "bx"));
        assert!(!matches("[!ab]x", "bx"));
        assert!(matches("f[0-9]", "f7"));
    }

    #[test]
    fn expands_on_disk() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("x/y")).unwrap();
        for f in ["a.log", "b.log", "c.txt", "x/y/d.log"] {
            fs::write(d.path().join(f), "").unwrap();
        }
        let base = d.path().display().to_string();
        let got = expand(&format!("{base}/*.log"));
        assert_eq!(got, vec![d.path().join("a.log"), d.path().join("b.log")]);
        assert_eq!(
            expand(&format!("{base}/**/d.log")),
            vec![d.path().join("x/y/d.log")]
        );
        assert_eq!(expand(&format!("{base}/c.txt")).len(), 1);
        assert!(expand(&format!("{base}/nope/*.log")).is_empty());
    }
}
