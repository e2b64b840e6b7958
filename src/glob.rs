//! Shell-style wildcards as `fnmatch(3)` with `FNM_NOESCAPE` matches them:
//! `*`, `?` and `[...]` (`[a-z]`, `[!x]`) are special, a backslash is an
//! ordinary character. One implementation serves unit name patterns (as
//! systemd matches them, when it has no `ListUnitsByPatterns` and for
//! `UnitNew` signals) and runner root globs (one path component at a time).

/// True when `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // The last `*` seen and where in the name it resumes on a mismatch.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => match class(&p, pi, n[ni]) {
                    Some((true, next)) => {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    // No closing bracket: `[` is an ordinary character.
                    None if n[ni] == '[' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    None => {}
                },
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression starting at `p[start]`.
/// Returns whether it matched and the index after the expression, or None
/// when the expression is not closed.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let hi = p[i + 2];
            if ch <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
}

/// True when `name` matches any of `patterns`.
pub fn any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_pattern() {
        let p = "actions.runner.*.service";
        assert!(matches(p, "actions.runner.acme-app.linux-1.service"));
        assert!(matches(p, "actions.runner._services.ghes-1.service"));
        assert!(matches(p, "actions.runner.x.service"));
        assert!(!matches(p, "actions.runner.service"));
        assert!(!matches(p, "actions.runner.acme.x.socket"));
        assert!(!matches(p, "ssh.service"));
        assert!(!matches(p, "xactions.runner.a.service"));
    }

    #[test]
    fn wildcards_classes_and_literals() {
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("r?.service", "r1.service"));
        assert!(!matches("r?.service", "r12.service"));
        assert!(matches("r[0-9].service", "r7.service"));
        assert!(!matches("r[!0-9].service", "r7.service"));
        assert!(matches("r[!0-9].service", "rx.service"));
        assert!(matches("r[]x].service", "r].service"));
        assert!(matches("a[b", "a[b"), "unclosed bracket is literal");
        // FNM_NOESCAPE: a backslash is an ordinary character.
        assert!(matches("foo\\x2dbar.service", "foo\\x2dbar.service"));
        assert!(!matches("foo\\x2dbar.service", "foox2dbar.service"));
        assert!(matches("**.service", "a.service"));
    }
}
