//! Path traversal and local file inclusion.
//!
//! After URL decoding (which also folds `%c0%ae`, `%u2215` and fullwidth forms),
//! three signals: a parent-directory segment (`../`, `..\`, `.../`, `..;/`, a trailing
//! `/..`); a sensitive system or application file named by path (`/etc/passwd`,
//! `win.ini`, `.git/config`, `/proc/self/environ`); and stream wrappers that read files
//! (`php://filter`, `file://`). A NUL byte after a path-like prefix (extension
//! truncation, `../../boot.ini%00.jpg`) is reported too.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Sensitive files and directories. Matched case-insensitively with `\` folded to `/`,
/// and only at a path-segment start (after `/`, `\`, `=`, quote or the value start)
/// so `myetc/passwdless` does not count.
const SENSITIVE: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/master.passwd",
    "etc/security/",
    "etc/sudoers",
    "etc/crontab",
    "etc/httpd/",
    "etc/apache2/",
    "etc/nginx/",
    "etc/mysql/",
    "etc/ssh/",
    "etc/pwd.db",
    "etc/spwd.db",
    "etc/profile",
    "etc/environment",
    "etc/motd",
    "etc/resolv.conf",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/net/",
    "proc/1/",
    "sys/class/",
    "sys/kernel/",
    "var/log/",
    "var/run/secrets",
    "var/lib/mysql",
    "usr/local/apache",
    "root/.",
    "boot.ini",
    "win.ini",
    "system.ini",
    "windows/system32",
    "winnt/system32",
    "windows/repair",
    "windows/win.ini",
    "system32/config",
    "inetpub/",
    "autoexec.bat",
    ".htaccess",
    ".htpasswd",
    ".htdigest",
    "web.config",
    "wp-config.php",
    "config.php",
    "localsettings.php",
    ".env",
    ".git/",
    ".gitconfig",
    ".svn/",
    ".hg/",
    ".bzr/",
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    ".bash_history",
    ".bashrc",
    ".bash_profile",
    ".profile",
    ".zsh_history",
    ".mysql_history",
    ".psql_history",
    ".viminfo",
    ".netrc",
    ".pgpass",
    ".aws/credentials",
    ".docker/config",
    ".kube/config",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".ds_store",
    "web-inf/",
    "meta-inf/",
    "php.ini",
    "my.cnf",
    "httpd.conf",
    "nginx.conf",
    "etc/subuid",
    "etc/subgid",
    "etc/gshadow",
    "etc/sudoers.d",
    "proc/",
    "sys/class",
    "sys/devices",
    "sys/firmware",
    ".docker/",
    "wp-content/debug.log",
    "wp-content/error.log",
    "wp-content/errors.log",
    "backup.sql",
    "dump.sql",
    "database.sql",
    ".aiignore",
    ".cursorignore",
    // AI coding assistant configuration: API keys and tool definitions in a web root.
    ".claude/",
    ".cursor/",
    ".continue/",
    ".aider",
    ".roo/",
    ".zed/",
    ".cline/",
    ".clinerules",
    ".kiro/",
    ".windsurf/",
    ".rovodev/",
    ".codex/",
    ".opencode/",
    ".a0proj/",
    ".plandex/",
    ".fabric/",
    ".n8n/",
    ".junie/",
    ".gemini/",
    ".github/copilot",
];

/// Stream wrappers that read local files or run code (PHP, Java, generic).
const WRAPPERS: &[&str] = &[
    "php://",
    "file://",
    "phar://",
    "zip://",
    "expect://",
    "glob://",
    "compress.zlib://",
    "jar:file:",
    "netdoc:",
];

/// `0x2e0x2e/`, `0x5c0x2e./`: dots and slashes written as C-style hex literals,
/// which some decoders (and the filters attackers probe) turn back into bytes.
/// Only values containing `0x2e`, `0x2f` or `0x5c` pay for the rewrite.
fn hex_spelled_parent(bytes: &[u8]) -> Option<usize> {
    let is_hex_sep = |w: &[u8]| {
        w.first() == Some(&b'0')
            && matches!(w.get(1), Some(b'x' | b'X'))
            && matches!(
                (w.get(2), w.get(3).map(u8::to_ascii_lowercase)),
                (Some(b'2'), Some(b'e' | b'f')) | (Some(b'5'), Some(b'c'))
            )
    };
    let first = bytes.windows(4).position(is_hex_sep)?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i..i + 4) {
            Some(w) if is_hex_sep(w) => {
                out.push(match w.get(3).map(u8::to_ascii_lowercase) {
                    Some(b'e') => b'.',
                    Some(b'f') => b'/',
                    _ => b'\\',
                });
                i += 4;
            }
            _ => {
                out.push(bytes.get(i).copied().unwrap_or(0));
                i += 1;
            }
        }
    }
    parent_segment(&out).map(|_| first)
}

pub struct Scanner {
    sensitive: AhoCorasick,
    wrappers: AhoCorasick,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("traversal::Scanner").finish_non_exhaustive()
    }
}

impl Scanner {
    pub fn new() -> Result<Self, aho_corasick::BuildError> {
        let sensitive = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(SENSITIVE)?;
        let wrappers = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(WRAPPERS)?;
        Ok(Self {
            sensitive,
            wrappers,
        })
    }

    /// Scan one URL-decoded value.
    pub fn scan(&self, text: &str) -> Option<(&'static str, usize)> {
        let bytes = text.as_bytes();
        if let Some(at) = parent_segment(bytes) {
            return Some(("parent directory", at));
        }
        if let Some(at) = hex_spelled_parent(bytes) {
            return Some(("parent directory", at));
        }
        for m in self.sensitive.find_overlapping_iter(text) {
            if segment_start(
                bytes,
                m.start(),
                SENSITIVE.get(m.pattern().as_usize()).copied().unwrap_or(""),
            ) && segment_end(bytes, m.end(), m.pattern().as_usize())
            {
                return Some(("sensitive file", m.start()));
            }
        }
        if let Some(m) = self.wrappers.find(text) {
            return Some(("file wrapper", m.start()));
        }
        if let Some(at) = null_truncation(bytes) {
            return Some(("null byte truncation", at));
        }
        None
    }
}

fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// A run of two or more dots that forms a whole path segment (or is followed by a
/// separator): `../`, `..\`, `.../`, `..;/` (Tomcat path parameters), `/..` at the end.
fn parent_segment(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    // The first separator at or after a `..;` path parameter: found once
    // and reused by the `..;` before it, so `..;..;..;` (no separator) is
    // read once, not once per parameter.
    let mut next_sep = 0usize;
    while i + 1 < bytes.len() {
        if at(bytes, i) == b'.' && at(bytes, i + 1) == b'.' {
            let start = i;
            while at(bytes, i) == b'.' {
                i += 1;
            }
            let before = if start == 0 {
                b'/'
            } else {
                at(bytes, start - 1)
            };
            let after = at(bytes, i);
            let after = if after == b';' {
                // `..;/`: skip the path parameter.
                if next_sep < i {
                    next_sep = i;
                    while next_sep < bytes.len() && !is_sep(at(bytes, next_sep)) {
                        next_sep += 1;
                    }
                }
                at(bytes, next_sep)
            } else {
                after
            };
            let before_ok = is_sep(before)
                || matches!(
                    before,
                    b'=' | b'"' | b'\'' | b' ' | b'\0' | b':' | b'|' | b';' | b'&' | b'(' | b','
                );
            if is_sep(after) && before_ok {
                // A lone `../` with nothing after it (`href="../"`) goes nowhere.
                let rest = bytes.get(i + 1..).unwrap_or(&[]);
                let goes_somewhere = rest
                    .first()
                    .is_some_and(|b| !matches!(b, b'"' | b'\'' | b' ' | b'>' | b'<'));
                if goes_somewhere || (start > 0 && is_sep(before)) {
                    return Some(start);
                }
            }
            // `/..` closing the value: `/foo/..` (not an ellipsis, `x;/...`).
            if i - start == 2 && after == 0 && i >= bytes.len() && is_sep(before) {
                return Some(start);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn segment_start(bytes: &[u8], start: usize, pattern: &str) -> bool {
    if start == 0 {
        return true;
    }
    let prev = at(bytes, start - 1);
    // A leading `.` in the pattern (`.htaccess`) may follow anything but a word
    // character. A bare file name (`win.ini`) must follow a separator, so a search
    // for it passes; a pattern that is a path (`etc/passwd`) may follow other
    // delimiters too.
    if is_sep(prev) || (at(bytes, start) == b'.' && !prev.is_ascii_alphanumeric()) {
        return true;
    }
    let pattern_is_path = pattern.contains('/');
    pattern_is_path
        && matches!(
            prev,
            b'=' | b'"'
                | b'\''
                | b' '
                | b'>'
                | b'<'
                | b'\0'
                | b':'
                | b'@'
                | b'$'
                | b'{'
                | b'}'
                | b'('
                | b'\t'
                | b'\n'
                | b'`'
                | b';'
                | b'|'
                | b'&'
        )
}

fn segment_end(bytes: &[u8], end: usize, pattern: usize) -> bool {
    let last = SENSITIVE
        .get(pattern)
        .and_then(|p| p.as_bytes().last().copied());
    if last == Some(b'/') || last == Some(b'.') {
        return true;
    }
    let next = at(bytes, end);
    // `etc/passwd` but not `etc/passwdfile`; `.env` but not `.envelope`.
    !(next.is_ascii_alphanumeric() || next == b'_')
}

/// A NUL byte after something path-like: `file.php\0.jpg`, `../x\0`.
fn null_truncation(bytes: &[u8]) -> Option<usize> {
    let nul = bytes.iter().position(|b| *b == 0)?;
    let before = bytes.get(..nul).unwrap_or(&[]);
    let path_like = before.iter().any(|b| is_sep(*b) || *b == b'.');
    path_like.then_some(nul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> bool {
        Scanner::new().is_ok_and(|x| x.scan(s).is_some())
    }

    #[test]
    fn detects_traversal() {
        for attack in [
            "../../etc/passwd",
            "0x5c0x2e./",
            "0x2e0x2e0x2fetc",
            "..\\..\\windows\\win.ini",
            ".../.../WINDOWS/win.ini",
            "/static/..;/WEB-INF/web.xml",
            "/etc/passwd",
            "/proc/self/environ",
            "C:\\boot.ini",
            "file=report.pdf\0.jpg",
            "php://filter/convert.base64-encode/resource=index.php",
            "/app/.git/config",
            "/.env",
            "/foo/..",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn passes_ordinary_paths() {
        for benign in [
            "/api/v1/orders/42",
            "color=0x2e2e2e",
            "addr=0x2f00 0x5c00",
            "wait... what",
            "1/2 cup",
            "/docs/getting-started",
            "/static/app.min.js",
            "environment=prod",
            "/users/sam/profile",
            "/etc/passwdless",
            "see ./README.md",
            "version 1.2.3",
            "q=win.ini",
            "junk <a href=\"../\">foo.com</a>",
            "x;/...",
            "q=win.ini",
            "junk <a href=\"../\">foo.com</a>",
            "x;/...",
        ] {
            assert!(!hit(benign), "flagged {benign:?}");
        }
    }
}
